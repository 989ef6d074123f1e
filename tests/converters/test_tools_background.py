"""remove-background at converter level: real onnxruntime sessions on tiny models built by
tests/converters/segmentation.py, real images, the cutout's alpha checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageStat

from convertly.converters.tools.background import REMOVE_BACKGROUND, load_model
from convertly.errors import FeatureUnavailableError
from convertly.sniff import Kind
from tests.converters.conftest import BLUE, RED, FakeLimits, write_image
from tests.converters.segmentation import byte_image_model, redness_model
from tests.converters.tools_support import run_tool

SUBJECT = (60, 30, 140, 90)  # a red box on a 200x120 blue photo


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    image = Image.new("RGB", (200, 120), BLUE)
    image.paste(RED, SUBJECT)
    return write_image(tmp_path, Kind.JPEG, image)


def stat(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(image.crop(box)).mean)


def inside(box: tuple[int, int, int, int], by: int = 4) -> tuple[int, int, int, int]:
    return box[0] + by, box[1] + by, box[2] - by, box[3] - by


def test_without_a_model_the_tool_is_unavailable(photo: Path, workdir: Path) -> None:
    with pytest.raises(FeatureUnavailableError, match="CONVERTLY_BACKGROUND_MODEL") as caught:
        run_tool(REMOVE_BACKGROUND, photo, workdir)
    assert caught.value.code == "FEATURE_UNAVAILABLE"


def test_a_file_that_is_no_model_is_unavailable_too(
    photo: Path, workdir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model" * 10)
    with pytest.raises(FeatureUnavailableError, match="cannot be loaded"):
        run_tool(REMOVE_BACKGROUND, photo, workdir,
                 limits=FakeLimits(background_model=str(broken)))
    with pytest.raises(FeatureUnavailableError, match="cannot be loaded"):
        load_model(str(tmp_path / "missing.onnx"))
    with pytest.raises(FeatureUnavailableError, match="cannot be loaded"):
        load_model(str(byte_image_model(tmp_path / "bytes.onnx")))


def test_the_subject_stays_and_the_background_becomes_transparent(
    photo: Path, workdir: Path, tmp_path: Path
) -> None:
    model = redness_model(tmp_path / "nchw.onnx")
    out = run_tool(REMOVE_BACKGROUND, photo, workdir,
                   limits=FakeLimits(background_model=str(model)))
    assert out.facts == {"width": 200, "height": 120, "format": "png"}
    with Image.open(out.files[0]) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (200, 120))
        alpha = image.getchannel("A")
        assert stat(alpha, inside(SUBJECT))[0] > 250
        for corner in ((0, 0, 40, 20), (160, 100, 200, 120)):
            assert stat(alpha, corner)[0] < 5
        red = stat(image.convert("RGB"), inside(SUBJECT))
        assert max(abs(g - w) for g, w in zip(red, RED, strict=True)) < 8
    cropped = run_tool(REMOVE_BACKGROUND, photo, workdir, crop="true",
                       limits=FakeLimits(background_model=str(model)))
    # the 80x60 subject, give or take the mask's soft edge
    width, height = cropped.facts["width"], cropped.facts["height"]
    assert 78 <= width <= 86 and 58 <= height <= 66, (width, height)


def test_an_nhwc_model_of_open_size_with_its_own_normalisation_and_a_fill(
    photo: Path, workdir: Path, tmp_path: Path
) -> None:
    model = redness_model(tmp_path / "nhwc.onnx", channels_first=False, side=None,
                          metadata={"mean": "0.5,0.5,0.5", "std": "1,1,1"})
    loaded = load_model(str(model))
    assert (loaded.channels_first, loaded.height, loaded.width) == (False, 320, 320)
    assert (loaded.mean, loaded.std) == ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
    out = run_tool(REMOVE_BACKGROUND, photo, workdir, background="#00ff00", format="jpeg",
                   limits=FakeLimits(background_model=str(model)))
    with Image.open(out.files[0]) as image:
        assert (image.format, image.size) == ("JPEG", (200, 120))
        green = stat(image, (0, 0, 40, 20))
        assert green[1] > 240 and green[0] < 15 and green[2] < 15
        red = stat(image, inside(SUBJECT))
        assert max(abs(g - w) for g, w in zip(red, RED, strict=True)) < 12
