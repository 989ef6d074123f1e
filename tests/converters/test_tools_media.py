"""The media tools and inspect against real ffmpeg, libvips and PDFium: outputs are probed
(durations, sizes, frames, codecs), not compared by bytes. Inputs: two-second clips."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageCms

from convertly.converters.tools.base import Tool, ToolOutput
from convertly.converters.tools.image import THUMBNAIL
from convertly.converters.tools.inspect import INSPECT
from convertly.converters.tools.media import EXTRACT_AUDIO, GIF, POSTER_FRAME, STORYBOARD, TRIM
from convertly.errors import (
    CorruptFileError,
    ImageTooLargeError,
    InvalidFieldError,
    MediaTooLongError,
    UnsupportedConversionError,
)
from convertly.sniff import sniff_file
from convertly.transforms.parse import parse
from tests.converters.conftest import FakeLimits
from tests.media import lying_matroska, real_seconds

# A clock: the frame number drawn large, so tiles and frames tell their time apart.
VIDEO = "testsrc2=size=320x240:rate=25:duration=2"
TONE = "sine=frequency=440:duration=2:sample_rate=44100"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
                   check=True, timeout=60)  # fmt: skip


def ffprobe(path: Path) -> dict[str, Any]:
    done = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                           "-show_streams", str(path)],
                          capture_output=True, check=True, text=True, timeout=30)  # fmt: skip
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    ffmpeg("-f", "lavfi", "-i", VIDEO, "-f", "lavfi", "-i", TONE, "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
           "-metadata", "title=Holiday", str(root / "clip.mp4"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", TONE, "-c:a", "libmp3lame", str(root / "tone.mp3"))
    return root


def run(tool: Tool, src: Path, workdir: Path, raw: Mapping[str, Any] | None = None,
        limits: FakeLimits | None = None) -> ToolOutput:  # fmt: skip
    """The tool on `src` with `raw` options parsed as the API parses them (strings)."""
    workdir.mkdir(exist_ok=True)
    options = parse(raw or {}, tool.params)
    done = tool.run(src, sniff_file(src), options, workdir, limits or FakeLimits(),
                    lambda _f: None)  # fmt: skip
    assert sorted(workdir.iterdir()) == sorted(done.files), "scratch files left"
    return done


def test_poster_frame_takes_the_frame_at_the_timestamp_sized_by_fit(
    clips: Path, tmp_path: Path
) -> None:
    done = run(POSTER_FRAME, clips / "clip.mp4", tmp_path / "a",
               {"timestamp": "0:00:01", "width": "50%", "height": "100", "fit": "cover",
                "format": "webp", "quality": "high"})  # fmt: skip
    (out,) = done.files
    with Image.open(out) as image:
        assert (image.format, image.size) == ("WEBP", (160, 100))
    assert done.facts == {"timestamp": 1.0, "width": 160, "height": 100, "format": "webp"}
    # The default (1 s) on a clip it is past is clamped to the last frame; jpg by default.
    late = run(POSTER_FRAME, clips / "clip.mp4", tmp_path / "b", {"timestamp": "30"})
    assert late.facts["timestamp"] == pytest.approx(1.96)
    with Image.open(late.files[0]) as image:
        assert (image.format, image.size) == ("JPEG", (320, 240))


def test_extract_audio_writes_the_window_of_the_audio_track(clips: Path, tmp_path: Path) -> None:
    done = run(EXTRACT_AUDIO, clips / "clip.mp4", tmp_path,
               {"format": "ogg", "start": "0.5", "end": "1.5", "quality": "low"})
    info = ffprobe(done.files[0])
    assert [s["codec_name"] for s in info["streams"]] == ["vorbis"]
    assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.05)


def test_extract_audio_refuses_a_file_without_audio(clips: Path, tmp_path: Path) -> None:
    silent = tmp_path / "silent.mp4"
    ffmpeg("-i", str(clips / "clip.mp4"), "-an", "-c", "copy", str(silent))
    with pytest.raises(UnsupportedConversionError, match="no audio track"):
        run(EXTRACT_AUDIO, silent, tmp_path / "w")


@pytest.mark.parametrize(("raw", "codecs", "size"), [
    ({"start": "0.5", "end": "1.5"}, ["h264", "aac"], (320, 240)),
    ({"start": "0.5", "duration": "1", "format": "webm", "codec": "av1", "fps": "10",
      "width": "50%"}, ["av1", "opus"], (160, 120)),
    ({"start": "0.5", "duration": "1", "codec": "hevc", "videoBitrate": "300", "width": "160",
      "height": "160", "fit": "contain"}, ["hevc", "aac"], (160, 160)),
])  # fmt: skip
def test_trim_cuts_exactly_with_the_codec_and_size_asked_for(
    clips: Path, tmp_path: Path, raw: dict[str, str], codecs: list[str], size: tuple[int, int]
) -> None:
    done = run(TRIM, clips / "clip.mp4", tmp_path, raw)
    info = ffprobe(done.files[0])
    assert [s["codec_name"] for s in info["streams"]] == codecs
    video = info["streams"][0]
    assert (video["width"], video["height"]) == size == (done.facts["width"],
                                                          done.facts["height"])
    rate = 10 if raw.get("fps") else 25
    assert video["r_frame_rate"] == f"{rate}/1"
    seconds = float(video.get("duration") or info["format"]["duration"])  # webm: the file's
    assert seconds == pytest.approx(1.0, abs=1.5 / rate)
    assert done.facts["start"] == 0.5 and done.facts["end"] == 1.5


def test_trim_of_audio_keeps_its_format_and_refuses_video_options(
    clips: Path, tmp_path: Path
) -> None:
    done = run(TRIM, clips / "tone.mp3", tmp_path / "a", {"start": "1.25"})
    info = ffprobe(done.files[0])
    assert done.files[0].suffix == ".mp3" and len(info["streams"]) == 1
    assert float(info["format"]["duration"]) == pytest.approx(0.75, abs=0.06)
    with pytest.raises(InvalidFieldError) as caught:
        run(TRIM, clips / "tone.mp3", tmp_path / "b", {"format": "mp4"})
    assert caught.value.field == "format"
    with pytest.raises(InvalidFieldError) as caught:
        run(TRIM, clips / "clip.mp4", tmp_path / "d", {"format": "m4a", "w": "100"})
    assert caught.value.field == "width"
    with pytest.raises(InvalidFieldError) as caught:
        run(TRIM, clips / "clip.mp4", tmp_path / "c", {"start": "3"})
    assert caught.value.field == "start"


def test_gif_has_the_width_and_frame_rate_asked_for(clips: Path, tmp_path: Path) -> None:
    done = run(GIF, clips / "clip.mp4", tmp_path, {"start": "0.5", "width": "160", "fps": "8"})
    with Image.open(done.files[0]) as image:
        assert image.size == (160, 120)
        assert image.n_frames == 12  # 1.5 s at 8 frames/s
        assert image.info["loop"] == 0
    assert done.facts["frames"] == 12 and done.facts["duration"] == 1.5


def test_storyboard_is_a_grid_of_evenly_spread_frames(clips: Path, tmp_path: Path) -> None:
    done = run(STORYBOARD, clips / "clip.mp4", tmp_path / "a",
               {"frames": "6", "columns": "4", "width": "80", "format": "png"})
    assert done.facts["columns"] == 4 and done.facts["rows"] == 2
    times = [f["time"] for f in done.facts["frames"]]
    assert times == pytest.approx([1 / 6, 0.5, 5 / 6, 7 / 6, 1.5, 11 / 6], abs=0.001)
    assert done.facts["frames"][5] == {"time": pytest.approx(1.833, abs=0.001), "x": 80, "y": 60}
    with Image.open(done.files[0]) as grid:
        assert grid.size == (320, 120)
        tiles = [grid.crop((f["x"], f["y"], f["x"] + 80, f["y"] + 60)).tobytes()
                 for f in done.facts["frames"]]  # fmt: skip
        empty = grid.crop((240, 60, 320, 120)).convert("L").getextrema()
    assert len(set(tiles)) == 6, "every tile shows another moment"
    assert empty == (0, 0), "the grid's unused place is black"
    every = run(STORYBOARD, clips / "clip.mp4", tmp_path / "b", {"interval": "0.5", "w": "40"})
    assert [f["time"] for f in every.facts["frames"]] == [0.0, 0.5, 1.0, 1.5]
    assert (every.facts["columns"], every.facts["rows"], every.facts["tileHeight"]) == (4, 1, 30)


def test_tools_refuse_a_file_over_the_limits(clips: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaTooLongError):
        run(GIF, clips / "clip.mp4", tmp_path / "a", limits=FakeLimits(max_media_seconds=1))
    # 40 tiles of 640x480 would be 12 MP, over a limit of 10 MP: refused before decoding
    with pytest.raises(ImageTooLargeError, match="storyboard"):
        run(STORYBOARD, clips / "clip.mp4", tmp_path / "b", {"frames": "40", "width": "640"},
            limits=FakeLimits(max_pixels=10_000_000))


def test_inspect_reports_streams_of_media_and_metadata_presence_of_stills(
    clips: Path, tmp_path: Path
) -> None:
    facts = run(INSPECT, clips / "clip.mp4", tmp_path / "a").facts
    assert (facts["format"], facts["width"], facts["height"]) == ("mp4", 320, 240)
    assert facts["duration"] == pytest.approx(2.0, abs=0.05)
    assert [(s["type"], s["codec"]) for s in facts["streams"]] == [("video", "h264"),
                                                                   ("audio", "aac")]
    assert facts["streams"][0]["fps"] == 25 and facts["streams"][1]["channels"] == 2
    assert facts["metadata"]["title"] == "Holiday" and facts["hasExif"] is False

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (64, 48), "red").save(tmp_path / "a.jpg", exif=exif.tobytes())
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGBA", (30, 20)).save(tmp_path / "b.png", icc_profile=srgb)
    jpeg = run(INSPECT, tmp_path / "a.jpg", tmp_path / "b").facts
    png = run(INSPECT, tmp_path / "b.png", tmp_path / "c").facts
    assert (jpeg["width"], jpeg["height"], jpeg["orientation"]) == (64, 48, 6)
    assert (jpeg["hasExif"], jpeg["hasIcc"], png["hasExif"], png["hasIcc"]) == (
        True, False, False, True)  # fmt: skip
    assert png["hasAlpha"] is True and png["streams"] == [] and png["duration"] is None

    document = pdfium.PdfDocument.new()
    document.new_page(595, 842)
    document.new_page(300, 300)
    document.save(str(tmp_path / "c.pdf"))
    pdf = run(INSPECT, tmp_path / "c.pdf", tmp_path / "d").facts
    assert (pdf["pages"], pdf["width"], pdf["height"], pdf["format"]) == (2, 595, 842, "pdf")


def test_thumbnail_of_a_video_is_a_frame_through_the_image_pipeline(
    clips: Path, tmp_path: Path
) -> None:
    done = run(THUMBNAIL, clips / "clip.mp4", tmp_path, {"width": "100"})
    assert [f.name for f in done.files] == ["thumbnail.jpg"]
    with Image.open(done.files[0]) as image:
        assert (image.format, image.size) == ("JPEG", (100, 75))


def test_a_header_that_understates_the_length_makes_no_tool_read_past_it(
    tmp_path: Path,
) -> None:
    src = tmp_path / "long.webm"
    src.write_bytes(lying_matroska(20, declared=1.0, audio=True))
    done = run(EXTRACT_AUDIO, src, tmp_path / "w", {"format": "wav"})
    assert real_seconds(done.files[0]) < 1.1


def test_a_damaged_file_is_corrupt_not_a_crash(clips: Path, tmp_path: Path) -> None:
    src = tmp_path / "broken.mp4"
    src.write_bytes((clips / "clip.mp4").read_bytes()[:600])
    for tool in (TRIM, INSPECT):
        with pytest.raises(CorruptFileError):
            run(tool, src, tmp_path / tool.name)
