"""Small valid files of every input kind, made by code, for the hostile corpus to damage."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import tarfile
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pillow_heif
import py7zr
from PIL import Image

from tests import images

DATA = Path(__file__).resolve().parent.parent / "converters" / "data"

# ffmpeg arguments for one second of 64x48 test video and/or a sine tone, per container.
_MEDIA = {
    "mp4": ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mp4"],
    "mov": ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mov"],
    "webm": ["-map", "0:v", "-map", "1:a", "-c:v", "libvpx-vp9", "-deadline", "realtime",
             "-cpu-used", "8", "-c:a", "libopus", "-f", "webm"],
    "mp3": ["-map", "1:a", "-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"],
    "wav": ["-map", "1:a", "-c:a", "pcm_s16le", "-ar", "8000", "-f", "wav"],
    "ogg": ["-map", "1:a", "-c:a", "libvorbis", "-f", "ogg"],
    "flac": ["-map", "1:a", "-c:a", "flac", "-ar", "8000", "-f", "flac"],
    "m4a": ["-map", "1:a", "-c:a", "aac", "-b:a", "32k", "-f", "ipod"],
}


def ffmpeg(args: list[str], seconds: float = 1.0, size: str = "64x48") -> bytes:
    """Run ffmpeg on lavfi test sources (video input 0, sine input 1); the output's bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc=size={size}:rate=10:duration={seconds}", "-f", "lavfi", "-i",
             f"sine=frequency=440:sample_rate=8000:duration={seconds}", *args, str(out)],
            check=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        return out.read_bytes()


def _pil(fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    images.picture(64, 48).save(buf, format=fmt, **options)
    return buf.getvalue()


def gif_animation(frames: int, width: int, height: int) -> bytes:
    """An animated GIF of flat frames in alternating colours (tiny once LZW-coded)."""
    pictures = [Image.new("P", (width, height), i % 2) for i in range(frames)]
    for picture in pictures:
        picture.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=100,
                     loop=0, optimize=False, disposal=1)
    return buf.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_of(entries: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def seven_z_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(data, name)
    return buf.getvalue()


def pdf(pages: int = 1) -> bytes:
    frames = [images.picture(64, 48, seed=i) for i in range(pages)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PDF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def heif() -> bytes:
    heif_file = pillow_heif.from_pillow(images.picture(64, 48))
    buf = io.BytesIO()
    heif_file.save(buf, quality=60, enc_params={"preset": "ultrafast"})
    return buf.getvalue()


SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" '
       b'height="48"><rect width="64" height="48" fill="#3a6"/><circle cx="32" cy="24" r="12" '
       b'fill="#fff"/></svg>\n')


def valid_samples() -> dict[str, bytes]:
    """One small valid file per input kind, keyed by kind (file extension)."""
    png = _pil("PNG")
    samples = {
        "jpg": _pil("JPEG", quality=80),
        "png": png,
        "gif": gif_animation(3, 64, 48),
        "webp": _pil("WEBP", quality=70),
        "tiff": _pil("TIFF"),
        "bmp": _pil("BMP"),
        "avif": _pil("AVIF", quality=50, speed=10),
        "heic": heif(),
        "svg": SVG,
        "pdf": pdf(),
        "zip": zip_of({"a.png": png, "notes/readme.txt": b"hello\n" * 50}),
        "tar": tar_of({"a.png": png, "readme.txt": b"hello\n" * 50}),
        "tgz": tar_of({"a.png": png, "readme.txt": b"hello\n" * 50}, "w:gz"),
        "gz": gzip.compress(b"hello\n" * 500),
        "bz2": bz2.compress(b"hello\n" * 500),
        "xz": lzma.compress(b"hello\n" * 500),
        "7z": seven_z_of({"a.png": png, "readme.txt": b"hello\n" * 50}),
        "rar": (DATA / "rar3-subdirs.rar").read_bytes(),
    }
    with ThreadPoolExecutor(4) as pool:
        media = dict(zip(_MEDIA, pool.map(ffmpeg, _MEDIA.values()), strict=True))
    return {**samples, **media}
