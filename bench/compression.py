"""`make bench-compress`: what compress saves, and at what SSIM, before and after mozjpeg.

The photo set is real photographs that ship inside scikit-image (a dev dependency):
- camera-like JPEGs: its PNG photos re-encoded as cameras write them (Pillow, quality 92-95,
  4:2:0 chroma), and its three JPEGs as they ship (quality 94-97);
- the same photos saved at quality 75 and 60, as phones, websites and earlier compressions do;
- PNG: screenshots and graphics drawn here with Pillow (text, flat colours, a UI, a chart)
  and one photo PNG as it ships;
- WebP: two photos saved at quality 90.

Each file is compressed at `--quality` (70 unless told) twice: with the encoder settings compress
used before (libvips' plain libjpeg with optimised Huffman tables, palette PNG, WebP at its
default effort, and the original handed back when the re-encode is larger) and through the
converter as it is now (ImageConverter, jobType compress). SSIM (scikit-image, Gaussian
window, on RGB) is measured against the decoded source: 1.0 means the same pixels.

    .venv/bin/python -m bench.compression [--quality 70] [--lossless] [--json bench/out/...]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyvips
import skimage
from PIL import Image, ImageDraw
from skimage import data as photos
from skimage.metrics import structural_similarity

from convertly.converters.image import ImageConverter
from convertly.converters.image.jpeg_quality import jpeg_quality
from convertly.converters.registry import settle
from convertly.models import FileSpec, JobType
from convertly.settings import Settings
from convertly.sniff import Kind, sniff_file

ROOT = Path(__file__).resolve().parent
SKIMAGE_DATA = Path(skimage.__file__).parent / "data"


@dataclass(frozen=True)
class Row:
    """One file compressed the old way and the new way."""

    file: str
    size: str  # width x height
    source_bytes: int
    source_quality: int | None  # a JPEG's, estimated from its quantisation table
    old_bytes: int
    old_ssim: float
    new_bytes: int
    new_ssim: float
    note: str

    @staticmethod
    def saving(source: int, result: int) -> float:
        return 100 * (1 - result / source)


def _rgb(array: np.ndarray) -> Image.Image:
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(array[..., :3]))


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, subsampling="4:2:0")
    return buf.getvalue()


def _webp(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=quality)
    return buf.getvalue()


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=False)
    return buf.getvalue()


def screenshot(width: int = 1280, height: int = 800) -> Image.Image:
    """A desktop-app screenshot: title bar, sidebar, list rows of text, buttons, a toolbar."""
    img = Image.new("RGB", (width, height), (246, 247, 249))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 36), fill=(40, 44, 52))
    draw.text((14, 11), "convertly — jobs", fill=(230, 230, 230))
    draw.rectangle((0, 36, 220, height), fill=(231, 234, 238))
    for i, label in enumerate(("Jobs", "Files", "Keys", "Usage", "Settings")):
        if i == 0:
            draw.rectangle((8, 52 + i * 34, 212, 80 + i * 34), fill=(210, 220, 245))
        draw.text((22, 60 + i * 34), label, fill=(30, 30, 30))
    for row in range(18):
        top = 60 + row * 38
        fill = (255, 255, 255) if row % 2 else (250, 250, 252)
        draw.rectangle((240, top, width - 20, top + 36), fill=fill, outline=(225, 227, 230))
        draw.text((256, top + 12), f"photo-{row:03d}.jpg   webp   website   {412 + row * 37} KB",
                  fill=(20, 20, 20))
        colour = ((46, 160, 67), (210, 153, 34), (207, 34, 46))[row % 3]
        draw.rounded_rectangle((width - 170, top + 8, width - 40, top + 28), 9, fill=colour)
        draw.text((width - 150, top + 12), ("completed", "processing", "failed")[row % 3],
                  fill=(255, 255, 255))
    return img


def chart(width: int = 900, height: int = 560) -> Image.Image:
    """A line chart with axes, grid, legend and anti-aliased lines (drawn at 2x, reduced)."""
    big = Image.new("RGB", (width * 2, height * 2), "white")
    draw = ImageDraw.Draw(big)
    for x in range(120, width * 2, 160):
        draw.line((x, 60, x, height * 2 - 100), fill=(230, 230, 230), width=2)
    for y in range(60, height * 2 - 80, 120):
        draw.line((120, y, width * 2 - 40, y), fill=(230, 230, 230), width=2)
    rng = np.random.default_rng(3)
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):
        ys = np.cumsum(rng.normal(0, 30, 40)) + height
        points = [(120 + i * (width * 2 - 160) / 39, float(y)) for i, y in enumerate(ys)]
        draw.line(points, fill=colour, width=6)
    draw.text((140, 20), "requests per second", fill="black")
    return big.resize((width, height), Image.Resampling.LANCZOS)


def text_page(width: int = 850, height: int = 1100) -> Image.Image:
    """A scanned-looking page of text: black on white, grey rules."""
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while",
             "compress", "keeps", "its", "word"]
    for line in range(60):
        text = " ".join(words[(line + i) % len(words)] for i in range(12))
        draw.text((60, 50 + line * 17), text, fill=0)
    draw.line((60, 40, width - 60, 40), fill=128, width=2)
    return img.convert("RGB")


def photo_set(folder: Path) -> list[Path]:
    """Writes the photo set into `folder`; returns the files in table order."""
    camera = {  # name: (picture, quality)
        "astronaut": (photos.astronaut(), 95),
        "chelsea": (photos.chelsea(), 92),
        "coffee": (photos.coffee(), 95),
        "motorcycle": (photos.stereo_motorcycle()[0], 93),
        "grass": (photos.grass(), 94),
        "ihc": (photos.immunohistochemistry(), 92),
    }
    files: dict[str, bytes] = {}
    for name, (picture, quality) in camera.items():
        files[f"{name}-q{quality}.jpg"] = _jpeg(_rgb(picture), quality)
    for shipped in ("rocket.jpg", "retina.jpg", "hubble_deep_field.jpg"):
        files[shipped] = (SKIMAGE_DATA / shipped).read_bytes()
    for name, quality in (("coffee", 75), ("astronaut", 75), ("chelsea", 60)):
        files[f"{name}-q{quality}.jpg"] = _jpeg(_rgb(camera[name][0]), quality)
    files["screenshot.png"] = _png(screenshot())
    files["chart.png"] = _png(chart())
    files["text-page.png"] = _png(text_page())
    files["chelsea.png"] = (SKIMAGE_DATA / "chelsea.png").read_bytes()
    for name in ("astronaut", "coffee"):
        files[f"{name}-q90.webp"] = _webp(_rgb(camera[name][0]), 90)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, blob in files.items():
        path = folder / name
        path.write_bytes(blob)
        paths.append(path)
    return paths


def rgb_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB images (Wang et al. 2004, Gaussian window σ 1.5), channels averaged."""
    return float(structural_similarity(a, b, channel_axis=2, data_range=255,
                                       gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def old_compress(src: Path, kind: Kind, quality: int, lossless: bool, out: Path) -> Path:
    """Compress as it was before mozjpeg (commit 671b170): one libvips encode at `quality`,
    the source kept when that came out larger."""
    image = pyvips.Image.new_from_file(str(src))
    match kind:
        case Kind.JPEG if lossless:  # the entropy-coded data was copied, as it still is
            shutil.copyfile(src, out)
        case Kind.JPEG:
            image.jpegsave(str(out), Q=quality, optimize_coding=True)
        case Kind.PNG if lossless:
            image.pngsave(str(out), compression=9, filter=0xF8)
        case Kind.PNG:
            image.pngsave(str(out), palette=True, Q=quality, compression=9)
        case Kind.WEBP:
            image.webpsave(str(out), **({"lossless": True} if lossless else {"Q": quality}))
        case _:
            raise ValueError(kind)
    if out.stat().st_size > src.stat().st_size:
        shutil.copyfile(src, out)
    return out


def new_compress(src: Path, quality: int, lossless: bool, workdir: Path) -> tuple[Path, str]:
    """Compress through the converter, as POST /api/compress does."""
    source = sniff_file(src)
    spec = settle(Kind(source.kind), FileSpec(index=0, filename=src.name,
                                              job_type=JobType.COMPRESS, compression=quality,
                                              lossless=lossless))
    result = ImageConverter().convert(src, source, spec, workdir, Settings())
    return Path(result.path), " ".join(result.notes)


def measure(paths: list[Path], quality: int, lossless: bool, scratch: Path,
            progress: Callable[[str], None] = lambda _: None) -> list[Row]:
    rows = []
    for src in paths:
        progress(src.name)
        kind = Kind(sniff_file(src).kind)
        reference = rgb_pixels(src)
        work = scratch / src.stem
        work.mkdir()
        old = old_compress(src, kind, quality, lossless, work / f"old{src.suffix}")
        new, note = new_compress(src, quality, lossless, work)
        rows.append(Row(
            file=src.name,
            size=f"{reference.shape[1]}×{reference.shape[0]}",
            source_bytes=src.stat().st_size,
            source_quality=jpeg_quality(src) if kind is Kind.JPEG else None,
            old_bytes=old.stat().st_size,
            old_ssim=ssim(reference, rgb_pixels(old)),
            new_bytes=new.stat().st_size,
            new_ssim=ssim(reference, rgb_pixels(new)),
            note=note,
        ))
    return rows


def render(rows: list[Row], quality: int, lossless: bool) -> str:
    mode = "lossless" if lossless else f"quality {quality}"
    lines = [
        f"Compress at {mode}: before (plain libjpeg) and now (mozjpeg, source-quality aware).",
        "",
        "| file | pixels | source | src q | before | saved | SSIM | now | saved | SSIM |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.file} | {r.size} | {r.source_bytes:,} | {r.source_quality or '—'} | "
            f"{r.old_bytes:,} | {Row.saving(r.source_bytes, r.old_bytes):.1f} % | "
            f"{r.old_ssim:.4f} | {r.new_bytes:,} | {Row.saving(r.source_bytes, r.new_bytes):.1f} % "
            f"| {r.new_ssim:.4f} |"
        )
    total = sum(r.source_bytes for r in rows)
    old, new = sum(r.old_bytes for r in rows), sum(r.new_bytes for r in rows)
    lines.append(f"| **all** | | {total:,} | | {old:,} | {Row.saving(total, old):.1f} % | | "
                 f"{new:,} | {Row.saving(total, new):.1f} % | |")
    notes = [f"- {r.file}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", type=int, default=70)
    parser.add_argument("--lossless", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "compression.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="convertly-compress-") as tmp:
        scratch = Path(tmp)
        paths = photo_set(scratch / "set")
        rows = measure(paths, args.quality, args.lossless, scratch)
    print(render(rows, args.quality, args.lossless))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
