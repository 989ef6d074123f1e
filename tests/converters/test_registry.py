"""The registry: which converter and which worker queue for each (kind, format) pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from convertly.converters.base import Queue
from convertly.converters.builtin import default_registry
from convertly.converters.image import ImageConverter
from convertly.converters.registry import Registry
from convertly.models import OutputFormat
from convertly.pipeline import task_family
from convertly.sniff import Kind

F = OutputFormat
REGISTRY = default_registry()

# The routing rule pipeline.task_family applied before each converter declared its queue,
# kept here as the reference the declarations must reproduce: "media" when audio or video is
# read or written, "archive" likewise, else "image"; a pair the registry cannot convert goes
# by its source alone.
OLD_MEDIA_FORMATS = {F.MP4, F.WEBM, F.MOV, F.MP3, F.WAV, F.OGG, F.M4A, F.FLAC}
OLD_ARCHIVE_FORMATS = {F.ZIP, F.TAR, F.TGZ, F.SEVEN_Z, F.GZ, F.BZ2, F.XZ, F.RAR}


def old_route(kind: Kind | None, fmt: OutputFormat | None) -> str:
    family = kind.family if kind is not None else "image"
    if kind is not None and fmt is not None and not REGISTRY.supports(kind, fmt):
        fmt = None
    if family in ("video", "audio") or fmt in OLD_MEDIA_FORMATS:
        return "media"
    if family == "archive" or fmt in OLD_ARCHIVE_FORMATS:
        return "archive"
    return "image"


def test_every_registered_pair_goes_to_the_queue_it_went_to_before() -> None:
    pairs = [(kind, fmt) for kind, targets in REGISTRY.matrix().items() for fmt in targets]
    assert len(pairs) > 300
    for kind, fmt in pairs:
        assert REGISTRY.queue_for(kind, fmt) == old_route(kind, fmt), (kind, fmt)
    # RAR is registered even when the server cannot write it (left out of the listings).
    without_rar = default_registry(unavailable=[F.RAR])
    for kind in Kind:
        assert without_rar.queue_for(kind, F.RAR) == old_route(kind, F.RAR), kind


@pytest.mark.parametrize("kind", [*Kind, None])
def test_every_other_pair_and_no_target_go_where_they_went_before(kind: Kind | None) -> None:
    for fmt in [*OutputFormat, None]:
        assert REGISTRY.queue_for(kind, fmt) == old_route(kind, fmt), (kind, fmt)


def test_converters_declare_the_queues() -> None:
    assert REGISTRY.queue_for(Kind.PNG, F.WEBP) is Queue.IMAGE
    assert REGISTRY.queue_for(Kind.SVG, F.PDF) is Queue.IMAGE
    assert REGISTRY.queue_for(Kind.PDF, F.PNG) is Queue.IMAGE
    assert REGISTRY.queue_for(Kind.MP4, F.JPG) is Queue.MEDIA
    assert REGISTRY.queue_for(Kind.GIF, F.MP4) is Queue.MEDIA
    assert REGISTRY.queue_for(Kind.PNG, F.ZIP) is Queue.ARCHIVE
    assert REGISTRY.queue_for(Kind.ZIP, F.PNG) is Queue.ARCHIVE
    # Audio and video stay with the media workers across archives.
    assert REGISTRY.queue_for(Kind.WAV, F.ZIP) is Queue.MEDIA
    assert REGISTRY.queue_for(Kind.ZIP, F.MP3) is Queue.MEDIA
    # No converter for the pair: the source's own queue.
    assert REGISTRY.queue_for(Kind.PNG, F.MP3) is Queue.IMAGE
    assert REGISTRY.queue_for(Kind.BMP, None) is Queue.IMAGE
    # Unknown content: where the target's own kind goes, else images.
    assert REGISTRY.queue_for(None, F.MP3) is Queue.MEDIA
    assert REGISTRY.queue_for(None, F.TGZ) is Queue.ARCHIVE
    assert REGISTRY.queue_for(None, F.JPG) is Queue.IMAGE
    assert REGISTRY.queue_for(None, None) is Queue.IMAGE


def test_task_family_routes_a_file_by_its_content(tmp_path: Path) -> None:
    wav = tmp_path / "sound.bin"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64))
    jpeg = tmp_path / "photo.bin"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    unknown = tmp_path / "notes.bin"
    unknown.write_bytes(b"just some text")
    assert task_family(wav, "mp3", REGISTRY) == "media"
    assert task_family(wav, "zip", REGISTRY) == "media"
    assert task_family(jpeg, "zip", REGISTRY) == "archive"
    assert task_family(jpeg, "mp3", REGISTRY) == "image"  # not convertible: by its source
    assert task_family(jpeg, None, REGISTRY) == "image"
    assert task_family(unknown, "mp3", REGISTRY) == "media"
    assert task_family(unknown, "png", REGISTRY) == "image"


def test_registering_a_pair_twice_is_an_error() -> None:
    registry = Registry()
    registry.register(ImageConverter(), [Kind.PNG], [F.JPG, F.WEBP])
    with pytest.raises(ValueError, match="png->webp is already handled by image"):
        registry.register(ImageConverter(), [Kind.GIF, Kind.PNG], [F.WEBP])
    with pytest.raises(ValueError, match="already handled"):
        default_registry().register(ImageConverter(), [Kind.MP4], [F.MP3])
