"""The plain library loops Convertly is measured against: the same conversions with nothing
around them, in a process pool of 1 or more processes."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convertly.executors.libvips import threads_for


def jpeg_to_webp_website(args: tuple[str, str]) -> int:
    """12 MP JPEG → WebP fitting 1920×1920, quality 82: pyvips, decoding the JPEG at half
    size while reading it (still larger than 1920×1440), then `thumbnail_image`. ~8 % less
    CPU than `Image.thumbnail`, which decodes at full size for a shrink of 2.08."""
    import pyvips

    src, dst = args
    image = pyvips.Image.new_from_file(src, shrink=2, access="sequential")
    image.thumbnail_image(1920, height=1920, size="down").webpsave(dst, Q=82)
    return os.path.getsize(dst)


def png_to_webp(args: tuple[str, str]) -> int:
    """A PNG → WebP quality 82, same size."""
    import pyvips

    src, dst = args
    pyvips.Image.new_from_file(src, access="sequential").webpsave(dst, Q=82)
    return os.path.getsize(dst)


def _threads(count: int) -> None:
    import pyvips

    pyvips.concurrency_set(count)


def library_loop(convert: Callable[[tuple[str, str]], int], paths: list[Path],
                 processes: int, chunksize: int = 1) -> float:
    """Files per second of `convert` over `paths` in a pool of `processes` processes
    (`run_loop`)."""
    return run_loop(convert, paths, processes, chunksize).rate


@dataclass(frozen=True)
class LoopRun:
    rate: float  # files per second
    cpu_seconds: float  # CPU (user + system) the pool's processes used for the timed run


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_loop(convert: Callable[[tuple[str, str]], int], paths: list[Path],
             processes: int, chunksize: int = 1) -> LoopRun:
    """Files per second of `convert` over `paths` in a pool of `processes` processes
    (warmed up first: imports are not counted), and the CPU its processes spent on them.
    Each process runs libvips with as many threads as Convertly's conversion processes
    would (`convertly.executors.libvips.threads_for`): with a process per core that is one,
    the faster setting for this loop too."""
    with tempfile.TemporaryDirectory(prefix="convertly-bench-loop-") as tmp:
        jobs = [(str(p), f"{tmp}/{i}.webp") for i, p in enumerate(paths)]
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
                processes, mp_context=ctx, initializer=_threads,
                initargs=(threads_for(processes),)) as pool:
            list(pool.map(convert, jobs[:processes]))
            pids = list(pool._processes or {})
            cpu = _cpu_seconds(pids)
            start = time.perf_counter()
            list(pool.map(convert, jobs, chunksize=chunksize))
            elapsed = time.perf_counter() - start
            cpu = _cpu_seconds(pids) - cpu
    return LoopRun(len(paths) / elapsed, cpu)


# The media tools' rows (bench/tools.py): the libvips calls the thumbnail and transform
# tools make for their requests, with nothing around them.
TOOL_WIDTH = 320
TOOL_QUALITY = 82


def photo_thumbnail(args: tuple[str, str]) -> int:
    """A JPEG → TOOL_WIDTH-wide JPEG: `thumbnail` (decoding at 1/2, 1/4 or 1/8 scale while
    reading) and `jpegsave` as the tool's encoder calls it."""
    import pyvips

    src, dst = args
    image = pyvips.Image.thumbnail_source(pyvips.Source.new_from_file(src), TOOL_WIDTH,
                                          height=10_000_000)
    image.jpegsave(dst, Q=TOOL_QUALITY, optimize_coding=True, keep=pyvips.ForeignKeep.ICC)
    return os.path.getsize(dst)


TRANSFORM_FIELDS = {"width": "640", "height": "640", "fit": "cover", "position": "attention",
                    "sharpen": "0.5", "format": "webp", "quality": "80"}


def photo_transform(args: tuple[str, str]) -> int:
    """TRANSFORM_FIELDS on a JPEG: `thumbnail` with its attention smartcrop to 640×640,
    sharpened (sigma 0.5) and written as WebP quality 80."""
    import pyvips

    src, dst = args
    image = pyvips.Image.thumbnail_source(pyvips.Source.new_from_file(src), 640, height=640,
                                          crop="attention").copy_memory()
    image = image.sharpen(sigma=0.5).cast("uchar")
    image.webpsave(dst, Q=80, keep=pyvips.ForeignKeep.ICC)
    return os.path.getsize(dst)
