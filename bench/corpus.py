"""Generates the benchmark corpus: photo-like 12 MP JPEGs (4000×3000, quality 90) and a
30 s 1080p H.264 clip."""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image, ImageFilter

WIDTH, HEIGHT = 4000, 3000


def _base(seed: int) -> Image.Image:
    # Smooth gradients plus blurred noise: compresses and decodes like a real photo.
    w, h = WIDTH + 400, HEIGHT + 300
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


def make_clip(folder: Path, seconds: int = 30) -> Path:
    """A `seconds`-long 1920×1080 30 fps H.264 + AAC clip (ffmpeg's moving test pattern with
    noise, so the encoder has real work), made once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"clip-{seconds}s-1080p.mp4"
    if not path.exists():
        tmp = path.with_suffix(".tmp.mp4")
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc2=size=1920x1080:rate=30:duration={seconds},noise=alls=12:allf=t",
             "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "128k", "-shortest", str(tmp)],
            check=True,
        )
        tmp.rename(path)
    return path
