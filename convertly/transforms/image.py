"""A parsed image transform (`parse(raw, table.IMAGE)`) applied to a libvips image.

The steps, always in this order (each only when asked for):

  1. orient by EXIF and convert to 8-bit sRGB (CMYK, grey and 16-bit sources included)
  2. trim: crop away fully transparent borders
  3. size: width/height (pixels, or percent of the trimmed source) as `fit` says:
     fill stretches; inside fits in the box; contain fits and pads to the box with
     background at `position`; cover fills the box and crops the overflow at
     `focalPoint`, else `position` (an edge, a corner, the centre, or libvips smartcrop
     by entropy/attention); outside fills the box without cropping
  4. rotate (clockwise degrees; right angles exactly), flip (top-bottom), flop (left-right)
  5. blur, then sharpen
  6. brightness, contrast (around mid-grey), saturation
  7. radius: rounded corners
  8. pad (background), then border (borderColor)
  9. without alpha in the output format, flatten onto background (white if transparent)

`from_file` takes the fast path when the transform allows it (no trim): libvips'
`thumbnail` decodes straight to the size of step 3 (shrink-on-load: a JPEG is decoded at
1/2, 1/4 or 1/8 scale), then the remaining steps run on the small image. Everything stays
lazy until the caller writes the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyvips

from convertly.transforms.values import TRANSPARENT, Colour, Length, Point

WHITE = Colour(255, 255, 255)
# What a quality name means for libvips' lossy encoders (jpg, webp, avif).
QUALITY_BY_NAME = {"very_low": 35, "low": 55, "medium": 70, "high": 82, "very_high": 92}
DEFAULT_QUALITY = 82
LOSSY_FORMATS = frozenset({"jpg", "webp", "avif"})
ALPHA_FORMATS = frozenset({"png", "webp", "avif", "gif", "tiff"})
_SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image a quarter
# Steps that read their input out of order (a decoder reads top to bottom, once).
_NEEDS_WHOLE_IMAGE = ("rotate", "flip", "blur", "sharpen", "radius")


def quality_for(quality: int | str | None, fmt: str) -> int | None:
    """The encoder quality for `fmt`: None for lossless formats, else the number asked
    for, a quality name's number, or the default."""
    if fmt not in LOSSY_FORMATS:
        return None
    if isinstance(quality, str):
        return QUALITY_BY_NAME[quality]
    return DEFAULT_QUALITY if quality is None else quality


def output_format(t: Mapping[str, Any], source_format: str | None, has_alpha: bool) -> str:
    """The format asked for, else the source's when it can be written, else png for an
    image with transparency (`has_alpha`, or `makes_alpha`) and jpg otherwise."""
    if t.get("format"):
        return str(t["format"])
    if source_format in LOSSY_FORMATS | ALPHA_FORMATS:
        return str(source_format)
    return "png" if has_alpha or makes_alpha(t) else "jpg"


def makes_alpha(t: Mapping[str, Any]) -> bool:
    """Whether the transform adds transparency: rounded corners, or a background that is
    not opaque (the default) showing in contain padding, pad or a tilted rotation."""
    if t.get("radius"):
        return True
    colour = t.get("background")
    if isinstance(colour, Colour) and colour.opaque:
        return False
    contain = (t.get("fit") == "contain" and t.get("width") is not None
               and t.get("height") is not None)
    return bool(contain or t.get("pad") or float(t.get("rotate") or 0) % 90)


def background(t: Mapping[str, Any], alpha: bool) -> Colour:
    colour = t.get("background")
    if isinstance(colour, Colour):
        return colour
    return TRANSPARENT if alpha else WHITE


def scaled_size(width: int, height: int, t: Mapping[str, Any]) -> tuple[int, int] | None:
    """The size step 3 scales a `width` x `height` image to, before a cover crop or contain
    padding (None: no width or height asked for)."""
    want_w: Length | None = t.get("width")
    want_h: Length | None = t.get("height")
    if want_w is None and want_h is None:
        return None
    if want_w is not None and want_h is not None:
        box_w, box_h = want_w.pixels(width), want_h.pixels(height)
        fit = t.get("fit") or "cover"
        if fit == "fill":
            return box_w, box_h
        pick = min if fit in ("inside", "contain") else max
        scale = pick(box_w / width, box_h / height)
        scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
        if fit in ("cover", "outside"):  # rounding must not leave the box uncovered
            scaled_w, scaled_h = max(scaled_w, box_w), max(scaled_h, box_h)
        else:
            scaled_w, scaled_h = min(scaled_w, box_w), min(scaled_h, box_h)
        return scaled_w, scaled_h
    if want_w is not None:
        scaled_w = want_w.pixels(width)
        return scaled_w, max(1, round(height * scaled_w / width))
    assert want_h is not None
    scaled_h = want_h.pixels(height)
    return max(1, round(width * scaled_h / height)), scaled_h


