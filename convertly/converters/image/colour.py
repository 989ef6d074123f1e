"""CMYK to sRGB: the one rule, wherever libvips would otherwise convert it on its own.

A CMYK image goes through its embedded profile; without one, through libvips's standard
CMYK profile with black-point compensation, so that a rich black shows as black on screen
instead of a lifted, bluish grey (relative colorimetric alone maps the profile's black point,
about (30, 28, 38) in sRGB). libvips's `thumbnail` converts CMYK itself, without
compensation, so images are converted here before they are scaled.
"""

from __future__ import annotations

import pyvips


def is_cmyk(image: pyvips.Image) -> bool:
    return bool(image.interpretation == "cmyk")


def cmyk_to_srgb(image: pyvips.Image) -> pyvips.Image:
    """`image` (CMYK) as 8-bit sRGB carrying sRGB's profile, alpha kept."""
    if image.get_typeof("icc-profile-data"):
        return image.icc_transform("srgb", input_profile="cmyk", embedded=True)
    return image.icc_transform("srgb", input_profile="cmyk", black_point_compensation=True)
