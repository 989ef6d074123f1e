"""Generates the benchmark corpus: photo-like 12 MP JPEGs (4000×3000, quality 90), one
2000×1333 photo for the sync row, small PNGs and a 30 s 1080p H.264 clip. Everything is
made by code, once, under bench/corpus/."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from PIL import Image, ImageFilter

WIDTH, HEIGHT = 4000, 3000


def _base(seed: int, width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    # Smooth gradients plus blurred noise: compresses and decodes like a real photo.
    w, h = width + width // 10, height + height // 10
    gradient = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 40 + seed % 20).filter(ImageFilter.GaussianBlur(1))
    return Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.ROTATE_180)))


def make_jpegs(folder: Path, count: int) -> list[Path]:
    """`count` distinct 12 MP JPEGs in `folder`, made once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo-{i:03d}.jpg" for i in range(count)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        base = _base(0)
        for i, path in enumerate(paths):
            if path.exists():
                continue
            dx, dy = (i * 37) % 400, (i * 53) % 300
            crop = base.crop((dx, dy, dx + WIDTH, dy + HEIGHT))
            tmp = path.with_suffix(".tmp")
            crop.save(tmp, "JPEG", quality=90)
            tmp.rename(path)
    return paths


def make_photo(folder: Path, width: int, height: int) -> Path:
    """One photo-like `width`×`height` JPEG (quality 90) in `folder`, made once."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"photo-{width}x{height}.jpg"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        _base(1, width, height).crop((0, 0, width, height)).save(tmp, "JPEG", quality=90)
        tmp.rename(path)
    return path


def small_pngs(count: int, size: tuple[int, int] = (160, 120)) -> list[bytes]:
    """`count` distinct small PNGs (an RGB gradient with noise, ~16 KiB each), in memory:
    one noise field, cropped at a different offset for each."""
    width, height = size
    field = _base(count, width * 4, height * 4)
    out = []
    for i in range(count):
        dx, dy = (i * 7) % (width * 3), (i * 13) % (height * 3)
        buf = io.BytesIO()
        field.crop((dx, dy, dx + width, dy + height)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def make_pngs(folder: Path, count: int) -> list[Path]:
    """`count` small PNGs (see `small_pngs`) in `folder`, made once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"small-{i:04d}.png" for i in range(count)]
    if not all(p.exists() for p in paths):
        for path, data in zip(paths, small_pngs(count), strict=True):
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.rename(path)
    return paths


def make_clip(folder: Path, seconds: int = 30) -> Path:
    """A `seconds`-long 1920×1080 30 fps H.264 + AAC clip (ffmpeg's moving test pattern with
    noise, so the encoder has real work) at 16 Mbit/s, a phone camera's rate, made once and
    reused."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"clip-{seconds}s-1080p-16M.mp4"
    if not path.exists():
        tmp = path.with_suffix(".tmp.mp4")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc2=size=1920x1080:rate=30:duration={seconds},noise=alls=12:allf=t",
             "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
             "-c:v", "libx264", "-preset", "veryfast", "-b:v", "16M", "-maxrate", "16M",
             "-bufsize", "32M", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "128k", "-shortest", str(tmp)],
            check=True,
        )
        tmp.rename(path)
    return path