def box(width: int, height: int, t: Mapping[str, Any]) -> tuple[int, int] | None:
    """The box a cover crop or contain padding makes (None: neither applies)."""
    if t.get("width") is None or t.get("height") is None:
        return None
    if (t.get("fit") or "cover") not in ("cover", "contain"):
        return None
    return t["width"].pixels(width), t["height"].pixels(height)


def fast_path(t: Mapping[str, Any]) -> bool:
    """Whether `from_file` may size while decoding (trim has to see the whole source)."""
    return not t.get("trim")


def from_file(src: Path, t: Mapping[str, Any], *, alpha: bool, fail_on: str = "truncated",
              oriented: tuple[int, int] | None = None) -> pyvips.Image:
    """The transform applied to the image file `src` (a format libvips decodes), sized
    while decoding where the transform allows. `alpha`: the output format keeps alpha.
    `oriented`: the source's size once EXIF-oriented, when the caller has read it."""
    if oriented is None:
        header = pyvips.Image.new_from_source(
            pyvips.Source.new_from_file(str(src)), "", access="sequential", fail_on=fail_on
        )
        oriented = header.width, header.height
        if header.get_typeof("orientation") and header.get("orientation") in _SWAPS_AXES:
            oriented = header.height, header.width
    width, height = oriented
    size = scaled_size(width, height, t) if fast_path(t) else None
    if size is None:
        image = pyvips.Image.new_from_source(
            pyvips.Source.new_from_file(str(src)), "", access="random", fail_on=fail_on
        )
        return apply(image.autorot(), t, alpha=alpha)
    target = box(width, height, t)
    smart = t.get("position") in ("entropy", "attention") and not t.get("focalPoint")
    if target is not None and smart and (t.get("fit") or "cover") == "cover":
        # thumbnail's own smartcrop: it needs the scaled image whole, which thumbnail keeps
        image = pyvips.Image.thumbnail_source(
            pyvips.Source.new_from_file(str(src)), target[0], height=target[1],
            crop=t["position"], option_string=f"fail_on={fail_on}",
        )
    else:
        image = pyvips.Image.thumbnail_source(
            pyvips.Source.new_from_file(str(src)), size[0], height=size[1], size="force",
            option_string=f"fail_on={fail_on}",
        )
    if any(t.get(step) for step in _NEEDS_WHOLE_IMAGE):
        # these read the scaled image out of order; the image is small by now
        image = image.copy_memory()
    return apply(image, t, alpha=alpha, source_size=(width, height))


def apply(image: pyvips.Image, t: Mapping[str, Any], *, alpha: bool,
          source_size: tuple[int, int] | None = None) -> pyvips.Image:
    """Steps 1-9 on an oriented image. `source_size`: the image is already scaled (step 3
    without its crop or padding) from a source of this size."""
    image = _srgb(image)
    bg = background(t, alpha)
    if source_size is None:
        if t.get("trim"):
            image = _trim(image)
        source_size = (image.width, image.height)
        size = scaled_size(*source_size, t)
        if size is not None and size != (image.width, image.height):
            image = image.thumbnail_image(size[0], height=size[1], size="force",
                                          no_rotate=True)
    target = box(*source_size, t)
    if target is not None:
        image = _crop_or_pad(image, target, t, bg)
    image = _orient(image, t, bg)
    if t.get("blur"):
        image = image.gaussblur(t["blur"])
    if t.get("sharpen"):
        image = _colour_only(image, lambda c: c.sharpen(sigma=t["sharpen"]))
    image = _adjust(image, t.get("brightness", 1), t.get("contrast", 1),
                    t.get("saturation", 1))
    if t.get("radius"):
        image = _round_corners(image, t["radius"])
    if t.get("pad"):
        image = _frame(image, t["pad"], bg)
    if t.get("border"):
        image = _frame(image, t["border"], t.get("borderColor") or Colour(0, 0, 0))
    if not alpha and image.hasalpha():
        image = image.flatten(background=(bg if bg.alpha else WHITE).rgb)
    return image


