"""The media converter against real ffmpeg: inputs are generated once with lavfi."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from convertly.converters.base import Converter
from convertly.converters.media import TARGETS, MediaConverter, register
from convertly.converters.media.ffmpeg import MediaInfo, ProgressReader, Stream, probe
from convertly.converters.media.task import (
    ANIMATION_TARGETS,
    AUDIO_TARGETS,
    FRAME_TARGETS,
    VIDEO_TARGETS,
    Task,
)
from convertly.converters.registry import Registry
from convertly.errors import (
    ConversionError,
    ConversionTimeoutError,
    CorruptFileError,
    ImageTooLargeError,
    InvalidFieldError,
    MediaTooLongError,
    UnsupportedConversionError,
)
from convertly.models import (
    CompressMode,
    ConvertedFile,
    FileSpec,
    JobType,
    OutputFormat,
    ResizePreset,
    extension_for,
    mime_for,
)
from convertly.sniff import Kind, sniff_file
from tests.converters.conftest import BLUE, GREEN, RED, FakeLimits, write_animation
from tests.media import declared_seconds, lying_matroska, real_seconds

F = OutputFormat
COMPRESS = JobType.COMPRESS
SECONDS = 2.0
VIDEO = "testsrc2=size=320x240:rate=25:duration=2"
TONE = "sine=frequency=440:duration=2:sample_rate=44100"
NOISE = "anoisesrc=duration=2:color=pink:amplitude=0.3:sample_rate=44100"
STEREO = ("-ac", "2")
VIDEO_CODECS = {F.MP4: ("h264", "aac"), F.MOV: ("h264", "aac"), F.WEBM: ("vp9", "opus")}
AUDIO_CODECS = {F.MP3: "mp3", F.WAV: "pcm_s16le", F.OGG: "vorbis", F.M4A: "aac", F.FLAC: "flac"}
FRAME_KINDS = {F.JPG: "JPEG", F.PNG: "PNG", F.AVIF: "AVIF", F.TIFF: "TIFF", F.HEIF: "HEIF"}


# -- inputs ----------------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", *args],
        check=True,
        timeout=60,
    )


def lavfi(out: Path, *args: str, video: str | None = VIDEO, audio: str | None = TONE) -> Path:
    inputs: list[str] = []
    if video:
        inputs += ["-f", "lavfi", "-i", video]
    if audio:
        inputs += ["-f", "lavfi", "-i", audio]
    ffmpeg(*inputs, *args, str(out))
    return out


@dataclass(frozen=True)
class Inputs:
    root: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """Two-second 320x240 clips and tones in every source format, plus odd cases."""
    root = tmp_path_factory.mktemp("media")
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    vp9 = ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")
    lavfi(root / "clip.mp4", *x264, "-c:a", "aac", *STEREO)
    lavfi(root / "clip.mov", *x264, "-c:a", "aac", *STEREO, "-f", "mov")
    lavfi(root / "clip.webm", *vp9, "-c:a", "libopus", *STEREO)
    lavfi(root / "tone.mp3", "-c:a", "libmp3lame", *STEREO, video=None)
    lavfi(root / "tone.wav", "-c:a", "pcm_s16le", *STEREO, video=None)
    lavfi(root / "tone.ogg", "-c:a", "libvorbis", *STEREO, video=None)
    lavfi(root / "tone.flac", "-c:a", "flac", *STEREO, video=None)
    lavfi(root / "tone.m4a", "-c:a", "aac", *STEREO, video=None)
    # Noise does not compress: target-size has room below these.
    for name, codec in (("noise.mp3", "libmp3lame"), ("noise.ogg", "libvorbis"),
                        ("noise.m4a", "aac")):  # fmt: skip
        lavfi(root / name, "-c:a", codec, "-b:a", "192k", *STEREO, video=None, audio=NOISE)
    lavfi(root / "clip.gif", "-vf", "fps=10,scale=160:120", audio=None)
    lavfi(root / "silent.mp4", *x264, audio=None)
    lavfi(root / "audio-only.mp4", "-c:a", "aac", video=None)
    lavfi(root / "odd.mp4", "-vf", "scale=321:241", "-c:v", "libx264", "-preset", "ultrafast",
          "-pix_fmt", "yuv444p", audio=None)  # fmt: skip
    lavfi(root / "wide-pixels.mp4", "-vf", "setsar=2", *x264, audio=None)
    lavfi(root / "tagged.mp4", *x264, "-c:a", "aac", "-metadata", "title=Secret title",
          "-metadata", "artist=Someone")  # fmt: skip
    lavfi(root / "tagged.mp3", "-c:a", "libmp3lame", "-metadata", "title=Secret title",
          "-metadata", "artist=Someone", video=None)  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", TONE, "-f", "lavfi", "-i", "color=red:size=64x64:duration=1",
           "-map", "0:a", "-map", "1:v", "-frames:v", "1", "-c:a", "libmp3lame", "-c:v", "mjpeg",
           "-disposition:v", "attached_pic", str(root / "cover.mp3"))  # fmt: skip
    lavfi(root / "tiny.mp3", "-c:a", "libmp3lame", "-q:a", "9", video=None)
    lavfi(root / "tone24.flac", "-c:a", "flac", "-sample_fmt", "s32", video=None)
    for degrees, name in ((90, "rotated.mp4"), (270, "rotated-back.mp4")):
        ffmpeg("-i", str(root / "clip.mp4"), "-c", "copy", "-metadata:s:v:0",
               f"rotate={degrees}", str(root / name))  # fmt: skip
    # Written to a pipe, the muxer cannot go back to write the duration (like MediaRecorder).
    with (root / "no-duration.webm").open("wb") as out:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", VIDEO, *vp9, "-f", "webm", "pipe:1"],
            stdout=out,
            check=True,
            timeout=60,
        )
    return Inputs(root)


# -- helpers ---------------------------------------------------------------------------------


def ffprobe(path: str | Path) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)],
        capture_output=True, check=True, text=True, timeout=30,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def stream(info: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((s for s in info["streams"] if s["codec_type"] == kind), None)


def duration_of(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


def tags_of(info: dict[str, Any]) -> dict[str, str]:
    tags = {k.lower(): v for k, v in info["format"].get("tags", {}).items()}
    for s in info["streams"]:
        tags.update({k.lower(): v for k, v in s.get("tags", {}).items()})
    return tags


ConvertFn = Callable[..., ConvertedFile]


@pytest.fixture
def convert(tmp_path: Path) -> ConvertFn:
    """convert(src, target, converter=..., limits=..., progress=..., **FileSpec fields)."""
    counter = iter(range(1000))

    def run(
        src: Path,
        target: OutputFormat | None = None,
        *,
        converter: MediaConverter | None = None,
        limits: FakeLimits | None = None,
        progress: Callable[[float], None] | None = None,
        **fields: Any,
    ) -> ConvertedFile:
        workdir = tmp_path / f"work{next(counter)}"
        workdir.mkdir()
        source = sniff_file(src)
        if fields.get("job_type") is COMPRESS and target is None:
            target = OutputFormat(Kind(source.kind).own_format)
        spec = FileSpec(index=0, filename=src.name, format=target, **fields)
        result = (converter or MediaConverter()).convert(
            src, source, spec, workdir, limits or FakeLimits(), progress or (lambda _f: None)
        )
        out = Path(result.path)
        assert out.parent == workdir and out.name == f"output.{extension_for(result.format)}"
        assert sorted(p.name for p in workdir.iterdir()) == [out.name], "scratch files left"
        return result

    return run


SOURCE_FILES = {
    Kind.MP4: "clip.mp4", Kind.MOV: "clip.mov", Kind.WEBM: "clip.webm", Kind.GIF: "clip.gif",
    Kind.MP3: "tone.mp3", Kind.WAV: "tone.wav", Kind.OGG: "tone.ogg", Kind.FLAC: "tone.flac",
    Kind.M4A: "tone.m4a",
}  # fmt: skip
PAIRS = [(kind, target) for kind, targets in TARGETS.items() for target in targets]


# -- registration ----------------------------------------------------------------------------


def test_inputs_sniff_as_their_kind(inputs: Inputs) -> None:
    for kind, name in SOURCE_FILES.items():
        assert sniff_file(inputs[name]).kind == kind.value, name


def test_register_covers_the_matrix_and_nothing_else() -> None:
    registry = Registry()
    register(registry)
    converter: Converter = MediaConverter()  # mypy checks the protocol
    assert registry.find(Kind.MP4, F.MP3).name == converter.name == "media"
    assert {k: sorted(v) for k, v in registry.matrix().items()} == {
        k: sorted(v) for k, v in TARGETS.items()
    }
    for kind in (Kind.MP3, Kind.WAV, Kind.OGG, Kind.FLAC, Kind.M4A):
        for target in VIDEO_TARGETS:
            with pytest.raises(UnsupportedConversionError, match="not supported"):
                registry.find(kind, target)
    with pytest.raises(UnsupportedConversionError):
        registry.find(Kind.WEBP, F.MP4)
    with pytest.raises(ValueError, match="already handled"):
        register(registry)


# -- every pair ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "target"), PAIRS, ids=[f"{k}-{t}" for k, t in PAIRS])
def test_every_pair(inputs: Inputs, convert: ConvertFn, kind: Kind, target: OutputFormat) -> None:
    src = inputs[SOURCE_FILES[kind]]
    result = convert(src, target)
    out = Path(result.path)
    assert result.format == target.value
    assert result.mime_type == mime_for(target.value)
    expected_size = (160, 120) if kind is Kind.GIF else (320, 240)
    if target in FRAME_TARGETS:
        with Image.open(out) as image:
            assert image.format == FRAME_KINDS[target]
            assert image.size == expected_size
        assert (result.width, result.height) == expected_size
        return
    if target is F.WEBP:
        with Image.open(out) as image:
            assert image.format == "WEBP"
            assert image.size == expected_size
            assert getattr(image, "n_frames", 1) == 2 * 15  # 2 s at the 15 fps cap
        return
    info = ffprobe(out)
    assert abs(duration_of(info) - SECONDS) <= 0.3, info["format"]
    video, audio = stream(info, "video"), stream(info, "audio")
    if target is F.GIF:
        assert video is not None and video["codec_name"] == "gif"
        assert (video["width"], video["height"]) == (320, 240)
        assert (result.width, result.height) == (320, 240)
    elif target in VIDEO_TARGETS:
        video_codec, audio_codec = VIDEO_CODECS[target]
        assert video is not None and video["codec_name"] == video_codec
        assert video["pix_fmt"] == "yuv420p"
        assert (video["width"], video["height"]) == expected_size
        assert (result.width, result.height) == expected_size
        if kind is Kind.GIF:
            assert audio is None
        else:
            assert audio is not None and audio["codec_name"] == audio_codec
    else:
        assert video is None
        assert audio is not None and audio["codec_name"] == AUDIO_CODECS[target]
        assert audio["channels"] == 2
        assert result.width is None and result.height is None


def test_h264_output_is_web_ready(inputs: Inputs, convert: ConvertFn) -> None:
    result = convert(inputs["clip.webm"], F.MP4)
    data = Path(result.path).read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "-movflags +faststart puts moov first"
    assert result.notes == ("H.264 CRF 23, AAC 160 kb/s.",)
    assert result.applied_quality == 82


def test_same_codecs_only_change_the_container(inputs: Inputs, convert: ConvertFn) -> None:
    result = convert(inputs["clip.mp4"], F.MOV)
    assert result.applied_quality is None
    assert "copied" in result.notes[0]
    src_video = stream(ffprobe(inputs["clip.mp4"]), "video")
    out_video = stream(ffprobe(result.path), "video")
    assert src_video is not None and out_video is not None
    assert out_video["nb_frames"] == src_video["nb_frames"]
    assert out_video["bit_rate"] == src_video["bit_rate"]


# -- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields", "size"),
    [
        ("clip.mp4", {"resize": ResizePreset.WIDTH, "resize_width": 160}, (160, 120)),
        ("clip.mp4", {"resize": ResizePreset.EMAIL}, (320, 240)),  # never enlarged
        ("clip.mp4", {"resize": ResizePreset.INSTAGRAM}, (240, 240)),  # crop, no enlarging
        ("clip.mp4", {"resize": ResizePreset.SQUARE, "resize_width": 101}, (100, 100)),
        ("clip.mp4", {"resize": ResizePreset.HEIGHT, "resize_height": 99}, (132, 98)),
        ("clip.mp4", {"resize": ResizePreset.HEIGHT, "resize_height": 101}, (134, 100)),
        ("rotated.mp4", {}, (240, 320)),
        ("rotated-back.mp4", {}, (240, 320)),
        ("rotated.mp4", {"resize": ResizePreset.WIDTH, "resize_width": 120}, (120, 160)),
        ("odd.mp4", {}, (320, 240)),
        ("wide-pixels.mp4", {}, (640, 240)),
    ],
)
def test_video_geometry(
    inputs: Inputs, convert: ConvertFn, name: str, fields: dict[str, Any], size: tuple[int, int]
) -> None:
    # Both encoders for the odd sources; compression other than the default so that an
    # H.264 source is encoded, not copied.
    for target in (F.MP4, F.WEBM) if name != "clip.mp4" else (F.MP4,):
        result = convert(inputs[name], target, compression=80, **fields)
        video = stream(ffprobe(result.path), "video")
        assert video is not None
        assert (video["width"], video["height"]) == size
        assert (result.width, result.height) == size
        assert video.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
        assert not any("rotation" in d for d in video.get("side_data_list", []))


@pytest.mark.parametrize(("degrees", "red_corner"), [(0, "tl"), (90, "bl"), (-90, "tr")])
def test_rotation_turns_the_picture(
    tmp_path: Path, convert: ConvertFn, degrees: int, red_corner: str
) -> None:
    """The display matrix turns counterclockwise: a red top-left corner goes bottom-left
    for 90 degrees, top-right for -90 (what phones write for portrait video)."""
    plain = lavfi(tmp_path / "corner.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                  audio=None, video="color=black:size=320x240:duration=1,"
                                    "drawbox=x=0:y=0:w=160:h=120:color=red:t=fill")  # fmt: skip
    src = tmp_path / "turned.mp4"
    # ffmpeg 5.1 turns the rotate tag into a display matrix when it copies the stream.
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees % 360}",
           str(src))  # fmt: skip
    frame = tmp_path / "frame.png"
    for result in (convert(src, F.PNG), convert(src, F.WEBM)):
        ffmpeg("-i", result.path, "-frames:v", "1", str(frame))
        with Image.open(frame) as image:
            rgb = image.convert("RGB")
        expected_size = (320, 240) if degrees == 0 else (240, 320)
        assert rgb.size == expected_size == (result.width, result.height)
        w, h = rgb.size
        points = {"tl": (8, 8), "tr": (w - 8, 8), "bl": (8, h - 8), "br": (w - 8, h - 8)}
        red = {name for name, xy in points.items() if _reddish(rgb.getpixel(xy))}
        assert red == {red_corner}, (degrees, red)


def _reddish(pixel: Any) -> bool:
    r, g, b = pixel
    return bool(r > 180 and g < 60 and b < 60)


def test_copied_video_keeps_its_rotation(inputs: Inputs, convert: ConvertFn) -> None:
    result = convert(inputs["rotated.mp4"], F.MOV)
    assert "copied" in result.notes[0]
    assert (result.width, result.height) == (240, 320)
    video = stream(ffprobe(result.path), "video")
    assert video is not None and (video["width"], video["height"]) == (320, 240)
    assert [d["rotation"] for d in video["side_data_list"] if "rotation" in d] == [90]


def test_ecommerce_pads_to_a_white_square(inputs: Inputs, convert: ConvertFn) -> None:
    blip = lavfi(inputs.root / "blip.mp4", "-t", "0.2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                 audio=None)  # fmt: skip
    result = convert(blip, F.WEBM, resize=ResizePreset.ECOMMERCE)
    assert (result.width, result.height) == (2000, 2000)
    frame = Path(result.path).with_name("frame.png")
    ffmpeg("-i", result.path, "-frames:v", "1", str(frame))
    with Image.open(frame) as image:
        assert all(v > 235 for v in image.convert("RGB").getpixel((1000, 20)))  # type: ignore[union-attr]


def test_animation_is_capped(inputs: Inputs, convert: ConvertFn) -> None:
    big = lavfi(inputs.root / "big.mp4", "-c:v", "libx264", "-preset", "ultrafast",
                video="testsrc2=size=1280x720:rate=30:duration=1", audio=None)  # fmt: skip
    result = convert(big, F.GIF)
    assert (result.width, result.height) == (480, 270)
    video = stream(ffprobe(result.path), "video")
    assert video is not None and int(video["nb_frames"]) == 12
    assert any("480 px" in note for note in result.notes)
    assert any("12 per second" in note for note in result.notes)
    explicit = convert(big, F.GIF, resize=ResizePreset.WIDTH, resize_width=640)
    assert (explicit.width, explicit.height) == (640, 360)


# -- gif sources -----------------------------------------------------------------------------


def test_gif_timing_survives(tmp_path: Path, convert: ConvertFn) -> None:
    anim = write_animation(tmp_path, Kind.GIF, size=(80, 40))  # 100 + 200 + 300 ms
    for target in VIDEO_TARGETS:
        result = convert(anim, target)
        assert abs(duration_of(ffprobe(result.path)) - 0.6) <= 0.05
        assert (result.width, result.height) == (80, 40)


def test_still_gif_becomes_a_one_second_clip(tmp_path: Path, convert: ConvertFn) -> None:
    still = tmp_path / "still.gif"
    Image.new("RGB", (81, 41), RED).save(still)
    result = convert(still, F.MP4)
    assert abs(duration_of(ffprobe(result.path)) - 1.0) <= 0.15
    assert (result.width, result.height) == (80, 40)


def test_gif_transparency_becomes_white(tmp_path: Path, convert: ConvertFn) -> None:
    frames = []
    for colour in (RED, GREEN, BLUE):
        frame = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        frame.paste((*colour, 255), (0, 0, 32, 64))
        frames.append(frame)
    src = tmp_path / "alpha.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=200, loop=0,
                   disposal=2)  # fmt: skip
    result = convert(src, F.MP4)
    png = tmp_path / "first.png"
    ffmpeg("-i", result.path, "-frames:v", "1", str(png))
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        right = rgb.getpixel((56, 32))
        left = rgb.getpixel((8, 32))
    assert isinstance(right, tuple) and min(right) > 230, right
    assert isinstance(left, tuple) and left[0] > 180 and left[1] < 80, left


# -- quality ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "compression", "note"),
    [
        (F.MP4, 82, "H.264 CRF 23"),
        (F.MP4, 100, "H.264 CRF 18"),
        (F.MP4, 1, "H.264 CRF 45"),
        (F.WEBM, 82, "VP9 CRF 33"),
        (F.MOV, 50, "H.264 CRF 32"),
    ],
)
def test_compression_maps_to_crf(
    inputs: Inputs, convert: ConvertFn, target: OutputFormat, compression: int, note: str
) -> None:
    # A VP9 source, so that H.264 targets are encoded rather than copied.
    src = inputs["clip.webm"] if target is not F.WEBM else inputs["clip.mp4"]
    result = convert(src, target, compression=compression)
    assert result.notes[0].startswith(note + ",")
    assert result.applied_quality == compression


def test_lower_compression_gives_smaller_files(inputs: Inputs, convert: ConvertFn) -> None:
    for target in (F.MP4, F.WEBM, F.MP3, F.OGG, F.M4A):
        src = inputs["clip.webm"] if target is F.MP4 else inputs["clip.mp4"]
        high = Path(convert(src, target, compression=95).path).stat().st_size
        low = Path(convert(src, target, compression=20).path).stat().st_size
        assert low < high, target


def test_audio_quality_notes(inputs: Inputs, convert: ConvertFn) -> None:
    notes = {t: convert(inputs["tone.wav"], t).notes[0] for t in AUDIO_TARGETS}
    assert notes == {
        F.MP3: "MP3 VBR -V 2.",
        F.OGG: "Vorbis quality 6.",
        F.M4A: "AAC 160 kb/s.",
        F.FLAC: "FLAC level 8.",
        F.WAV: "16-bit PCM.",
    }


def test_deep_audio_stays_deep_in_lossless_targets(inputs: Inputs, convert: ConvertFn) -> None:
    wav = stream(ffprobe(convert(inputs["tone24.flac"], F.WAV).path), "audio")
    assert wav is not None and wav["codec_name"] == "pcm_s24le"
    flac = stream(ffprobe(convert(inputs["tone.mp3"], F.FLAC).path), "audio")
    assert flac is not None and flac["sample_fmt"] == "s16"


# -- frames ----------------------------------------------------------------------------------


def test_poster_frame_is_resized_by_the_image_converter(inputs: Inputs, convert: ConvertFn) -> None:
    result = convert(inputs["rotated.mp4"], F.JPG, resize=ResizePreset.WIDTH, resize_width=120)
    assert (result.width, result.height) == (120, 160)
    assert result.notes[0] == "The frame at 0:00.2 was used."
    assert result.applied_quality == 82
    with Image.open(result.path) as image:
        assert image.size == (120, 160)


def test_poster_of_a_short_clip_is_its_first_frame(tmp_path: Path, convert: ConvertFn) -> None:
    short = lavfi(tmp_path / "short.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                  video="testsrc2=size=64x48:rate=25:duration=1", audio=None)  # fmt: skip
    assert convert(short, F.PNG).notes[0] == "The frame at 0:00.0 was used."


# -- missing streams -------------------------------------------------------------------------


def test_audio_only_container_becomes_audio_not_video(inputs: Inputs, convert: ConvertFn) -> None:
    src = inputs["audio-only.mp4"]
    assert sniff_file(src).kind == Kind.MP4.value
    for target in (*VIDEO_TARGETS, *ANIMATION_TARGETS, F.JPG):
        with pytest.raises(ConversionError, match="no video track"):
            convert(src, target)
    audio = stream(ffprobe(convert(src, F.MP3).path), "audio")
    assert audio is not None and audio["codec_name"] == "mp3"


def test_cover_art_is_kept_unless_metadata_goes(inputs: Inputs, convert: ConvertFn) -> None:
    def covers(path: str | Path) -> list[str]:
        return [s["codec_name"] for s in ffprobe(path)["streams"]
                if s["disposition"]["attached_pic"]]  # fmt: skip

    src = inputs["cover.mp3"]
    assert covers(src) == ["mjpeg"]
    for target in (F.MP3, F.M4A, F.FLAC):
        assert covers(convert(src, target).path) == ["mjpeg"], target
        assert covers(convert(src, target, strip_metadata=True).path) == [], target
    assert covers(convert(src, job_type=COMPRESS, lossless=True).path) == ["mjpeg"]
    assert covers(convert(src, F.OGG).path) == []


def test_silent_video_has_no_audio_to_extract(inputs: Inputs, convert: ConvertFn) -> None:
    with pytest.raises(ConversionError, match="no audio track"):
        convert(inputs["silent.mp4"], F.MP3)
    result = convert(inputs["silent.mp4"], F.WEBM)
    assert stream(ffprobe(result.path), "audio") is None


def test_unsupported_target_is_415(inputs: Inputs, convert: ConvertFn) -> None:
    with pytest.raises(UnsupportedConversionError):
        convert(inputs["tone.mp3"], F.MP4)


# -- limits and failures ---------------------------------------------------------------------


def test_too_long(inputs: Inputs, convert: ConvertFn) -> None:
    with pytest.raises(MediaTooLongError, match="CONVERTLY_MAX_MEDIA_SECONDS") as caught:
        convert(inputs["clip.mp4"], F.MP3, limits=FakeLimits(max_media_seconds=1))
    assert caught.value.detail["maxSeconds"] == 1


def test_too_long_without_a_duration_header(inputs: Inputs, convert: ConvertFn) -> None:
    src = inputs["no-duration.webm"]
    assert probe(src).duration is None
    with pytest.raises(MediaTooLongError):
        convert(src, F.MP4, limits=FakeLimits(max_media_seconds=1))
    result = convert(src, F.MP4)
    assert abs(duration_of(ffprobe(result.path)) - SECONDS) <= 0.3


@pytest.fixture(scope="module")
def lying(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """Matroska files whose headers say they last 1 s."""
    root = tmp_path_factory.mktemp("lying")
    (root / "600s.mkv").write_bytes(lying_matroska(600))
    (root / "60s-audio.mkv").write_bytes(lying_matroska(60, audio=True))
    (root / "10.3s.mkv").write_bytes(lying_matroska(10.3, fps=10))
    (root / "10.3s-audio.mkv").write_bytes(lying_matroska(10.3, audio=True))
    return Inputs(root)


@pytest.mark.parametrize(("name", "target", "fields"), [
    ("600s.mkv", F.MP4, {}),
    ("600s.mkv", F.WEBM, {}),
    ("600s.mkv", F.MOV, {}),  # the H.264 stream copied as it is
    ("600s.mkv", F.GIF, {}),
    ("600s.mkv", F.WEBP, {}),
    ("600s.mkv", None, {"job_type": JobType.COMPRESS}),
    # Small enough already: handed back as it is, unless its packets say otherwise.
    ("600s.mkv", None, {"job_type": JobType.COMPRESS, "mode": CompressMode.TARGET_SIZE,
                        "target_bytes": 10_000_000}),
    ("60s-audio.mkv", F.MP3, {}),
    ("60s-audio.mkv", F.FLAC, {}),
])  # fmt: skip
def test_a_header_that_understates_the_length_does_not_beat_the_limit(
    lying: Inputs, convert: ConvertFn, name: str, target: OutputFormat | None,
    fields: dict[str, Any],
) -> None:
    assert declared_seconds(lying[name]) == 1.0
    with pytest.raises(MediaTooLongError, match="more than 10 s") as caught:
        convert(lying[name], target, limits=FakeLimits(max_media_seconds=10), **fields)
    assert caught.value.detail == {"maxSeconds": 10, "declaredSeconds": 1.0}


@pytest.mark.parametrize(("target", "fields"), [
    (F.MP4, {"compression": 60}), (F.WEBM, {}), (F.GIF, {}), (F.MP3, {}),
])  # fmt: skip
def test_no_output_is_longer_than_the_limit(lying: Inputs, convert: ConvertFn,
                                            target: OutputFormat, fields: dict[str, Any]) -> None:
    # Over by less than the tolerance for packet timing: it converts, cut at the limit.
    src = lying["10.3s-audio.mkv" if target is F.MP3 else "10.3s.mkv"]
    assert real_seconds(src) > 10.2
    result = convert(src, target, limits=FakeLimits(max_media_seconds=10), **fields)
    # An MP3 frame lasts 26 ms: the encoder pads the last one (10.032 s here).
    assert real_seconds(Path(result.path)) <= 10.0 + (0.05 if target is F.MP3 else 0)


def test_too_many_pixels(inputs: Inputs, convert: ConvertFn) -> None:
    with pytest.raises(ImageTooLargeError, match="CONVERTLY_MAX_PIXELS"):
        convert(inputs["clip.webm"], F.MP4, limits=FakeLimits(max_pixels=320 * 240 - 1))


@pytest.mark.parametrize("cut", [0, 2000])
def test_corrupt_input(inputs: Inputs, convert: ConvertFn, tmp_path: Path, cut: int) -> None:
    src = tmp_path / "broken.mp4"
    data = inputs["clip.mp4"].read_bytes()
    # The moov box (the index) is at the end, so a truncated file cannot be read.
    src.write_bytes(data[: cut or len(data) // 2])
    with pytest.raises(CorruptFileError):
        convert(src, F.WEBM)


def test_truncated_but_readable_input_says_so(
    inputs: Inputs, convert: ConvertFn, tmp_path: Path
) -> None:
    whole = tmp_path / "faststart.mp4"
    ffmpeg("-i", str(inputs["clip.mp4"]), "-c", "copy", "-movflags", "+faststart", str(whole))
    src = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    src.write_bytes(data[: len(data) * 2 // 3])  # the index is first: the start decodes
    for target in (F.WEBM, F.MP3):
        result = convert(src, target)
        assert any("may be truncated" in note for note in result.notes), result.notes
        assert duration_of(ffprobe(result.path)) < SECONDS - 0.4
    assert not any("truncated" in n for n in convert(inputs["clip.mp4"], F.WEBM).notes)


def test_garbage_after_a_valid_signature(tmp_path: Path, convert: ConvertFn) -> None:
    src = tmp_path / "garbage.webm"
    src.write_bytes(b"\x1a\x45\xdf\xa3" + os.urandom(5000))
    with pytest.raises(CorruptFileError):
        convert(src, F.MP4)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def test_timeout_kills_ffmpeg(inputs: Inputs, convert: ConvertFn, tmp_path: Path) -> None:
    impatient = MediaConverter(base_timeout=0.05, timeout_factor=0)
    with pytest.raises(ConversionTimeoutError, match="ffmpeg did not finish"):
        convert(inputs["clip.mp4"], F.WEBM, converter=impatient)
    assert _processes_mentioning(str(tmp_path)) == []


def test_timeout_scales_with_duration_and_frame_size() -> None:
    info = probe_like(width=3840, height=2160, fps=60)
    task = Task(
        src=Path("s"), spec=FileSpec(index=0, filename="x"), target=F.MP4, info=info,
        duration=100, out=Path("o"), report=lambda _f: None, base_timeout=60, timeout_factor=1,
    )  # fmt: skip
    # 4 x the pixels of 1080p, 2 x the frame rate.
    assert task.timeout(1.5) == pytest.approx(60 + 1.5 * 100 * 4 * 2)


def probe_like(*, width: int, height: int, fps: float) -> MediaInfo:
    video = Stream(index=0, kind="video", codec="h264", width=width, height=height, fps=fps)
    return MediaInfo("mov", 100.0, (video,))


# -- progress --------------------------------------------------------------------------------


def test_progress_reader_scales_throttles_and_ends() -> None:
    seen: list[float] = []
    reader = ProgressReader(10.0, seen.append, 0.5, 1.0)
    for line in ["frame=1", "out_time_us=N/A", "out_time_us=1000000", "out_time_us=1010000",
                 "out_time_ms=5000000", "progress=continue", "out_time_us=20000000",
                 "progress=end"]:  # fmt: skip
        reader(line)
    assert seen == [pytest.approx(0.55), pytest.approx(0.75), pytest.approx(0.9995), 1.0]
    assert reader.seconds == 20.0 and reader.finished


def test_progress_reader_keeps_ffmpeg_drained_when_the_callback_fails() -> None:
    def broken(_fraction: float) -> None:
        raise RuntimeError("listener gone")

    reader = ProgressReader(1.0, broken)
    reader("out_time_us=500000")
    reader("out_time_us=900000")  # no second call, no exception inside the reader thread
    assert isinstance(reader.error, RuntimeError)


def test_progress_increases_to_one(inputs: Inputs, convert: ConvertFn) -> None:
    six = lavfi(inputs.root / "six-seconds.mp4", "-c:v", "libx264", "-preset", "ultrafast",
                "-c:a", "aac", video="testsrc2=size=640x360:rate=25:duration=6",
                audio="sine=duration=6")  # fmt: skip
    chatty = MediaConverter(progress_period=0.05)
    for src, target in ((six, F.WEBM), (inputs["clip.mp4"], F.GIF),
                        (inputs["clip.mp4"], F.JPG), (inputs["tone.wav"], F.MP3)):  # fmt: skip
        seen: list[float] = []
        convert(src, target, converter=chatty, progress=seen.append)
        assert seen[-1] == 1.0, target
        assert all(0 < f <= 1 for f in seen)
        assert seen == sorted(set(seen)), seen
        if src is six:
            assert len(seen) >= 4, seen  # reports while encoding, not only the end


# -- compress --------------------------------------------------------------------------------


def test_compress_video_quality(inputs: Inputs, convert: ConvertFn) -> None:
    result = convert(inputs["clip.mp4"], job_type=COMPRESS, compression=40)
    assert result.format == "mp4" and result.applied_quality == 40
    assert result.notes[0].startswith("H.264 CRF 34,")
    assert Path(result.path).stat().st_size < inputs["clip.mp4"].stat().st_size
    video = stream(ffprobe(result.path), "video")
    assert video is not None and video["codec_name"] == "h264"


def test_compress_keeps_the_original_when_reencoding_grows(
    inputs: Inputs, convert: ConvertFn
) -> None:
    src = inputs["tiny.mp3"]  # LAME -V 9
    result = convert(src, job_type=COMPRESS, compression=100)
    assert result.notes == ("Re-encoding made the file larger, so the original was kept.",)
    assert Path(result.path).read_bytes() == src.read_bytes()
    assert result.applied_quality is None


@pytest.mark.parametrize("name", ["tagged.mp4", "tagged.mp3"])
def test_strip_metadata(inputs: Inputs, convert: ConvertFn, name: str) -> None:
    src = inputs[name]
    assert tags_of(ffprobe(src))["title"] == "Secret title"
    kept = convert(src, job_type=COMPRESS, compression=30)
    assert tags_of(ffprobe(kept.path))["title"] == "Secret title"
    for fields in ({"compression": 30}, {"compression": 100}, {"lossless": name.endswith("3")}):
        stripped = convert(src, job_type=COMPRESS, strip_metadata=True, **fields)
        tags = tags_of(ffprobe(stripped.path))
        assert "title" not in tags and "artist" not in tags, tags
        # Muxers still name the encoder ("Lavc libx264"), but without its version.
        assert not any(re.match(r"Lav[fc]\d", v) for v in tags.values()), tags
    converted = convert(src, F.OGG, strip_metadata=True)
    assert "title" not in tags_of(ffprobe(converted.path))


def test_compress_to_target_size(inputs: Inputs, convert: ConvertFn) -> None:
    for name in ("clip.mp4", "clip.webm", "noise.mp3", "noise.ogg", "noise.m4a"):
        src = inputs[name]
        target = 20_000 if name.startswith("noise") else 40_000
        result = convert(src, job_type=COMPRESS, mode=CompressMode.TARGET_SIZE,
                         target_bytes=target)  # fmt: skip
        size = Path(result.path).stat().st_size
        assert src.stat().st_size > target > size, (name, size)
        assert size >= target * 0.5, (name, size, "too far under the target")
        assert abs(duration_of(ffprobe(result.path)) - SECONDS) <= 0.3
        assert "kb/s" in result.notes[0]


def test_target_size_already_met_keeps_the_original(inputs: Inputs, convert: ConvertFn) -> None:
    src = inputs["clip.mp4"]
    result = convert(src, job_type=COMPRESS, mode=CompressMode.TARGET_SIZE,
                     target_bytes=src.stat().st_size * 2)  # fmt: skip
    assert Path(result.path).read_bytes() == src.read_bytes()
    assert (result.width, result.height) == (320, 240)


@pytest.mark.parametrize("name", ["clip.mp4", "tone.mp3", "tone.flac"])
def test_target_size_out_of_reach(inputs: Inputs, convert: ConvertFn, name: str) -> None:
    with pytest.raises(ConversionError, match="smallest file") as caught:
        convert(inputs[name], job_type=COMPRESS, mode=CompressMode.TARGET_SIZE,
                target_bytes=2000)  # fmt: skip
    assert caught.value.detail["smallestBytes"] > 2000


def test_lossless_video_compress_is_refused(inputs: Inputs, convert: ConvertFn) -> None:
    with pytest.raises(UnsupportedConversionError, match="Lossless compression"):
        convert(inputs["clip.mp4"], job_type=COMPRESS, lossless=True)


def audio_md5(path: str | Path) -> str:
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "md5", "-"],
        capture_output=True, check=True, text=True, timeout=30,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.mark.parametrize("name", ["tone.flac", "tone24.flac", "tone.wav", "tone.mp3"])
def test_lossless_audio_compress_keeps_every_sample(
    inputs: Inputs, convert: ConvertFn, name: str
) -> None:
    src = inputs[name]
    result = convert(src, job_type=COMPRESS, lossless=True, strip_metadata=True)
    assert audio_md5(result.path) == audio_md5(src)
    if name.endswith(".flac"):
        assert result.notes[0] in (
            "FLAC level 12.", "Re-encoding made the file larger, so the original streams were "
            "kept without their metadata.",
        )  # fmt: skip


def test_compress_rejects_resize_and_missing_target(inputs: Inputs, convert: ConvertFn) -> None:
    with pytest.raises(InvalidFieldError, match="resize"):
        convert(inputs["clip.mp4"], job_type=COMPRESS, resize=ResizePreset.EMAIL)
    with pytest.raises(InvalidFieldError, match="targetBytes"):
        convert(inputs["tone.mp3"], job_type=COMPRESS, mode=CompressMode.TARGET_SIZE)
