"""Shaping decoded pixels for the target: colour, depth, crop, padding and alpha.

CMYK becomes sRGB as colour.py says (kept as CMYK only where compress writes jpg or tiff),
other colour spaces become sRGB, and 16-bit images become 8-bit for targets that cannot
hold more. The plan's crop and padding are applied to every frame of an animation (libvips
stacks frames vertically); padding and jpg output are flattened onto white.
"""

from __future__ import annotations

from collections.abc import Callable

import pyvips

from convertly.converters.image.colour import cmyk_to_srgb
from convertly.converters.image.load import int_field
from convertly.converters.resize import ResizePlan
from convertly.models import OutputFormat

_CMYK_TARGETS = frozenset({OutputFormat.JPG, OutputFormat.TIFF})
_HIGH_DEPTH_TARGETS = frozenset({OutputFormat.PNG, OutputFormat.TIFF})
_FOREIGN_COLOURSPACES = frozenset(
    {"lab", "labq", "labs", "lch", "cmc", "xyz", "yxy", "scrgb", "hsv", "oklab", "oklch"}
)


def shape(
    image: pyvips.Image, plan: ResizePlan, target: OutputFormat, *, keep_cmyk: bool
) -> pyvips.Image:
    """Colour, depth, crop, padding and alpha as the target and the plan want them."""
    interpretation = image.interpretation
    if interpretation == "cmyk" and not (keep_cmyk and target in _CMYK_TARGETS):
        image = cmyk_to_srgb(image)
    elif interpretation in _FOREIGN_COLOURSPACES:
        image = image.colourspace("srgb")
    if image.format == "ushort" and target not in _HIGH_DEPTH_TARGETS:
        image = image.colourspace("b-w" if image.bands < 3 else "srgb")
    if plan.crops:
        left, top = plan.crop_offset
        image = _each_frame(image, lambda frame: frame.crop(left, top, plan.width, plan.height))
    if plan.pads:
        left, top = plan.pad_offset
        image = _each_frame(
            _flatten(image),
            lambda frame: frame.embed(
                left, top, plan.width, plan.height,
                extend="background", background=[_white(frame)] * frame.bands,
            ),
        )  # fmt: skip
    if target is OutputFormat.JPG:
        image = _flatten(image)
    return image


def _white(image: pyvips.Image) -> int:
    return 65535 if image.format == "ushort" else 255


def _flatten(image: pyvips.Image) -> pyvips.Image:
    if not image.hasalpha():
        return image
    return image.flatten(background=[_white(image)] * (image.bands - 1))


def frame_height(image: pyvips.Image) -> int:
    page_height = int_field(image, "page-height", image.height)
    return page_height if page_height > 0 and image.height % page_height == 0 else image.height


def _each_frame(image: pyvips.Image, edit: Callable[[pyvips.Image], pyvips.Image]) -> pyvips.Image:
    """Apply `edit` to every frame of an animation (libvips stacks frames vertically)."""
    page_height = frame_height(image)
    if page_height == image.height:
        return edit(image)
    frames = [
        edit(image.crop(0, top, image.width, page_height))
        for top in range(0, image.height, page_height)
    ]
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    return joined
