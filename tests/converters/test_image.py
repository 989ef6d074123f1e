from __future__ import annotations

import io
from pathlib import Path

import pytest
import pyvips
from PIL import Image, ImageChops, ImageCms, ImageOps

from convertly.converters.base import Converter
from convertly.converters.builtin import default_registry
from convertly.converters.image import (
    SOURCES,
    TARGETS,
    ImageConverter,
    register,
)
from convertly.converters.image import converter as image_module
from convertly.converters.image.jpeg_markers import strip_jpeg_metadata
from convertly.converters.registry import Registry
from convertly.errors import (
    ConversionError,
    CorruptFileError,
    ImageTooLargeError,
    InvalidFieldError,
    UnsupportedConversionError,
)
from convertly.models import (
    CompressMode,
    FileSpec,
    JobType,
    OutputFormat,
    ResizePreset,
    SourceInfo,
    extension_for,
    mime_for,
)
from convertly.sniff import Kind, sniff_file
from tests.converters.conftest import (
    BLUE,
    GREEN,
    QUADRANTS,
    RED,
    WHITE,
    ConvertFn,
    FakeLimits,
    assert_colours_close,
    noisy,
    quadrant_means,
    quadrants,
    write_animation,
    write_image,
)

F = OutputFormat
LOSSY = {F.JPG, F.WEBP, F.AVIF, F.HEIF}
OUTPUT_KINDS = {
    F.JPG: Kind.JPEG,
    F.PNG: Kind.PNG,
    F.WEBP: Kind.WEBP,
    F.AVIF: Kind.AVIF,
    F.TIFF: Kind.TIFF,
    F.GIF: Kind.GIF,
    F.HEIF: Kind.HEIF,
}
OUTPUT_MODES = {
    F.JPG: {"RGB"},
    F.PNG: {"RGB", "RGBA"},
    F.WEBP: {"RGB", "RGBA"},
    F.AVIF: {"RGB", "RGBA"},
    F.TIFF: {"RGB", "RGBA"},
    F.GIF: {"P"},
    F.HEIF: {"RGB", "RGBA"},
}
COMPRESS = JobType.COMPRESS
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MAKE = 0x010F
ORIENTATION = 0x0112


