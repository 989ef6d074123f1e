"""Generates the benchmark corpus: photo-like 12 MP JPEGs (4000×3000, quality 90)."""

from __future__ import annotations

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
