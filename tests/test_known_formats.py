"""Formats we recognise and do not convert are named (sniff.known_format), from real files
Pillow and ffmpeg write."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from convertly.errors import UnsupportedMediaError
from convertly.sniff import HEAD_BYTES, known_format, sniff_bytes, sniff_file

PILLOW_WRITES = {
    "ICO": "Windows icon (ICO)",
    "ICNS": "Apple icon (ICNS)",
    "DDS": "DirectDraw Surface (DDS)",
    "QOI": "QOI image",
    "SGI": "SGI image",
    "PCX": "PCX image",
    "PPM": "Netpbm image (PBM/PGM/PPM)",
    "EPS": "PostScript (PS/EPS)",
}


@pytest.mark.parametrize("fmt", PILLOW_WRITES)
def test_image_formats_pillow_writes_are_named(fmt: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, format=fmt)
    head = buf.getvalue()[:HEAD_BYTES]
    assert sniff_bytes(head) is None
    assert known_format(head) == PILLOW_WRITES[fmt]


@pytest.mark.parametrize("args,name", [
    (["-c:a", "wmav2", "-f", "asf"], "Windows Media (ASF: WMA or WMV)"),
    (["-c:a", "pcm_s16be", "-f", "aiff"], "AIFF audio"),
    (["-c:a", "pcm_s16le", "-f", "avi"], "AVI video"),
    (["-c:a", "pcm_s16le", "-f", "caf"], "Core Audio (CAF)"),
    (["-c:a", "mp2", "-f", "mpegts"], "MPEG transport stream (TS)"),
])
def test_media_formats_ffmpeg_writes_are_named(args: list[str], name: str,
                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=8000:duration=0.3", *args, str(out)],
                   check=True, timeout=60, stdin=subprocess.DEVNULL)
    with pytest.raises(UnsupportedMediaError) as caught:
        sniff_file(out)
    assert caught.value.message.startswith(f"This is a file in the {name} format, which this "
                                           "server does not convert; send an image")
    assert caught.value.detail == {"format": name}


def test_text_is_named_and_binary_noise_is_not(tmp_path: Path) -> None:
    assert known_format("naïve notes\n".encode() * 40) == "text"
    assert known_format(bytes(range(256)) * 4) is None
    path = tmp_path / "noise"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnsupportedMediaError, match="We cannot tell what kind of file"):
        sniff_file(path)

