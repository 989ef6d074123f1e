"""The image transform engine on small generated images: each step's effect, where it lands
(crop positions, padding sides, rotation direction) and the decode-time fast path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pyvips
from PIL import Image

from convertly.transforms import image as engine
from convertly.transforms import table
from convertly.transforms.parse import parse

RED, GREEN, BLUE, WHITE = (220, 30, 30), (30, 200, 60), (30, 60, 220), (255, 255, 255)


def quadrants(width: int, height: int) -> pyvips.Image:
    """Red, green / blue, white quadrants (top-left, top-right / bottom-left, bottom-right)."""
    half_w, half_h = width // 2, height // 2

    def flat(colour: tuple[int, int, int], w: int, h: int) -> pyvips.Image:
        return (pyvips.Image.black(w, h, bands=3) + list(colour)).cast("uchar")

    top = flat(RED, half_w, half_h).join(flat(GREEN, width - half_w, half_h), "horizontal")
    bottom = flat(BLUE, half_w, height - half_h).join(
        flat(WHITE, width - half_w, height - half_h), "horizontal")
    return top.join(bottom, "vertical").copy(interpretation="srgb")


def run(image: pyvips.Image, alpha: bool = True, **raw: Any) -> pyvips.Image:
    return engine.apply(image, parse({k: str(v) for k, v in raw.items()}, table.IMAGE),
                        alpha=alpha).copy_memory()


def colour(image: pyvips.Image, x: float, y: float) -> list[float]:
    """The mean of a small patch around (x, y), given as fractions of the size."""
    left = min(int(x * image.width), image.width - 3)
    top = min(int(y * image.height), image.height - 3)
    patch = image.crop(max(left - 1, 0), max(top - 1, 0), 3, 3)
    return [patch.extract_band(b).avg() for b in range(image.bands)]


def near(got: list[float], want: tuple[int, ...], tolerance: float = 6) -> bool:
    return all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=False))


@pytest.mark.parametrize(("position", "left", "right"), [
    ("left", RED, RED), ("right", GREEN, GREEN), ("centre", RED, GREEN),
])
def test_cover_scales_to_cover_then_crops_at_the_position(
    position: str, left: tuple[int, int, int], right: tuple[int, int, int]
) -> None:
    out = run(quadrants(400, 200), width=100, height=100, position=position)
    assert (out.width, out.height) == (100, 100)
    assert near(colour(out, 0.05, 0.25), left) and near(colour(out, 0.95, 0.25), right)
    assert near(colour(out, 0.05, 0.75), BLUE if left == RED else WHITE)


def test_a_focal_point_centres_the_crop_and_stays_inside() -> None:
    out = run(quadrants(400, 200), width=100, height=100, fp="0.95,0.5")  # near the right
    assert (out.width, out.height) == (100, 100)
    assert near(colour(out, 0.05, 0.25), GREEN) and near(colour(out, 0.05, 0.75), WHITE)
    out = run(quadrants(400, 200), width=100, height=100, fp="30%,50%")  # crop spans x 10-110
    assert near(colour(out, 0.05, 0.25), RED) and near(colour(out, 0.95, 0.25), GREEN)


def test_smartcrop_attention_finds_the_detail() -> None:
    flat = (pyvips.Image.black(300, 100, bands=3) + 128).cast("uchar")
    detail = pyvips.Image.gaussnoise(100, 100, sigma=80, mean=128).cast("uchar")
    busy = flat.insert(detail.bandjoin([detail, detail]), 200, 0).copy(interpretation="srgb")
    for position in ("attention", "entropy"):
        out = run(busy, width=100, height=100, position=position)
        assert (out.width, out.height) == (100, 100)
        assert out.extract_band(0).deviate() > 40


def test_contain_pads_the_box_with_background_at_the_position() -> None:
    out = run(quadrants(200, 100), width=100, height=100, fit="contain", position="top",
              background="#00ff0080")
    assert (out.width, out.height, out.bands) == (100, 100, 4)
    assert near(colour(out, 0.1, 0.1), (*RED, 255))
    assert near(colour(out, 0.5, 0.9), (0, 255, 0, 128))
    # without alpha in the output, transparent padding becomes white
    flat = run(quadrants(200, 100), alpha=False, width=100, height=100, fit="contain")
    assert flat.bands == 3 and near(colour(flat, 0.5, 0.05), WHITE)


@pytest.mark.parametrize(("fit", "size"), [
    ("fill", (100, 100)), ("inside", (100, 50)), ("outside", (200, 100)),
])
def test_the_other_fits(fit: str, size: tuple[int, int]) -> None:
    out = run(quadrants(400, 200), width=100, height=100, fit=fit)
    assert (out.width, out.height) == size


def test_one_side_or_a_percentage_keeps_the_aspect_ratio() -> None:
    assert (run(quadrants(400, 200), width=100).height) == 50
    out = run(quadrants(400, 200), height="25%")
    assert (out.width, out.height) == (100, 50)


def test_rotation_is_clockwise_and_flip_flop_mirror() -> None:
    out = run(quadrants(200, 100), rotate=90)
    assert (out.width, out.height) == (100, 200)
    assert near(colour(out, 0.9, 0.1), RED)  # top-left went to top-right
    tilted = run(quadrants(200, 100), rotate=30, background="transparent")
    assert tilted.bands == 4 and tilted.width > 200 and colour(tilted, 0.01, 0.01)[3] == 0
    assert near(colour(run(quadrants(200, 100), flip=1), 0.1, 0.1), BLUE)
    assert near(colour(run(quadrants(200, 100), flop=1), 0.1, 0.1), GREEN)


def test_trim_crops_transparent_borders_only() -> None:
    inner = (pyvips.Image.black(50, 30, bands=3) + list(RED)).cast("uchar").bandjoin_const(255)
    framed = inner.embed(10, 7, 80, 50, extend="background", background=[0, 0, 0, 0])
    out = run(framed.copy(interpretation="srgb"), trim=1)
    assert (out.width, out.height) == (50, 30)
    assert (run(quadrants(80, 50), trim=1).width) == 80  # nothing transparent: unchanged


def test_radius_pad_and_border() -> None:
    rounded = run(quadrants(100, 100), radius=20)
    assert rounded.bands == 4 and rounded.getpoint(0, 0)[3] == 0
    assert rounded.getpoint(50, 50)[3] == 255
    framed = run(quadrants(100, 100), pad=5, border=3, background="#0000ff",
                 borderColor="#ff0000")
    assert (framed.width, framed.height) == (116, 116)
    assert framed.getpoint(1, 50)[:3] == [255, 0, 0]
    assert framed.getpoint(5, 50)[:3] == [0, 0, 255]


def test_filters_and_colour_adjustments() -> None:
    noise = pyvips.Image.gaussnoise(64, 64, sigma=40, mean=128).cast("uchar")
    grainy = noise.bandjoin([noise, noise]).copy(interpretation="srgb")
    assert run(grainy, blur=3).deviate() < grainy.deviate() / 2
    assert run(grainy, sharpen=2).deviate() > grainy.deviate()
    grey = run(quadrants(100, 100), saturation=0)
    red, green, blue = colour(grey, 0.25, 0.25)
    assert abs(red - green) < 3 and abs(green - blue) < 3
    assert near(colour(run(quadrants(100, 100), brightness=0.5), 0.75, 0.75), (128, 128, 128))
    assert near(colour(run(quadrants(100, 100), contrast=0), 0.25, 0.25), (128, 128, 128))


def test_from_file_sizes_while_decoding_and_orients_by_exif(tmp_path: Path) -> None:
    picture = Image.new("RGB", (400, 200), RED)
    picture.paste(GREEN, (200, 0, 400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: 200 wide, 400 high
    src = tmp_path / "turned.jpg"
    picture.save(src, quality=95, exif=exif)
    t = parse({"width": "100"}, table.IMAGE)
    assert engine.fast_path(t)
    out = engine.from_file(src, t, alpha=False).copy_memory()
    assert (out.width, out.height) == (100, 200)
    assert near(colour(out, 0.5, 0.1), RED, 12) and near(colour(out, 0.5, 0.9), GREEN, 12)
    cropped = engine.from_file(src, parse({"w": "50", "h": "50", "g": "attention",
                                           "rotate": "90"}, table.IMAGE), alpha=False)
    assert (cropped.width, cropped.height) == (50, 50)
    assert not engine.fast_path(parse({"trim": "1"}, table.IMAGE))


def test_output_size_bounds_what_the_transform_makes() -> None:
    t = parse({"width": "100", "height": "100", "fit": "contain", "pad": "10"}, table.IMAGE)
    assert engine.output_size(400, 200, t) == (120, 120)
    assert engine.output_size(400, 200, parse({"rotate": "45"}, table.IMAGE)) == (448, 448)


def test_output_format_and_quality_names() -> None:
    assert engine.output_format({"format": "webp"}, "jpg", False) == "webp"
    assert engine.output_format({}, "bmp", True) == "png"
    assert engine.output_format({}, "heif", False) == "jpg"
    assert engine.output_format(parse({"r": "4"}, table.IMAGE), "heif", False) == "png"
    assert engine.output_format(parse({"pad": "4", "bg": "#fff"}, table.IMAGE), "heif",
                                False) == "jpg"
    assert engine.quality_for("very_low", "jpg") == 35
    assert engine.quality_for(None, "webp") == engine.DEFAULT_QUALITY
    assert engine.quality_for(50, "png") is None


def test_grey_cmyk_and_16_bit_sources_come_out_as_8_bit_srgb(tmp_path: Path) -> None:
    grey = Image.new("LA", (40, 20), (90, 200))
    grey.save(tmp_path / "grey.png")
    Image.new("CMYK", (40, 20), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    deep = (pyvips.Image.black(40, 20, bands=3) + 40000).cast("ushort").copy(
        interpretation="rgb16")
    deep.pngsave(str(tmp_path / "deep.png"))
    t = parse({"width": "20"}, table.IMAGE)
    for name, bands, want in (("grey.png", 4, (90, 90, 90, 200)), ("cmyk.jpg", 3, (230, 30, 40)),
                              ("deep.png", 3, (156, 156, 156))):
        out = engine.from_file(tmp_path / name, t, alpha=True).copy_memory()
        assert (out.width, out.interpretation, out.format, out.bands) == (
            20, "srgb", "uchar", bands), name
        assert near(colour(out, 0.5, 0.5), want, 30), (name, colour(out, 0.5, 0.5))
