"""The media rows of the table through `parse`, and the ffmpeg arguments made from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convertly.converters.tools.inspect import INSPECT
from convertly.converters.tools.media import TOOLS as MEDIA_TOOLS
from convertly.errors import InvalidFieldError
from convertly.transforms import media as av
from convertly.transforms import table
from convertly.transforms.parse import parse

MEDIA = (*table.CLIP, *table.ENCODING)
README = Path(__file__).resolve().parent.parent.parent / "README.md"
NAME = re.compile(r"`([A-Za-z-]+)`")


def test_media_rows_read_timestamps_aliases_and_codec_spellings() -> None:
    got = parse({"ss": "0:01:02.5", "to": "75", "codec": "HEVC", "q": "very_low",
                 "vb": "800", "ab": "96", "frameRate": "12.5"}, MEDIA)
    assert got == {"start": 62.5, "end": 75.0, "duration": None, "codec": "h265",
                   "quality": "very_low", "videoBitrate": 800, "audioBitrate": 96, "fps": 12.5}
    assert parse({}, MEDIA)["start"] == 0.0
    for raw, field in (({"fps": "0"}, "fps"), ({"codec": "mpeg2"}, "codec"),
                       ({"duration": "0"}, "duration"), ({"start": "-1"}, "start"),
                       ({"audioBitrate": "2000"}, "audioBitrate")):  # fmt: skip
        with pytest.raises(InvalidFieldError) as caught:
            parse(raw, MEDIA)
        assert caught.value.field == field


def test_the_clip_window_stays_inside_the_source_and_names_the_field_at_fault() -> None:
    assert av.clip_window(10.0) == av.Window(0.0, 10.0)
    assert av.clip_window(10.0, 2.0, end=5.0) == av.Window(2.0, 3.0)
    assert av.clip_window(10.0, 2.0, duration=30.0) == av.Window(2.0, 8.0)
    assert av.clip_window(10.0, 4.0, max_length=5.0) == av.Window(4.0, 5.0)
    assert av.clip_window(10.0, 1.5, end=3.0).input_args() == ["-ss", "1.500", "-t", "1.500"]
    for kwargs, field in (({"start": 10.0}, "start"), ({"start": 3.0, "end": 3.0}, "end"),
                          ({"end": 4.0, "duration": 1.0}, "duration")):  # fmt: skip
        with pytest.raises(InvalidFieldError) as caught:
            av.clip_window(10.0, **kwargs)
        assert caught.value.field == field


@pytest.mark.parametrize(("fit", "size", "filters"), [
    ("cover", (200, 200), ("scale=266:200", "crop=200:200", "setsar=1")),
    ("contain", (200, 200), ("scale=200:150", "pad=200:200:(ow-iw)/2:(oh-ih)/2:color=black",
                             "setsar=1")),
    ("fill", (200, 200), ("scale=200:200", "setsar=1")),
    ("inside", (200, 150), ("scale=200:150", "setsar=1")),
    ("outside", (266, 200), ("scale=266:200", "setsar=1")),
])  # fmt: skip
def test_fit_modes_give_ffmpeg_filters_and_the_output_size(
    fit: str, size: tuple[int, int], filters: tuple[str, ...]
) -> None:
    frame = av.fit_frame((640, 480), 200, 200, fit)
    assert (frame.width, frame.height) == size
    assert frame.filters == filters


def test_one_side_keeps_the_aspect_ratio_and_nothing_grows_unless_asked() -> None:
    assert av.fit_frame((640, 480), 320, None) == av.Frame(("scale=320:240", "setsar=1"), 320, 240)
    assert av.fit_frame((640, 480), None, None) == av.Frame((), 640, 480)
    assert av.fit_frame((320, 240), 640, None).width == 320
    assert av.fit_frame((320, 240), 640, None, enlarge=True).width == 640
    # 4:2:0 video needs even sides; an odd source is scaled to the even size below
    odd = av.fit_frame((321, 241), None, None)
    assert (odd.width, odd.height) == (320, 240) and odd.filters[0] == "scale=320:240"
    assert av.fit_frame((321, 241), None, None, even=False) == av.Frame((), 321, 241)
    # non-square pixels (640x240 shown, 320x240 decoded) are always scaled to square ones
    assert av.fit_frame((640, 240), None, None, rescale=True).filters == ("scale=640:240",
                                                                         "setsar=1")


def test_quality_names_map_onto_each_encoders_scale() -> None:
    for codec in av.VIDEO_CODECS:
        crfs = [av.crf_for(codec, name) for name in table.QUALITY_NAMES]
        assert crfs == sorted(crfs, reverse=True) and len(set(crfs)) == 5, (codec, crfs)
    assert av.crf_for("h264", "medium") == 26 and av.crf_for("h264", 82) == 23
    assert av.video_args(av.VIDEO_CODECS["vp9"], "high")[-4:] == ["-crf", "33", "-b:v", "0"]
    assert av.video_args(av.VIDEO_CODECS["h264"], kbps=900)[-2:] == ["-b:v", "900k"]
    assert av.audio_args("mp3", 2, "very_high") == ["-c:a", "libmp3lame", "-q:a", "1"]
    assert av.audio_args("webm", 6, "medium") == ["-c:a", "libopus", "-b:a", "96k", "-ac", "2"]
    assert av.audio_args("m4a", 2, kbps=64) == ["-c:a", "aac", "-b:a", "64k"]


def test_a_codec_the_container_cannot_hold_is_refused_naming_codec() -> None:
    assert av.video_codec("webm", None).encoder == "libvpx-vp9"
    assert av.video_codec("mov", None).encoder == "libx264"
    assert av.video_codec("mp4", "av1").encoder == "libsvtav1"
    with pytest.raises(InvalidFieldError) as caught:
        av.video_codec("webm", "h264")
    assert caught.value.field == "codec" and "mov or mp4, not webm" in str(caught.value)


def test_every_audio_and_video_tool_reads_each_name_once() -> None:
    for tool in (*MEDIA_TOOLS, INSPECT):
        names = [name for param in tool.params for name in param.names]
        assert len(names) == len(set(names)), tool.name


def test_the_readme_lists_every_media_parameter_with_its_aliases() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n### Audio and video tools")
    end = text.index("| tool | sources |", start)
    rows = [line.split("|") for line in text[start:end].splitlines() if line.startswith("| `")]
    listed = {NAME.findall(row[1])[0]: tuple(NAME.findall(row[2])) for row in rows}
    assert listed == {p.name: p.aliases for p in table.MEDIA}
