"""watermark at converter level: text and logos over real images, and over a real video
(ffmpeg's overlay, the output's frames read back)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from convertly.converters.tools.overlay import WATERMARK, _text, place
from convertly.errors import InvalidFieldError
from convertly.sniff import Kind
from convertly.transforms.values import Colour
from tests.converters.conftest import BLUE, GREEN, RED, WHITE, write_animation, write_image
from tests.converters.tools_support import run_tool
from tests.media import real_seconds


def mean(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(image.convert("RGB").crop(box)).mean)


def close(got: tuple[float, ...], want: tuple[float, ...], tolerance: float) -> bool:
    return max(abs(g - w) for g, w in zip(got, want, strict=True)) <= tolerance


@pytest.fixture
def blue_png(tmp_path: Path) -> Path:
    return write_image(tmp_path, Kind.PNG, Image.new("RGB", (200, 100), BLUE))


@pytest.fixture
def red_logo(tmp_path: Path) -> Path:
    logo = tmp_path / "logo"
    logo.mkdir()
    return write_image(logo, Kind.PNG, Image.new("RGB", (40, 20), RED))


def test_place_puts_a_box_at_each_position_inside_the_margin() -> None:
    frame, mark = (200, 100), (50, 20)
    assert place("top-left", frame, mark, 5) == (5, 5)
    assert place("bottom-right", frame, mark, 5) == (145, 75)
    assert place("centre", frame, mark, 5) == (75, 40)
    assert place("top", frame, mark, 5) == (75, 5)
    assert place("right", frame, (300, 20), 5) == (0, 40)  # wider than the frame: inside


def test_an_opaque_logo_at_top_left_scaled_to_a_share_of_the_width(
    blue_png: Path, red_logo: Path, workdir: Path
) -> None:
    out = run_tool(WATERMARK, blue_png, workdir, logo=red_logo, position="top-left",
                   opacity=1, scale=0.5, margin=10)
    assert out.facts == {"width": 200, "height": 100, "format": "png", "frames": 1}
    with Image.open(out.files[0]) as image:
        assert image.size == (200, 100)
        # the 40x20 logo became 100x50 at (10, 10)
        assert close(mean(image, (14, 14, 106, 56)), RED, 2)
        assert close(mean(image, (0, 64, 200, 100)), BLUE, 2)
        assert close(mean(image, (114, 0, 200, 100)), BLUE, 2)


def test_half_opacity_blends_the_mark_with_the_image(
    blue_png: Path, red_logo: Path, workdir: Path
) -> None:
    # the logo sent as a data: URL (as the stored-file route's watermarkLogoDataUrl)
    url = "data:image/png;base64," + base64.b64encode(red_logo.read_bytes()).decode()
    out = run_tool(WATERMARK, blue_png, workdir, watermarkLogoDataUrl=url, position="centre",
                   opacity=0.5, scale=0.2)
    with Image.open(out.files[0]) as image:
        middle = mean(image, (95, 48, 105, 52))
    halfway = tuple((r + b) / 2 for r, b in zip(RED, BLUE, strict=True))
    assert close(middle, halfway, 4), middle


def test_text_is_drawn_in_its_colour_at_the_bottom_right_of_a_jpeg(
    tmp_path: Path, workdir: Path
) -> None:
    photo = write_image(tmp_path, Kind.JPEG, Image.new("RGB", (400, 200), BLUE))
    out = run_tool(WATERMARK, photo, workdir, text="DRAFT", color="#ffffff", opacity=1,
                   scale=0.3)
    assert out.files[0].suffix == ".jpg"
    with Image.open(out.files[0]) as image:
        assert (image.format, image.size) == ("JPEG", (400, 200))
        corner = image.convert("RGB").crop((260, 120, 400, 200))
        brightest = max(sum(corner.getpixel((x, y))) for x in range(0, corner.width, 2)
                         for y in range(corner.height))
        assert brightest > 3 * 230  # white glyphs
        # the text spans about 30 % of the width, in the bottom-right corner only
        assert close(mean(image, (0, 0, 250, 200)), BLUE, 3)
        columns = [x for x in range(400)
                   if max(image.getpixel((x, y))[0] for y in range(100, 200)) > 200]
        assert 0.2 * 400 <= columns[-1] - columns[0] <= 0.32 * 400
        assert columns[-1] < 400 - 0.02 * 200


def test_a_font_size_gives_the_text_its_height(tmp_path: Path, workdir: Path) -> None:
    photo = write_image(tmp_path, Kind.PNG, Image.new("RGB", (400, 200), BLUE))
    out = run_tool(WATERMARK, photo, workdir, text="Hq", fontSize=40, opacity=1,
                   position="centre")
    with Image.open(out.files[0]) as image:
        rgb = image.convert("RGB")
        rows = [y for y in range(200) if any(rgb.getpixel((x, y))[0] > 200
                                              for x in range(0, 400, 2))]
    # "Hq" spans from the cap height to the descender: about the font size
    assert 0.8 * 40 <= rows[-1] - rows[0] <= 1.3 * 40, (rows[0], rows[-1])


def test_text_is_never_drawn_much_larger_than_the_frame() -> None:
    white = Colour(255, 255, 255)
    for drawn in (_text("W" * 200, white, (120, 60), size=2000),  # ~300k x 2400 asked for
                  _text("I", white, (120, 60), wide=120)):  # one narrow glyph, full width
        assert drawn.width <= 2 * 120 + 20 and drawn.height <= 60 + 20, drawn


def test_tile_repeats_the_mark_across_the_image(
    blue_png: Path, red_logo: Path, workdir: Path
) -> None:
    out = run_tool(WATERMARK, blue_png, workdir, logo=red_logo, position="tiled",
                   opacity=1, scale=0.1)
    with Image.open(out.files[0]) as image:
        red_cells = sum(
            1 for x in range(0, 200, 5) for y in range(0, 100, 5)
            if close(image.convert("RGB").getpixel((x, y)), RED, 10)
        )
    # 20x10 marks on a 40x20 grid: a quarter of the image is red
    assert 0.2 <= red_cells / (40 * 20) <= 0.3


def test_every_frame_of_an_animation_is_marked(
    tmp_path: Path, workdir: Path
) -> None:
    animation = write_animation(tmp_path, Kind.GIF, size=(80, 40))  # red, green, blue
    logo = tmp_path / "logo"
    logo.mkdir()
    white = write_image(logo, Kind.PNG, Image.new("RGB", (20, 10), WHITE))
    out = run_tool(WATERMARK, animation, workdir, logo=white, position="top-left",
                   opacity=1, scale=0.5, margin=0)
    assert out.facts == {"width": 80, "height": 40, "format": "gif", "frames": 3}
    with Image.open(out.files[0]) as image:
        assert image.n_frames == 3
        for index, colour in enumerate((RED, GREEN, BLUE)):
            image.seek(index)
            assert close(mean(image, (2, 2, 38, 18)), WHITE, 12)
            assert close(mean(image, (44, 22, 80, 40)), colour, 12)


def test_text_and_logo_together_or_neither_are_refused(
    blue_png: Path, red_logo: Path, workdir: Path
) -> None:
    with pytest.raises(InvalidFieldError, match="not both"):
        run_tool(WATERMARK, blue_png, workdir, logo=red_logo, text="x")
    with pytest.raises(InvalidFieldError, match="not neither"):
        run_tool(WATERMARK, blue_png, workdir)
    with pytest.raises(InvalidFieldError, match="base64 data: URL of an image"):
        run_tool(WATERMARK, blue_png, workdir, logoDataUrl="https://example.com/logo.png")
    with pytest.raises(InvalidFieldError, match="cannot become mp4"):
        run_tool(WATERMARK, blue_png, workdir, text="x", format="mp4")


def test_a_video_gets_the_mark_on_every_frame_and_keeps_its_audio(
    tmp_path: Path, red_logo: Path, workdir: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=white:size=160x120:rate=5",
         "-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.6", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)],
        check=True,
    )
    out = run_tool(WATERMARK, clip, workdir, logo=red_logo, position="bottom-left",
                   opacity=1, scale=0.5, margin=0)
    result = out.files[0]
    assert result.name == "watermarked.mp4"
    assert out.facts["format"] == "mp4" and (out.facts["width"], out.facts["height"]) == (160, 120)
    assert real_seconds(result) == pytest.approx(0.6, abs=0.15)
    streams = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
         str(result)], capture_output=True, text=True, check=True,
    ).stdout.split()
    assert sorted(streams) == ["audio", "video"]
    last = workdir / "last.png"
    subprocess.run(["ffmpeg", "-v", "error", "-sseof", "-0.2", "-i", str(result),
                    "-frames:v", "1", str(last)], check=True)
    with Image.open(last) as frame:
        # an 80x40 red mark at the bottom left, white elsewhere
        assert close(mean(frame, (4, 84, 76, 116)), RED, 20)
        assert close(mean(frame, (90, 0, 160, 70)), WHITE, 8)
