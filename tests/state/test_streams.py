"""The video stream store contract, on both engines: SQLite (embedded) and Redis
(distributed)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from convertly.state.redis.streams import RedisStreamStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.streams import SqliteStreamStore
from convertly.streams.model import Rendition, StreamStatus, VideoStream
from convertly.streams.store import StreamStore
from tests.state.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StreamStore:
    if request.param == "sqlite":
        return SqliteStreamStore(Database(tmp_path / "state.db"))
    return RedisStreamStore(request.getfixturevalue("redis_client"))


def stream(stream_id: str, created: float, tenant: str = "t1", rungs: int = 3) -> VideoStream:
    ladder = tuple(Rendition(f"{h}p", i, h, h * 4) for i, h in enumerate((360, 480, 720)))
    return VideoStream(id=stream_id, tenant=tenant, playback_id=f"pb_{stream_id}",
                       source_key="k", renditions=ladder[:rungs], created_at=created)


def test_records_are_scoped_listed_and_updated(store: StreamStore) -> None:
    store.add(stream("a", 1.0))
    store.add(stream("b", 2.0))
    store.add(stream("c", 3.0, tenant="t2"))
    assert store.get("a", "t2") is None
    got = store.get("a", "t1")
    assert got is not None and got == stream("a", 1.0)
    assert [r.height for r in got.renditions] == [360, 480, 720]
    assert store.by_playback_id("pb_c") == store.get("c")

    page, total = store.list("t1", status=None, limit=1, offset=0)
    assert ([s.id for s in page], total) == (["b"], 2)
    updated = store.update("a", "t1", status=StreamStatus.READY, title="T", tags=("x",))
    assert updated is not None and updated.title == "T"
    assert store.update("a", "t2", title="no") is None
    page, total = store.list("t1", status=StreamStatus.READY, limit=10, offset=0)
    assert ([s.id for s in page], total) == (["a"], 1)
    assert [s.id for s in store.unfinished()] == ["b", "c"]

    assert store.remove("a", "t2") is False
    assert store.remove("a", "t1") is True
    assert store.get("a") is None and store.by_playback_id("pb_a") is None
    assert store.list("t1", status=None, limit=10, offset=0)[1] == 1


def test_exactly_one_rendition_completes_the_ladder(store: StreamStore) -> None:
    store.add(stream("s", 1.0))
    store.set_progress("s", 1, 0.5)
    got = store.get("s")
    assert got is not None and got.renditions[1].progress == 0.5
    assert store.record_rendition("s", Rendition("360p", 0, 360, 1440, width=640)) is False
    assert store.record_rendition("s", Rendition("360p", 0, 360, 1440)) is False  # repeated

    answers: list[bool] = []
    threads = [threading.Thread(target=lambda r=r: answers.append(store.record_rendition(
        "s", r))) for r in stream("s", 1.0).renditions[1:] for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(True) == 1

    store.set_progress("s", 0, 0.1)  # done renditions keep their progress
    got = store.get("s")
    assert got is not None
    assert [(r.done, r.progress) for r in got.renditions] == [(True, 1.0)] * 3
    assert got.renditions[0].width == 640
    assert store.record_rendition("gone", Rendition("360p", 0, 360, 1)) is False
