"""The encoding steps on their own (embedded services, real ffmpeg): a redelivered rendition
task owes the packaging again, a video that cannot be read fails the stream with the
failed event, and a stream deleted meanwhile is left alone."""

from __future__ import annotations

import time
from pathlib import Path

from convertly import videostreams
from convertly.service import build_services
from convertly.settings import Settings
from convertly.state.records import STREAM_FAILED, Endpoint, new_id
from convertly.streams import layout
from convertly.streams.model import Rendition, StreamStatus, VideoStream
from tests.streams.source import source_video


def _stream(svc_key: str, tenant: str = "t") -> VideoStream:
    return VideoStream(id="vs_" + new_id("x")[2:], tenant=tenant, playback_id=new_id("pb"),
                       source_key=svc_key, segment_duration=2, created_at=time.time(),
                       renditions=(Rendition("90p", 0, 90, 100), Rendition("120p", 1, 120, 150)))


def test_the_join_and_a_redelivered_rendition(tmp_path: Path) -> None:
    svc = build_services(Settings(data_dir=tmp_path / "data"))
    key = "tenants/t/files/src/clip.mp4"
    svc.storage.put_file(key, source_video(tmp_path / "clip.mp4", seconds=1, size="160x90"))
    stream = _stream(key)
    svc.streams.add(stream)
    assert videostreams.run_rendition(svc, stream.id, 0) is False
    assert videostreams.run_rendition(svc, stream.id, 1) is True
    # Delivered again (its worker died after recording): the packaging is still owed.
    assert videostreams.run_rendition(svc, stream.id, 1) is True
    videostreams.package_stream(svc, stream.id)
    ready = svc.streams.get(stream.id)
    assert ready is not None and ready.status is StreamStatus.READY
    assert ready.has_audio and ready.width == 214 and ready.duration == 1.0
    assert videostreams.run_rendition(svc, stream.id, 1) is False  # ready: nothing owed
    # The encoded renditions were only the packager's input.
    assert not svc.storage.exists(layout.rendition_key("t", stream.id, "90p"))
    assert svc.storage.exists(layout.play_key("t", stream.id, layout.POSTER))


def test_an_unreadable_video_fails_the_stream(tmp_path: Path) -> None:
    svc = build_services(Settings(data_dir=tmp_path / "data"))
    svc.webhooks.add_endpoint(Endpoint(id=new_id("we"), tenant="t", url="https://h.example/",
                                       secret="whsec_" + "b" * 32, events=None,
                                       base_url="http://x", created_at=time.time()), 3600)
    key = "tenants/t/files/src/broken.mp4"
    svc.storage.put_bytes(key, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000)
    stream = _stream(key)
    svc.streams.add(stream)
    assert videostreams.run_rendition(svc, stream.id, 0) is False
    failed = svc.streams.get(stream.id)
    assert failed is not None and failed.status is StreamStatus.FAILED
    assert failed.error and failed.error_code == "CORRUPT_FILE"
    events = [d.event_type for d in svc.webhooks.deliveries("t", job_id=stream.id, limit=10,
                                                            offset=0)[0]]
    assert STREAM_FAILED in events
    assert videostreams.run_rendition(svc, stream.id, 1) is False  # failed: left alone


def test_a_stream_deleted_meanwhile_is_left_alone(tmp_path: Path) -> None:
    svc = build_services(Settings(data_dir=tmp_path / "data"))
    stream = _stream("tenants/t/files/src/none.mp4")
    svc.streams.add(stream)
    videostreams.delete(svc, "t", stream.id)
    assert videostreams.run_rendition(svc, stream.id, 0) is False
    videostreams.package_stream(svc, stream.id)
    assert svc.streams.get(stream.id) is None
