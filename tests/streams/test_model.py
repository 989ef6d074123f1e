"""The stream record survives JSON both ways, and the layout keeps every object under the
stream's prefix."""

from __future__ import annotations

import json

from convertly.streams import layout
from convertly.streams.model import (
    Access,
    CaptionTrack,
    Chapter,
    Clip,
    ClipMode,
    PackageFormat,
    Profile,
    Rendition,
    StreamStatus,
    VideoStream,
)


def test_record_round_trips_through_json() -> None:
    stream = VideoStream(
        id="vs_1", tenant="t", playback_id="pb_1", source_key="k", profile=Profile.CUSTOM,
        status=StreamStatus.PROCESSING,
        renditions=(Rendition("360p", 0, 360, 800, 96), Rendition("720p", 1, 720, 2800)),
        package_formats=(PackageFormat.HLS, PackageFormat.DASH),
        clip=Clip(start=1.5, duration=2.0, mode=ClipMode.FAST), access=Access.PUBLIC,
        allowed_domains=("a.example",), captions=(CaptionTrack("cap_1", "English", "en"),),
        chapters=(Chapter("ch_1", "Intro", 0.0),), tags=("x",), engagement={"likes": 2},
    )
    back = VideoStream.from_dict(json.loads(json.dumps(stream.to_dict())))
    assert back == stream
    assert back.hls and back.dash
    assert back.clip is not None and back.clip.length == 2.0
    done = back.with_rendition(Rendition("720p", 1, 720, 2800, width=1280, done=True))
    assert [r.done for r in done.renditions] == [False, True]


def test_every_object_lives_under_the_stream_prefix() -> None:
    prefix = layout.stream_prefix("t", "vs_1") + "/"
    keys = [layout.source_key("t", "vs_1", "../a b.mp4"),
            layout.rendition_key("t", "vs_1", "720p"),
            layout.play_key("t", "vs_1", layout.media_segment(0, 3))]
    assert all(k.startswith(prefix) for k in keys)
    assert keys[2].endswith("/play/seg-0-00003.m4s")
