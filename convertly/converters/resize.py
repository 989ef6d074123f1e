"""Resize presets -> output geometry. Pure arithmetic: no image library, no I/O.

Every plan has the same shape, whatever the preset: scale the whole (already oriented) image
to `scaled_width` x `scaled_height`, then either centre-crop it to `width` x `height` (cover
presets) or centre it on a white `width` x `height` canvas (ecommerce). Nothing is enlarged
except by ecommerce, which fits the image into its 2000 x 2000 square whatever its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from convertly.errors import InvalidFieldError
from convertly.models import ResizePreset

WEBSITE_BOX = 1920
EMAIL_WIDTH = 600
INSTAGRAM_BOX = (1080, 1080)
LINKEDIN_BOX = (1200, 627)
ECOMMERCE_BOX = 2000
SQUARE_DEFAULT = 1080


@dataclass(frozen=True)
class ResizePlan:
    """How to turn a `source_width` x `source_height` image into a `width` x `height` one."""

    source_width: int
    source_height: int
    scaled_width: int
    scaled_height: int
    width: int
    height: int

    @property
    def scales(self) -> bool:
        return (self.scaled_width, self.scaled_height) != (self.source_width, self.source_height)

    @property
    def crops(self) -> bool:
        return self.width < self.scaled_width or self.height < self.scaled_height

    @property
    def pads(self) -> bool:
        return self.width > self.scaled_width or self.height > self.scaled_height

    @property
    def unchanged(self) -> bool:
        return not (self.scales or self.crops or self.pads)

    @property
    def crop_offset(self) -> tuple[int, int]:
        """Top-left corner of the centred crop inside the scaled image."""
        return (self.scaled_width - self.width) // 2, (self.scaled_height - self.height) // 2

    @property
    def pad_offset(self) -> tuple[int, int]:
        """Top-left corner of the scaled image on the padded canvas."""
        return (self.width - self.scaled_width) // 2, (self.height - self.scaled_height) // 2


def plan_resize(
    width: int,
    height: int,
    preset: ResizePreset,
    resize_width: int | None = None,
    resize_height: int | None = None,
) -> ResizePlan:
    """The geometry `preset` gives an image that is `width` x `height` once oriented.

    `resize_width` is read by `square` (default 1080) and `width`; `resize_height` by `height`.
    A missing or non-positive value that the preset needs raises `InvalidFieldError`.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    match preset:
        case ResizePreset.ORIGINAL:
            return _scaled(width, height, width, height)
        case ResizePreset.WEBSITE:
            return _fit(width, height, WEBSITE_BOX, WEBSITE_BOX)
        case ResizePreset.EMAIL:
            return _fit(width, height, EMAIL_WIDTH, math.inf)
        case ResizePreset.INSTAGRAM:
            return _cover(width, height, *INSTAGRAM_BOX)
        case ResizePreset.LINKEDIN:
            return _cover(width, height, *LINKEDIN_BOX)
        case ResizePreset.ECOMMERCE:
            fitted = _fit(width, height, ECOMMERCE_BOX, ECOMMERCE_BOX, enlarge=True)
            return _scaled(width, height, fitted.width, fitted.height, ECOMMERCE_BOX, ECOMMERCE_BOX)
        case ResizePreset.SQUARE:
            side = _positive("resizeWidth", resize_width, preset, default=SQUARE_DEFAULT)
            return _cover(width, height, side, side)
        case ResizePreset.WIDTH:
            return _fit(width, height, _positive("resizeWidth", resize_width, preset), math.inf)
        case ResizePreset.HEIGHT:
            return _fit(width, height, math.inf, _positive("resizeHeight", resize_height, preset))
    raise ValueError(f"unknown resize preset {preset!r}")


def _positive(field: str, value: int | None, preset: ResizePreset, default: int = 0) -> int:
    if value is None and default:
        return default
    if value is None:
        raise InvalidFieldError(field, f"is required when resize is '{preset.value}'.")
    if value < 1:
        raise InvalidFieldError(field, f"must be a positive number of pixels, got {value}.")
    return value


def _scaled(
    width: int,
    height: int,
    scaled_width: int,
    scaled_height: int,
    canvas_width: int | None = None,
    canvas_height: int | None = None,
) -> ResizePlan:
    return ResizePlan(
        source_width=width,
        source_height=height,
        scaled_width=scaled_width,
        scaled_height=scaled_height,
        width=canvas_width or scaled_width,
        height=canvas_height or scaled_height,
    )


def _fit(
    width: int, height: int, box_width: float, box_height: float, *, enlarge: bool = False
) -> ResizePlan:
    """Scale to fit inside the box, keeping the aspect ratio (never enlarging unless asked)."""
    scale = min(box_width / width, box_height / height)
    if scale == 1 or (scale > 1 and not enlarge):
        return _scaled(width, height, width, height)
    # The side that touches the box gets the box's exact size; the other one is rounded.
    if box_width / width <= box_height / height:
        return _scaled(width, height, int(box_width), max(1, round(height * scale)))
    return _scaled(width, height, max(1, round(width * scale)), int(box_height))


def _cover(width: int, height: int, box_width: int, box_height: int) -> ResizePlan:
    """Fill the box and centre-crop the overflow; never enlarge.

    When filling the box would need enlarging, the image keeps its size and the centred
    largest region with the box's aspect ratio is cut out instead (800x400 -> 400x400 for
    a square box).
    """
    scale = max(box_width / width, box_height / height)
    if scale <= 1:
        scaled_width = max(box_width, round(width * scale))
        scaled_height = max(box_height, round(height * scale))
        return _scaled(width, height, scaled_width, scaled_height, box_width, box_height)
    if width * box_height > height * box_width:  # wider than the box
        crop_width, crop_height = max(1, round(height * box_width / box_height)), height
    else:
        crop_width, crop_height = width, max(1, round(width * box_height / box_width))
    return _scaled(width, height, width, height, crop_width, crop_height)
