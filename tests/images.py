"""Test images made by code: deterministic, small, with enough detail to compress like photos,
and a decoder that reports what a file really is (format, size, mode, EXIF)."""

from __future__ import annotations

import io
import random
import struct
from dataclasses import dataclass
from typing import Any

import pillow_heif
from PIL import Image, ImageChops, ImageDraw, ImageStat

# Lets Image.open read the HEIF files the service writes.
pillow_heif.register_heif_opener()

EXIF_ORIENTATION = 0x0112
EXIF_ARTIST = 0x013B
EXIF_COPYRIGHT = 0x8298

# Pillow's name for each output format of the API.
PIL_FORMATS = {
    "jpg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "avif": "AVIF",
    "tiff": "TIFF",
    "gif": "GIF",
    "heif": "HEIF",
}
MIME_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "heif": "image/heif",
}
EXTENSIONS = {"jpg": "jpg", "png": "png", "webp": "webp", "avif": "avif", "tiff": "tiff",
              "gif": "gif", "heif": "heic"}


def picture(width: int = 320, height: int = 240, *, seed: int = 1,
            noise: float = 0.15) -> Image.Image:
    """An RGB photo stand-in: two gradients, a few coloured shapes and some noise."""
    rng = random.Random(seed)
    vertical = Image.linear_gradient("L").resize((width, height))
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    image = Image.merge("RGB", (horizontal, vertical, ImageChops.invert(horizontal)))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(width // 8, width // 3), rng.randrange(height // 8, height // 3)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + w, y + h), fill=colour)
    if noise:
        grain = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        image = Image.blend(image, grain, noise)
    return image


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg(width: int = 320, height: int = 240, *, quality: int = 90, seed: int = 1,
         noise: float = 0.15, exif: dict[int, Any] | None = None) -> bytes:
    options: dict[str, Any] = {"quality": quality}
    if exif:
        tags = Image.Exif()
        for tag, value in exif.items():
            tags[tag] = value
        options["exif"] = tags.tobytes()
    return encode(picture(width, height, seed=seed, noise=noise), "JPEG", **options)


def png(width: int = 320, height: int = 240, *, seed: int = 2, noise: float = 0.15,
        alpha: bool = False) -> bytes:
    image = picture(width, height, seed=seed, noise=noise)
    if alpha:
        image.putalpha(Image.linear_gradient("L").resize((width, height)))
    return encode(image, "PNG")


def slow_svg(size: int = 2400) -> bytes:
    """An SVG that librsvg spends long in one native call on: fractal noise over `size`²
    pixels (~10 s of CPU at 2400, growing with the area)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">'
            '<filter id="t" x="0" y="0" width="100%" height="100%"><feTurbulence '
            'baseFrequency="0.01" numOctaves="10"/></filter>'
            f'<rect width="{size}" height="{size}" filter="url(#t)"/></svg>').encode()


def truncated_jpeg() -> bytes:
    """A JPEG cut in the middle of its image data: the header still reads."""
    data = jpeg(200, 150)
    return data[: len(data) // 2]


@dataclass(frozen=True)
class Decoded:
    format: str
    width: int
    height: int
    mode: str
    exif: dict[int, Any]
    image: Image.Image

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def decode(data: bytes) -> Decoded:
    """Open and fully decode `data`; raises when it is not a complete image."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        return Decoded(
            format=str(opened.format),
            width=opened.width,
            height=opened.height,
            mode=opened.mode,
            exif=dict(opened.getexif()),
            image=opened.copy(),
        )


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per RGB channel (0 identical, 255 opposite)."""
    left, right = a.convert("RGB"), b.convert("RGB")
    if left.size != right.size:
        right = right.resize(left.size)
    return sum(ImageStat.Stat(ImageChops.difference(left, right)).mean) / 3


def tiff_lzw(data: bytes) -> bytes:
    """`data` as a TIFF LZW stream that libtiff decodes: 9-bit literal codes, with a Clear
    code every 250 so the code width never grows (valid LZW, just not smaller)."""
    codes: list[int] = []
    for start in range(0, len(data), 250):
        codes.append(256)  # Clear
        codes.extend(data[start : start + 250])
    codes.append(257)  # end of information
    out, bits, pending = bytearray(), 0, 0
    for code in codes:
        bits, pending = (bits << 9) | code, pending + 9
        while pending >= 8:
            pending -= 8
            out.append((bits >> pending) & 0xFF)
    if pending:
        out.append((bits << (8 - pending)) & 0xFF)
    return bytes(out)


def tiled_planar_tiff(image: Image.Image, tile: int = 16) -> bytes:
    """`image` (RGB, RGBA or CMYK) as a tiled TIFF with one plane per channel
    (PlanarConfiguration 2), each tile LZW-compressed: a layout scanners and GIS tools write."""
    width, height = image.size
    planes = image.split()
    across, down = -(-width // tile), -(-height // tile)
    body = bytearray()
    offsets: list[int] = []
    counts: list[int] = []
    for plane in planes:
        for row in range(down):
            for column in range(across):
                piece = Image.new("L", (tile, tile))
                box = (column * tile, row * tile, min(width, (column + 1) * tile),
                       min(height, (row + 1) * tile))
                piece.paste(plane.crop(box))
                data = tiff_lzw(piece.tobytes())
                offsets.append(8 + len(body))
                counts.append(len(data))
                body += data + b"\0" * (len(data) % 2)

    def array(fmt: str, values: list[int]) -> int:
        offset = 8 + len(body)
        body.extend(struct.pack(f"<{len(values)}{fmt}", *values))
        return offset

    samples = len(planes)
    photometric = {"RGB": 2, "RGBA": 2, "CMYK": 5}[image.mode]
    tags = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, samples, array("H", [8] * samples)),
            (259, 3, 1, 5), (262, 3, 1, photometric), (277, 3, 1, samples), (284, 3, 1, 2),
            (322, 3, 1, tile), (323, 3, 1, tile), (324, 4, len(offsets), array("I", offsets)),
            (325, 4, len(counts), array("I", counts))]
    if image.mode == "RGBA":
        tags.append((338, 3, 1, 2))  # unassociated alpha
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in sorted(tags):
        if count == 1 and kind == 3:
            ifd += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8 + len(body)) + bytes(body) + ifd