def decode(path: str | Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def exif_of(path: str | Path) -> dict[int, object]:
    with Image.open(path) as image:
        return dict(image.getexif())


def icc_of(path: str | Path) -> bytes | None:
    with Image.open(path) as image:
        return image.info.get("icc_profile")


def frames_of(path: str | Path) -> tuple[int, list[object], object, list[tuple[float, ...]]]:
    """(frame count, per-frame durations, loop, per-frame mean colour)."""
    with Image.open(path) as image:
        count: int = getattr(image, "n_frames", 1)
        durations: list[object] = []
        means = []
        for index in range(count):
            image.seek(index)
            image.load()  # WebP fills in the frame's duration when it decodes it
            durations.append(image.info.get("duration"))
            means.append(quadrant_means(image.convert("RGB"))[0])
        return count, durations, image.info.get("loop"), means


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The pixel at `xy` as a tuple, whatever the mode."""
    value = image.getpixel(xy)
    assert isinstance(value, (int, tuple))
    return value if isinstance(value, tuple) else (value,)


# -- every source kind to every target format --------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", SOURCES)
def test_every_source_kind_converts_to_every_target(
    kind: Kind, target: OutputFormat, tmp_path: Path, workdir: Path, convert: ConvertFn
) -> None:
    src = write_image(tmp_path, kind, quadrants(96, 64))

    result = convert(src, target)

    out = Path(result.path)
    assert out == workdir / f"output.{extension_for(target)}"
    assert sniff_file(out).kind == OUTPUT_KINDS[target]
    assert (result.format, result.mime_type) == (target.value, mime_for(target))
    assert (result.width, result.height) == (96, 64)
    assert result.applied_quality == (82 if target in LOSSY else None)
    decoded = decode(out)
    assert decoded.size == (96, 64)
    assert decoded.mode in OUTPUT_MODES[target]
    if decoded.mode == "RGBA":
        assert decoded.getchannel("A").getextrema() == (255, 255)
    assert_colours_close(quadrant_means(decoded), QUADRANTS, tolerance=24)


def test_registry_routes_every_pair_to_the_image_converter() -> None:
    registry = default_registry()
    for kind in SOURCES:
        assert set(registry.targets_for(kind)) >= set(TARGETS)
        for target in TARGETS:
            converter = registry.find(kind, target)
            assert isinstance(converter, ImageConverter)
            assert converter.name == "image"


def test_registering_twice_is_an_error() -> None:
    registry = Registry()
    register(registry)
    with pytest.raises(ValueError, match="already handled"):
        register(registry)


def test_is_a_converter() -> None:
    converter: Converter = ImageConverter()
    assert converter.name == "image"


def test_unsupported_target_is_refused(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.PNG, quadrants(16, 16))
    with pytest.raises(UnsupportedConversionError):
        convert(src, F.PDF)


# -- resize presets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "preset", "extra", "expected"),
    [
        ((2400, 1600), ResizePreset.WEBSITE, {}, (1920, 1280)),
        ((1000, 800), ResizePreset.WEBSITE, {}, (1000, 800)),
        ((1200, 900), ResizePreset.EMAIL, {}, (600, 450)),
        ((1600, 1200), ResizePreset.INSTAGRAM, {}, (1080, 1080)),
        ((800, 400), ResizePreset.INSTAGRAM, {}, (400, 400)),
        ((2400, 1600), ResizePreset.LINKEDIN, {}, (1200, 627)),
        ((300, 150), ResizePreset.ECOMMERCE, {}, (2000, 2000)),
        ((400, 300), ResizePreset.SQUARE, {"resize_width": 200}, (200, 200)),
        ((600, 400), ResizePreset.WIDTH, {"resize_width": 300}, (300, 200)),
        ((600, 400), ResizePreset.HEIGHT, {"resize_height": 100}, (150, 100)),
        ((600, 400), ResizePreset.WIDTH, {"resize_width": 1000}, (600, 400)),
    ],
)
def test_resize_presets_give_the_planned_size(
    size: tuple[int, int],
    preset: ResizePreset,
    extra: dict[str, int],
    expected: tuple[int, int],
    tmp_path: Path,
    convert: ConvertFn,
) -> None:
    src = write_image(tmp_path, Kind.JPEG, quadrants(*size))

    result = convert(src, F.WEBP, resize=preset, **extra)

    assert (result.width, result.height) == expected
    decoded = decode(result.path)
    assert decoded.size == expected
    if preset is not ResizePreset.ECOMMERCE:  # a centred crop keeps the quadrant layout
        assert_colours_close(quadrant_means(decoded), QUADRANTS, tolerance=24)


@pytest.mark.parametrize("kind", SOURCES)
def test_every_source_kind_resizes(kind: Kind, tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, kind, quadrants(96, 64))

    result = convert(src, F.PNG, resize=ResizePreset.SQUARE, resize_width=32)

    decoded = decode(result.path)
    assert decoded.size == (32, 32) == (result.width, result.height)
    assert_colours_close(quadrant_means(decoded), QUADRANTS, tolerance=24)


def test_ecommerce_pads_on_white(tmp_path: Path, convert: ConvertFn) -> None:
    image = Image.new("RGBA", (400, 200), (*RED, 255))
    image.paste((0, 0, 0, 0), (0, 0, 40, 200))  # a transparent band on the left
    src = write_image(tmp_path, Kind.PNG, image)

    result = convert(src, F.PNG, resize=ResizePreset.ECOMMERCE)

    decoded = decode(result.path).convert("RGB")
    assert decoded.size == (2000, 2000)
    assert pixel(decoded, (10, 10)) == WHITE  # padding above the picture
    assert pixel(decoded, (1000, 1990)) == WHITE  # and below it
    assert pixel(decoded, (50, 1000)) == WHITE  # the transparent band, flattened on white
    assert_colours_close([pixel(decoded, (1000, 1000))], [RED], tolerance=4)


def test_width_preset_without_width_is_a_field_error(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.PNG, quadrants(64, 64))
    with pytest.raises(InvalidFieldError) as caught:
        convert(src, F.PNG, resize=ResizePreset.WIDTH)
    assert caught.value.field == "resizeWidth"


# -- animation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target"),
    [(Kind.GIF, F.WEBP), (Kind.WEBP, F.GIF), (Kind.GIF, F.GIF), (Kind.WEBP, F.WEBP)],
)
def test_animation_keeps_frames_delays_and_loop(
    kind: Kind, target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_animation(tmp_path, kind)

    result = convert(src, target)

    count, durations, loop, means = frames_of(result.path)
    assert (result.width, result.height) == (80, 40)
    assert count == 3
    assert durations == [100, 200, 300]
    assert loop == 0
    assert_colours_close(means, [RED, GREEN, BLUE], tolerance=24)


@pytest.mark.parametrize(
    ("side", "expected"),
    [(50, 50), (None, 100)],  # scaled then cropped; cropped only
)
@pytest.mark.parametrize("target", [F.WEBP, F.GIF])
def test_animation_is_resized_and_cropped_frame_by_frame(
    target: OutputFormat, side: int | None, expected: int, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_animation(tmp_path, Kind.GIF, size=(200, 100))

    result = convert(src, target, resize=ResizePreset.SQUARE, resize_width=side)

    count, durations, _, means = frames_of(result.path)
    assert (result.width, result.height) == (expected, expected)
    assert decode(result.path).size == (expected, expected)
    assert count == 3
    assert durations == [100, 200, 300]
    assert_colours_close(means, [RED, GREEN, BLUE], tolerance=24)


def test_animation_is_padded_frame_by_frame(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_animation(tmp_path, Kind.WEBP, size=(40, 20))

    result = convert(src, F.WEBP, resize=ResizePreset.ECOMMERCE)

    count, _, _, _ = frames_of(result.path)
    assert count == 3
    assert decode(result.path).size == (2000, 2000)


@pytest.mark.parametrize("target", [F.JPG, F.AVIF, F.TIFF])  # png: an APNG (test_decoders)
def test_animation_to_a_still_format_keeps_the_first_frame(
    target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_animation(tmp_path, Kind.GIF)

    result = convert(src, target)

    decoded = decode(result.path)
    assert decoded.size == (80, 40)
    assert_colours_close(quadrant_means(decoded), [RED] * 4, tolerance=24)
    assert any("first frame" in note for note in result.notes)


# -- orientation and metadata ------------------------------------------------------------------


def oriented_jpeg(tmp_path: Path, orientation: int = 6) -> Path:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "ConvertlyTest"
    return write_image(
        tmp_path, Kind.JPEG, quadrants(120, 60), exif=exif.tobytes(), icc_profile=SRGB_ICC
    )


@pytest.mark.parametrize("resize", [ResizePreset.ORIGINAL, ResizePreset.EMAIL])
@pytest.mark.parametrize("target", [F.JPG, F.PNG, F.WEBP])
def test_exif_orientation_is_applied_by_default(
    resize: ResizePreset, target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    src = oriented_jpeg(tmp_path)
    expected = quadrant_means(ImageOps.exif_transpose(decode(src)))

    result = convert(src, target, resize=resize)

    decoded = decode(result.path)
    assert decoded.size == (60, 120) == (result.width, result.height)
    assert_colours_close(quadrant_means(decoded), expected, tolerance=24)
    exif = exif_of(result.path)
    assert exif.get(ORIENTATION, 1) == 1
    assert exif[MAKE] == "ConvertlyTest"


def test_exif_orientation_is_left_alone_when_auto_orient_is_off(
    tmp_path: Path, convert: ConvertFn
) -> None:
    src = oriented_jpeg(tmp_path)

    result = convert(src, F.JPG, auto_orient=False, resize=ResizePreset.WIDTH, resize_width=60)

    decoded = decode(result.path)
    assert decoded.size == (60, 30)
    assert_colours_close(quadrant_means(decoded), QUADRANTS, tolerance=24)
    assert exif_of(result.path)[ORIENTATION] == 6


def test_exif_orientation_is_applied_when_the_jpeg_shrinks_on_load(
    tmp_path: Path, convert: ConvertFn
) -> None:
    src = oriented_jpeg(tmp_path)  # 120x60 stored, 60x120 shown
    expected = quadrant_means(ImageOps.exif_transpose(decode(src)))

    result = convert(src, F.PNG, resize=ResizePreset.WIDTH, resize_width=15)  # decoded at 1/4

    decoded = decode(result.path)
    assert decoded.size == (15, 30) == (result.width, result.height)
    assert_colours_close(quadrant_means(decoded), expected, tolerance=24)


@pytest.mark.parametrize("target", [F.JPG, F.PNG, F.WEBP, F.AVIF, F.HEIF])
def test_metadata_is_kept_by_default(
    target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    src = oriented_jpeg(tmp_path, orientation=1)

    result = convert(src, target)

    assert exif_of(result.path)[MAKE] == "ConvertlyTest"
    assert icc_of(result.path)


@pytest.mark.parametrize("target", [F.JPG, F.PNG, F.WEBP, F.AVIF, F.HEIF, F.TIFF])
def test_strip_metadata_removes_exif_and_keeps_icc(
    target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    src = oriented_jpeg(tmp_path, orientation=1)

    result = convert(src, target, strip_metadata=True)

    assert MAKE not in exif_of(result.path)
    assert icc_of(result.path)


def test_heif_source_keeps_its_exif(tmp_path: Path, convert: ConvertFn) -> None:
    exif = Image.Exif()
    exif[MAKE] = "ConvertlyTest"
    src = write_image(tmp_path, Kind.HEIF, quadrants(64, 48), exif=exif.tobytes())

    assert exif_of(convert(src, F.JPG).path)[MAKE] == "ConvertlyTest"
    assert MAKE not in exif_of(convert(src, F.JPG, strip_metadata=True).path)


# -- awkward pixel formats ---------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_cmyk_jpeg_becomes_rgb(target: OutputFormat, tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, Image.new("CMYK", (64, 48), (0, 255, 255, 0)))

    result = convert(src, target)

    decoded = decode(result.path)
    assert decoded.mode in OUTPUT_MODES[target]
    red, green, blue = quadrant_means(decoded)[0]
    assert red > 180 and green < 90 and blue < 90
    icc = icc_of(result.path)
    if icc:  # never the CMYK profile on RGB pixels
        assert ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip() == "RGB"


def test_cmyk_tiff_becomes_rgb(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.TIFF, Image.new("CMYK", (64, 48), (0, 255, 255, 0)))

    decoded = decode(convert(src, F.PNG).path)

    assert decoded.mode == "RGB"
    red, green, blue = quadrant_means(decoded)[0]
    assert red > 180 and green < 90 and blue < 90


def test_compress_keeps_a_cmyk_jpeg_in_cmyk(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(64, 48).convert("CMYK"), quality=100)

    result = convert(src, job_type=COMPRESS, compression=60)

    assert decode(result.path).mode == "CMYK"
    assert result.applied_quality == 60


def test_sixteen_bit_png(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.PNG, Image.new("I;16", (64, 48), 40000))

    as_png = decode(convert(src, F.PNG).path)
    assert as_png.mode == "I;16"
    assert pixel(as_png, (5, 5)) == (40000,)
    for target in (F.JPG, F.WEBP, F.GIF, F.AVIF, F.HEIF):
        decoded = decode(convert(src, target).path).convert("L")
        assert abs(pixel(decoded, (5, 5))[0] - 40000 / 257) <= 6, target


def palette_with_transparency() -> Image.Image:
    image = Image.new("P", (64, 48), 0)
    image.putpalette([0, 0, 0, *RED, *BLUE])
    image.paste(1, (32, 0, 64, 48))
    image.paste(2, (0, 24, 32, 48))
    image.info["transparency"] = 0  # top-left quadrant is see-through
    return image


@pytest.mark.parametrize("target", TARGETS)
def test_palette_png_with_transparency(
    target: OutputFormat, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_image(tmp_path, Kind.PNG, palette_with_transparency(), transparency=0)

    decoded = decode(convert(src, target).path)

    if target is F.JPG:
        assert_colours_close([pixel(decoded, (5, 5))], [WHITE], tolerance=8)
    else:
        rgba = decoded.convert("RGBA")
        assert pixel(rgba, (5, 5))[3] == 0
        assert pixel(rgba, (50, 5))[3] == 255
    assert_colours_close([pixel(decoded.convert("RGB"), (50, 10))], [RED], tolerance=24)
    assert_colours_close([pixel(decoded.convert("RGB"), (10, 40))], [BLUE], tolerance=24)


def test_grey_with_alpha_to_jpeg_is_flattened(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.PNG, Image.new("LA", (32, 32), (0, 0)))

    decoded = decode(convert(src, F.JPG).path)

    assert decoded.mode in ("L", "RGB")
    assert pixel(decoded.convert("L"), (16, 16))[0] >= 250


# -- compress ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.JPEG, Kind.WEBP, Kind.AVIF, Kind.HEIF, Kind.PNG])
def test_compress_target_size_lands_under_the_target(
    kind: Kind, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_image(tmp_path, kind, noisy(240, 180), **({"quality": 100} if kind in {
        Kind.JPEG, Kind.WEBP, Kind.AVIF, Kind.HEIF} else {}))  # fmt: skip
    target_bytes = src.stat().st_size // 3

    result = convert(
        src, job_type=COMPRESS, mode=CompressMode.TARGET_SIZE, target_bytes=target_bytes
    )

    size = Path(result.path).stat().st_size
    assert size <= target_bytes
    assert result.applied_quality is not None and 1 <= result.applied_quality <= 100
    assert decode(result.path).size == (240, 180)
    assert not list(Path(result.path).parent.glob("attempt*"))


def test_compress_target_size_out_of_reach(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(240, 180))

    with pytest.raises(ConversionError) as caught:
        convert(src, job_type=COMPRESS, mode=CompressMode.TARGET_SIZE, target_bytes=300)

    assert caught.value.detail["quality"] == 1
    assert caught.value.detail["smallestBytes"] > 300
    assert "targetBytes" in caught.value.message


def test_compress_target_size_of_a_lossless_only_format(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.TIFF, noisy(120, 90))

    with pytest.raises(ConversionError) as caught:
        convert(src, job_type=COMPRESS, mode=CompressMode.TARGET_SIZE, target_bytes=300)

    assert caught.value.detail["quality"] is None


def test_compress_target_size_needs_a_target(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(64, 64))
    with pytest.raises(InvalidFieldError) as caught:
        convert(src, job_type=COMPRESS, mode=CompressMode.TARGET_SIZE)
    assert caught.value.field == "targetBytes"


@pytest.mark.parametrize("kind", [Kind.JPEG, Kind.WEBP, Kind.AVIF, Kind.HEIF])
def test_compress_quality_reencodes_smaller(kind: Kind, tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, kind, noisy(160, 120), quality=100)

    result = convert(src, job_type=COMPRESS, compression=50)

    assert result.applied_quality == 50
    assert Path(result.path).stat().st_size < src.stat().st_size
    assert sniff_file(Path(result.path)).kind == kind


def test_compress_png_quantises_to_a_palette(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.PNG, noisy(160, 120))

    result = convert(src, job_type=COMPRESS, compression=60)

    decoded = decode(result.path)
    assert decoded.mode == "P"
    assert Path(result.path).stat().st_size < src.stat().st_size
    assert_colours_close(quadrant_means(decoded), quadrant_means(decode(src)), tolerance=16)


def test_compress_never_returns_a_larger_file(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(160, 120), quality=20)

    result = convert(src, job_type=COMPRESS, compression=100)

    assert Path(result.path).read_bytes() == src.read_bytes()
    assert result.applied_quality is None
    assert result.notes


@pytest.mark.parametrize("kind", [Kind.PNG, Kind.WEBP])
def test_compress_lossless_is_pixel_identical(
    kind: Kind, tmp_path: Path, convert: ConvertFn
) -> None:
    image = noisy(120, 90)
    options = {"compress_level": 0} if kind is Kind.PNG else {"lossless": True, "method": 0}
    src = write_image(tmp_path, kind, image, **options)

    result = convert(src, job_type=COMPRESS, lossless=True)

    out = Path(result.path)
    assert out.stat().st_size < src.stat().st_size  # really re-encoded, not copied
    assert ImageChops.difference(decode(out).convert("RGB"), image).getbbox() is None


@pytest.mark.parametrize("kind", [Kind.PNG, Kind.BMP, Kind.TIFF, Kind.GIF])
def test_lossless_sources_convert_to_png_pixel_identical(
    kind: Kind, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_image(tmp_path, kind, quadrants(64, 48))

    out = decode(convert(src, F.PNG).path).convert("RGB")

    assert ImageChops.difference(out, decode(src).convert("RGB")).getbbox() is None


def test_compress_lossless_jpeg_keeps_the_pixels(tmp_path: Path, convert: ConvertFn) -> None:
    src = oriented_jpeg(tmp_path, orientation=6)

    result = convert(src, job_type=COMPRESS, lossless=True, strip_metadata=True)

    out = Path(result.path)
    assert ImageChops.difference(decode(out), decode(src)).getbbox() is None
    exif = exif_of(out)
    assert MAKE not in exif
    assert exif[ORIENTATION] == 6  # the pixels were not turned, so the tag must stay
    assert icc_of(out) == SRGB_ICC
    assert out.stat().st_size < src.stat().st_size
    assert (result.width, result.height) == (60, 120)
    assert result.applied_quality is None


def test_compress_lossless_jpeg_without_stripping_copies_the_file(
    tmp_path: Path, convert: ConvertFn
) -> None:
    src = oriented_jpeg(tmp_path)
    result = convert(src, job_type=COMPRESS, lossless=True)
    assert Path(result.path).read_bytes() == src.read_bytes()


def test_compress_strip_metadata(tmp_path: Path, convert: ConvertFn) -> None:
    src = oriented_jpeg(tmp_path, orientation=1)
    result = convert(src, job_type=COMPRESS, strip_metadata=True, compression=60)
    assert MAKE not in exif_of(result.path)
    assert icc_of(result.path)


def test_compress_keeps_an_animation(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_animation(tmp_path, Kind.WEBP)
    result = convert(src, job_type=COMPRESS, compression=50)
    assert frames_of(result.path)[0] == 3


def test_compress_bmp_says_to_convert_to_png(tmp_path: Path, workdir: Path) -> None:
    src = write_image(tmp_path, Kind.BMP, quadrants(32, 32))
    spec = FileSpec(index=0, filename="a.bmp", job_type=COMPRESS)
    with pytest.raises(UnsupportedConversionError, match="png"):
        ImageConverter().convert(src, sniff_file(src), spec, workdir, FakeLimits())


def test_compress_does_not_resize(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, quadrants(64, 64))
    with pytest.raises(InvalidFieldError):
        convert(src, job_type=COMPRESS, resize=ResizePreset.WEBSITE)


def test_strip_jpeg_metadata_keeps_image_segments(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[MAKE] = "ConvertlyTest"
    path = tmp_path / "a.jpg"
    noisy(64, 48).save(
        path, exif=exif.tobytes(), icc_profile=SRGB_ICC, comment=b"hello", progressive=True
    )
    data = path.read_bytes() + b"trailing junk"

    stripped = strip_jpeg_metadata(data)

    assert b"ConvertlyTest" not in stripped and b"hello" not in stripped
    assert stripped.endswith(b"\xff\xd9")
    (tmp_path / "b.jpg").write_bytes(stripped)
    assert icc_of(tmp_path / "b.jpg") == SRGB_ICC
    assert ImageChops.difference(decode(tmp_path / "b.jpg"), decode(path)).getbbox() is None


# -- broken input and limits -------------------------------------------------------------------


def source_info(kind: Kind, size: int) -> SourceInfo:
    return SourceInfo(kind=kind.value, family="image", mime_type=kind.mime_type, size=size)


@pytest.mark.parametrize("kind", SOURCES)
def test_empty_file_is_corrupt(kind: Kind, tmp_path: Path, workdir: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    spec = FileSpec(index=0, filename="empty", format=F.PNG)
    with pytest.raises(CorruptFileError):
        ImageConverter().convert(src, source_info(kind, 0), spec, workdir, FakeLimits())


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
@pytest.mark.parametrize("target", [F.WEBP, F.PNG])
@pytest.mark.parametrize("kind", SOURCES)
def test_damaged_file_is_corrupt(
    kind: Kind, target: OutputFormat, damage: str, tmp_path: Path, convert: ConvertFn
) -> None:
    src = write_image(tmp_path, kind, noisy(96, 64))
    data = src.read_bytes()
    if damage == "truncated":
        src.write_bytes(data[: len(data) // 2])
    else:  # a valid start, then noise
        src.write_bytes(data[:32] + bytes((i * 37 + 11) % 256 for i in range(len(data) - 32)))

    with pytest.raises(CorruptFileError):
        convert(src, target)


def test_truncated_jpeg_fails_even_when_resized(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(800, 600))
    src.write_bytes(src.read_bytes()[:-4000])
    with pytest.raises(CorruptFileError):
        convert(src, F.WEBP, resize=ResizePreset.EMAIL)


def test_truncated_jpeg_fails_when_it_shrinks_on_load(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(800, 600))
    src.write_bytes(src.read_bytes()[:-4000])
    with pytest.raises(CorruptFileError):
        convert(src, F.WEBP, resize=ResizePreset.WIDTH, resize_width=200)


def test_truncated_jpeg_lossless_compress_is_corrupt(tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, Kind.JPEG, noisy(96, 64))
    src.write_bytes(src.read_bytes()[:-300])
    with pytest.raises(CorruptFileError):
        convert(src, job_type=COMPRESS, lossless=True)


@pytest.mark.parametrize("kind", [Kind.JPEG, Kind.HEIF])
def test_failing_encoder_is_not_blamed_on_the_file(
    kind: Kind, tmp_path: Path, convert: ConvertFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_encoder(*args: object, **kwargs: object) -> None:
        raise pyvips.Error("encoder exploded")

    monkeypatch.setattr(image_module, "save", broken_encoder)
    src = write_image(tmp_path, kind, quadrants(64, 48))

    with pytest.raises(ConversionError) as caught:
        convert(src, F.WEBP)

    assert not isinstance(caught.value, CorruptFileError)
    assert isinstance(caught.value.__cause__, pyvips.Error)


@pytest.mark.parametrize("kind", SOURCES)
def test_pixel_limit(kind: Kind, tmp_path: Path, convert: ConvertFn) -> None:
    src = write_image(tmp_path, kind, quadrants(100, 100))

    with pytest.raises(ImageTooLargeError) as caught:
        convert(src, F.PNG, limits=FakeLimits(max_pixels=9_999))

    assert "CONVERTLY_MAX_PIXELS" in caught.value.message
    assert "10,000" in caught.value.message and "9,999" in caught.value.message
    assert convert(src, F.PNG, limits=FakeLimits(max_pixels=10_000)).width == 100
