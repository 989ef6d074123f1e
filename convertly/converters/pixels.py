"""The pixel budget (CONVERTLY_MAX_PIXELS): one check and one message for every family.

`check_pixels` refuses a source whose pixels, every kept frame or page counted, are over the
budget: images, animations, multi-page files and video frames alike. What can be drawn at any
size (an SVG, a PDF page) is drawn smaller instead: `fit` and `fit_scale` give the largest
size within a number of pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from convertly.converters.base import Limits
from convertly.errors import ImageTooLargeError


def check_pixels(limits: Limits, sizes: Sequence[tuple[int, int]], *,
                 subject: str = "image") -> None:
    """Raise ImageTooLargeError when `sizes` (width, height of each frame or page that is
    decoded) hold more pixels together than `limits.max_pixels`. `subject` names what the
    caller is refusing ("image", "video")."""
    pixels = sum(width * height for width, height in sizes)
    if pixels <= limits.max_pixels:
        return
    width, height = sizes[0]
    if len(sizes) == 1:
        what = f"{width}x{height}"
    elif all(size == sizes[0] for size in sizes):
        what = f"{len(sizes)} frames of {width}x{height}"
    else:
        what = f"{len(sizes)} frames or pages of different sizes"
    raise ImageTooLargeError(
        f"The {subject} is {what} = {pixels:,} pixels, over this server's limit of "
        f"{limits.max_pixels:,} (CONVERTLY_MAX_PIXELS). "
        f"Send a smaller {subject} or ask the operator to raise the limit.",
        detail={"pixels": pixels, "maxPixels": limits.max_pixels},
    )


def fit_scale(width: int, height: int, pixels: int) -> float:
    """The factor that brings `width` x `height` down to at most `pixels` pixels (1 when it
    holds no more already)."""
    if width * height <= pixels:
        return 1.0
    return math.sqrt(pixels / (width * height))


def fit(width: int, height: int, pixels: int) -> tuple[int, int]:
    """The largest size with `width`:`height`'s aspect ratio and at most `pixels` pixels."""
    scale = fit_scale(width, height, pixels)
    if scale == 1.0:
        return width, height
    return max(1, int(width * scale)), max(1, int(height * scale))
