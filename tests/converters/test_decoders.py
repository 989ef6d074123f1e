"""Files libvips alone reads wrongly or not at all, made here in the shapes users send: animated
PNG, AVIF image sequences, monochrome AVIF in limited range, tiled TIFFs with separate planes,
multi-page TIFFs, and CMYK without a profile (checked against a reference conversion)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import pyvips
from PIL import Image, ImageCms, ImageSequence

from convertly.models import JobType, OutputFormat, ResizePreset
from convertly.sniff import Kind
from tests.converters.conftest import (
    BLUE,
    GREEN,
    QUADRANTS,
    RED,
    ConvertFn,
    assert_colours_close,
    quadrant_means,
    quadrants,
    write_animation,
)
from tests.images import tiled_planar_tiff

F = OutputFormat
COLOURS = [RED, GREEN, BLUE, (240, 200, 40), (250, 250, 250)]
DELAYS = [40, 80, 120, 160, 200]
PLAYS = 3  # an APNG's num_plays: shown three times, then it stops


def write_apng(directory: Path, size: tuple[int, int] = (60, 40)) -> Path:
    """Five frames with their own delays, played three times; the last frame has a hole."""
    frames = [Image.new("RGBA", size, (*colour, 255)) for colour in COLOURS]
    frames[-1].paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1] // 2))
    path = directory / "animated.png"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=DELAYS, loop=PLAYS)
    return path


def animation_of(path: str | Path) -> tuple[int, list[int], int, list[tuple[float, ...]]]:
    """(frames, delays in ms, times played (0: forever), mean colour of each frame)."""
    with Image.open(path) as image:
        delays, means = [], []
        for frame in ImageSequence.Iterator(image):
            frame.load()  # WebP and AVIF fill in the duration when the frame is decoded
            delays.append(round(float(frame.info.get("duration") or 0)))
            means.append(quadrant_means(frame.convert("RGB"))[3])
        loop = int(image.info.get("loop", 0))
        if image.format == "GIF" and loop:
            loop += 1  # a GIF counts the repeats after the first showing
        return len(delays), delays, loop, means


@pytest.mark.parametrize("target", [F.WEBP, F.GIF, F.PNG])
def test_apng_keeps_frames_delays_and_loop(
    target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    result = convert(write_apng(tmp_path), target)

    count, delays, plays, means = animation_of(result.path)
    assert (count, delays, plays) == (len(COLOURS), DELAYS, PLAYS)
    assert_colours_close(means, COLOURS, tolerance=24)
    assert (result.width, result.height) == (60, 40)
    assert result.notes == ()
    with Image.open(result.path) as first:
        assert first.format == {F.WEBP: "WEBP", F.GIF: "GIF", F.PNG: "PNG"}[target]


def test_apng_last_frame_keeps_its_transparency(tmp_path: Path, convert: ConvertFn) -> None:
    result = convert(write_apng(tmp_path), F.WEBP)

    with Image.open(result.path) as image:
        image.seek(len(COLOURS) - 1)
        frame = image.convert("RGBA")
        assert frame.getpixel((5, 5))[3] == 0  # type: ignore[index]
        assert frame.getpixel((50, 30))[3] == 255  # type: ignore[index]


def test_apng_is_resized_frame_by_frame(tmp_path: Path, convert: ConvertFn) -> None:
    result = convert(write_apng(tmp_path), F.GIF, resize=ResizePreset.WIDTH, resize_width=30)

    count, delays, _, means = animation_of(result.path)
    assert (result.width, result.height) == (30, 20)
    assert (count, delays) == (len(COLOURS), DELAYS)
    assert_colours_close(means, COLOURS, tolerance=24)


def test_animated_gif_as_png_is_an_apng(tmp_path: Path, convert: ConvertFn) -> None:
    result = convert(write_animation(tmp_path, Kind.GIF), F.PNG)

    count, delays, plays, means = animation_of(result.path)
    assert (count, delays, plays) == (3, [100, 200, 300], 0)
    assert_colours_close(means, [RED, GREEN, BLUE], tolerance=24)


def test_compressed_apng_stays_animated(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_apng(tmp_path)

    result = convert(src, job_type=JobType.COMPRESS, compression=60)

    assert animation_of(result.path)[:3] == (len(COLOURS), DELAYS, PLAYS)
    assert result.applied_quality is None  # an APNG is written losslessly


@pytest.mark.parametrize("target", [F.JPG, F.AVIF, F.TIFF])
def test_apng_to_a_still_format_says_what_was_lost(
    target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    result = convert(write_apng(tmp_path), target)

    with Image.open(result.path) as image:
        assert getattr(image, "n_frames", 1) == 1
        assert_colours_close(quadrant_means(image.convert("RGB"))[:1], [RED], tolerance=24)
    assert any(f"first frame of {len(COLOURS)}" in note for note in result.notes)


@pytest.mark.parametrize("target", [F.WEBP, F.GIF, F.PNG])
def test_avif_sequence_keeps_its_frames(
    target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_animation(tmp_path, Kind.AVIF)
    assert src.read_bytes()[8:12] == b"avis"  # an image sequence, as .avifs files are

    result = convert(src, target)

    count, delays, _, means = animation_of(result.path)
    assert (count, delays) == (3, [100, 200, 300])
    assert_colours_close(means, [RED, GREEN, BLUE], tolerance=24)


def test_avif_sequence_to_jpg_keeps_the_first_frame(tmp_path: Path, convert: ConvertFn) -> None:
    result = convert(write_animation(tmp_path, Kind.AVIF), F.JPG)

    with Image.open(result.path) as image:
        assert_colours_close(quadrant_means(image)[:1], [RED], tolerance=24)
    assert any("first frame of 3" in note for note in result.notes)


@pytest.mark.parametrize("range_", ["limited", "full"])
@pytest.mark.parametrize("target", [F.PNG, F.JPG, F.WEBP])
def test_monochrome_avif_keeps_black_and_white(
    range_: str, target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    picture = Image.new("L", (64, 64), 0)
    picture.paste(255, (32, 0, 64, 64))
    src = tmp_path / "mono.avif"
    picture.save(src, quality=95, range=range_)  # 4:0:0, one luma plane

    result = convert(src, target)

    with Image.open(result.path) as image:
        grey = image.convert("L")
        black = grey.crop((4, 4, 28, 60)).getextrema()
        white = grey.crop((36, 4, 60, 60)).getextrema()
    assert black[1] <= 4, black  # libvips alone gives 16 here: limited range not expanded
    assert white[0] >= 251, white  # ... and 235 here


@pytest.mark.parametrize("target", [F.PNG, F.JPG])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_tiled_planar_lzw_tiff(
    mode: str, target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    picture = quadrants(72, 40).convert(mode)
    src = tmp_path / "tiled.tiff"
    src.write_bytes(tiled_planar_tiff(picture))

    result = convert(src, target, resize=ResizePreset.WIDTH, resize_width=36)

    with Image.open(result.path) as image:
        assert image.size == (36, 20)
        assert_colours_close(quadrant_means(image), list(QUADRANTS), tolerance=12)


def test_multipage_tiff_says_only_the_first_page_was_kept(
    tmp_path: Path, convert: ConvertFn
) -> None:
    src = tmp_path / "pages.tiff"
    pages = [Image.new("RGB", (40, 30), colour) for colour in (RED, GREEN)]
    pages[0].save(src, save_all=True, append_images=pages[1:])

    result = convert(src, F.PNG)

    with Image.open(result.path) as image:
        assert_colours_close(quadrant_means(image)[:1], [RED], tolerance=4)
    assert any("first of 2 pages" in note for note in result.notes)


# -- CMYK without a profile -------------------------------------------------------------------

# Press colours as CMYK 0-255: rich black, plain black, 50 % black, cyan, red, a skin tone.
CMYK_PATCHES = [(191, 178, 178, 255), (0, 0, 0, 255), (0, 0, 0, 128), (255, 0, 0, 0),
                (0, 255, 255, 0), (20, 60, 80, 5)]
SRGB = ImageCms.createProfile("sRGB")
LAB = ImageCms.createProfile("LAB")


def cmyk_patches() -> Image.Image:
    image = Image.new("CMYK", (16 * len(CMYK_PATCHES), 16))
    for index, colour in enumerate(CMYK_PATCHES):
        image.paste(colour, (16 * index, 0, 16 * (index + 1), 16))
    return image


def reference_srgb(image: Image.Image) -> Image.Image:
    """The reference conversion: lcms with libvips's CMYK profile, relative colorimetric with
    black-point compensation (what print software does by default)."""
    cmyk = ImageCms.ImageCmsProfile(io.BytesIO(pyvips.Image.profile_load("cmyk")))
    transform = ImageCms.buildTransform(
        cmyk, SRGB, "CMYK", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )
    converted = ImageCms.applyTransform(image, transform)
    assert converted is not None
    return converted


def patch_labs(image: Image.Image) -> list[tuple[float, float, float]]:
    to_lab = ImageCms.buildTransform(SRGB, LAB, "RGB", "LAB")
    lab = ImageCms.applyTransform(image.convert("RGB"), to_lab)
    assert lab is not None
    step = image.width // len(CMYK_PATCHES)
    values = []
    for index in range(len(CMYK_PATCHES)):
        x = index * step + step // 2
        l_, a, b = lab.getpixel((x, image.height // 2))  # type: ignore[misc]
        values.append((l_ * 100 / 255, a - 128.0, b - 128.0))
    return values


def assert_close_in_lab(image: Image.Image, reference: Image.Image, limit: float) -> None:
    for patch, got, want in zip(CMYK_PATCHES, patch_labs(image), patch_labs(reference),
                                strict=True):
        delta_e = math.dist(got, want)  # CIE76
        assert delta_e <= limit, (patch, got, want, delta_e)


@pytest.mark.parametrize("resize", [ResizePreset.ORIGINAL, ResizePreset.WIDTH])
@pytest.mark.parametrize("target", [F.PNG, F.WEBP])
def test_cmyk_jpeg_without_profile_matches_a_reference_conversion(
    resize: ResizePreset, target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    patches = cmyk_patches()
    src = tmp_path / "cmyk.jpg"
    patches.save(src, quality=100, subsampling=0)  # no ICC profile
    width = patches.width // 2 if resize is ResizePreset.WIDTH else None

    result = convert(src, target, resize=resize, resize_width=width, compression=100)

    with Image.open(result.path) as image:
        decoded = image.convert("RGB").resize(patches.size, Image.Resampling.NEAREST)
    assert_close_in_lab(decoded, reference_srgb(Image.open(src)), limit=3.0)
    assert max(decoded.getpixel((8, 8))) <= 10  # type: ignore[arg-type]  # rich black


def test_cmyk_tiff_read_by_pillow_matches_the_reference(tmp_path: Path,
                                                        convert: ConvertFn) -> None:
    patches = cmyk_patches()
    src = tmp_path / "cmyk.tiff"
    src.write_bytes(tiled_planar_tiff(patches))  # libvips refuses the layout: Pillow reads it

    result = convert(src, F.PNG)

    with Image.open(result.path) as image:
        assert_close_in_lab(image.convert("RGB"), reference_srgb(patches), limit=2.0)