def _srgb(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation != "srgb" or image.bands not in (3, 4):
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _trim(image: pyvips.Image) -> pyvips.Image:
    if not image.hasalpha():
        return image
    # find_trim on the alpha band alone: borders whose alpha is 0 everywhere.
    left, top, width, height = image[image.bands - 1].find_trim(threshold=0, background=[0])
    if width == 0 or height == 0:
        return image  # all transparent: nothing to keep, nothing to trim to
    return image.crop(left, top, width, height)


def _with_alpha(image: pyvips.Image) -> pyvips.Image:
    return image if image.hasalpha() else image.bandjoin_const([255])


def _fill(image: pyvips.Image, colour: Colour) -> tuple[pyvips.Image, list[float]]:
    """The image (with alpha where `colour` needs it) and `colour` as its bands."""
    if not colour.opaque:
        image = _with_alpha(image)
    return image, colour.rgba if image.hasalpha() else colour.rgb


def _offset(space: int, position: str, low: str, high: str) -> int:
    if low in position:
        return 0
    if high in position:
        return space
    return space // 2


def _crop_or_pad(image: pyvips.Image, target: tuple[int, int], t: Mapping[str, Any],
                 bg: Colour) -> pyvips.Image:
    box_w, box_h = target
    position = t.get("position") or "centre"
    if (t.get("fit") or "cover") == "cover":
        box_w, box_h = min(box_w, image.width), min(box_h, image.height)
        if (box_w, box_h) == (image.width, image.height):
            return image
        focus: Point | None = t.get("focalPoint")
        if focus is not None:
            left = round(focus.x * image.width - box_w / 2)
            top = round(focus.y * image.height - box_h / 2)
            return image.crop(min(max(left, 0), image.width - box_w),
                              min(max(top, 0), image.height - box_h), box_w, box_h)
        if position in ("entropy", "attention"):
            return image.smartcrop(box_w, box_h, interesting=position)
        return image.crop(_offset(image.width - box_w, position, "left", "right"),
                          _offset(image.height - box_h, position, "top", "bottom"),
                          box_w, box_h)
    # contain: the fitted image on a box of background
    if (box_w, box_h) == (image.width, image.height):
        return image
    image, fill = _fill(image, bg)
    return image.embed(_offset(box_w - image.width, position, "left", "right"),
                       _offset(box_h - image.height, position, "top", "bottom"),
                       box_w, box_h, extend="background", background=fill)


def _orient(image: pyvips.Image, t: Mapping[str, Any], bg: Colour) -> pyvips.Image:
    angle = float(t.get("rotate") or 0) % 360
    if angle in (90, 180, 270):
        image = image.rot(f"d{int(angle)}")
    elif angle:
        image, fill = _fill(image, bg)
        image = image.rotate(angle, background=fill)
    if t.get("flip"):
        image = image.flip("vertical")
    if t.get("flop"):
        image = image.flip("horizontal")
    return image


def _colour_only(image: pyvips.Image, edit: Any) -> pyvips.Image:
    """`edit` on the colour bands; alpha joined back unchanged."""
    if not image.hasalpha():
        return edit(image).cast("uchar")
    colour, alpha = image.extract_band(0, n=3), image.extract_band(3)
    return edit(colour).cast("uchar").bandjoin(alpha)


def _adjust(image: pyvips.Image, brightness: float, contrast: float,
            saturation: float) -> pyvips.Image:
    if saturation != 1:
        image = _colour_only(
            image, lambda c: (c.colourspace("lch") * [1, saturation, 1]).colourspace("srgb")
        )
    if brightness != 1 or contrast != 1:
        gain = brightness * contrast
        image = _colour_only(image, lambda c: c.linear([gain] * 3, [128 * (1 - contrast)] * 3))
    return image


def _round_corners(image: pyvips.Image, radius: int) -> pyvips.Image:
    radius = min(radius, image.width // 2, image.height // 2)
    if radius <= 0:
        return image
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{image.width}" '
           f'height="{image.height}"><rect width="{image.width}" height="{image.height}" '
           f'rx="{radius}" ry="{radius}" fill="#fff"/></svg>')
    mask = pyvips.Image.svgload_buffer(svg.encode()).extract_band(3)
    if not image.hasalpha():
        return image.bandjoin(mask)
    alpha = (image.extract_band(3) * mask / 255).cast("uchar")
    return image.extract_band(0, n=3).bandjoin(alpha)


def _frame(image: pyvips.Image, size: int, colour: Colour) -> pyvips.Image:
    image, fill = _fill(image, colour)
    return image.embed(size, size, image.width + 2 * size, image.height + 2 * size,
                       extend="background", background=fill)


def output_size(width: int, height: int, t: Mapping[str, Any]) -> tuple[int, int]:
    """At least the output's size for a `width` x `height` source: what the caller checks
    against its pixel budget before decoding anything."""
    size = scaled_size(width, height, t) or (width, height)
    target = box(width, height, t)
    out_w, out_h = max(target[0], size[0]) if target else size[0], \
        max(target[1], size[1]) if target else size[1]
    if float(t.get("rotate") or 0) % 90:
        out_w = out_h = math.ceil(math.hypot(out_w, out_h))
    grow = 2 * (int(t.get("pad") or 0) + int(t.get("border") or 0))
    return out_w + grow, out_h + grow
