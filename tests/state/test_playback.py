"""The playback count store contract, on both engines, and the counting rule itself."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from convertly.state.redis.playback import RedisPlaybackStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.playback import SqlitePlaybackStore
from convertly.streams.analytics import PlaybackCounts, PlaybackStore, Session, step
from tests.state.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PlaybackStore:
    if request.param == "sqlite":
        return SqlitePlaybackStore(Database(tmp_path / "state.db"))
    return RedisPlaybackStore(request.getfixturevalue("redis_client"))


def test_watch_time_is_what_a_playing_session_advanced_within_the_clock() -> None:
    session, first, watched = step(Session(), "ready", 0.0, 100.0)
    assert (first, watched) == (False, 0.0) and not session.played
    session, first, watched = step(session, "play", 0.0, 101.0)
    assert first and watched == 0.0 and session.playing
    session, first, watched = step(session, "timeupdate", 15.0, 116.0)
    assert (first, watched) == (False, 15.0)
    # A seek forward is not watching; the time after it is.
    session, _, watched = step(session, "seeked", 200.0, 117.0)
    assert watched == 0.0
    session, _, watched = step(session, "pause", 204.0, 121.0)
    assert watched == 4.0 and not session.playing
    # Paused, nothing counts; playing again is not a second view.
    session, _, watched = step(session, "timeupdate", 230.0, 150.0)
    assert watched == 0.0
    session, first, _ = step(session, "play", 230.0, 151.0)
    assert not first
    # A position that jumps further than the clock allows is capped by the clock.
    _, _, watched = step(session, "ended", 300.0, 161.0)
    assert watched == 11.0


def test_counts_per_stream(store: PlaybackStore) -> None:
    assert store.counts("s1") == PlaybackCounts()
    for event, position, at in [("ready", None, 10.0), ("play", 0.0, 11.0),
                                ("timeupdate", 5.0, 16.0), ("ended", 8.5, 19.5)]:
        store.record("s1", "viewer-1", event, position, at)
    store.record("s1", "viewer-2", "play", 0.0, 20.0)
    store.record("s2", "viewer-1", "play", 0.0, 20.0)
    assert store.counts("s1") == PlaybackCounts(events=5, plays=2, watch_seconds=8.5)
    store.forget("s1")
    assert store.counts("s1") == PlaybackCounts()
    assert store.counts("s2") == PlaybackCounts(events=1, plays=1, watch_seconds=0.0)
    # A forgotten stream's sessions are gone too: this play is a new view.
    store.record("s1", "viewer-1", "play", 0.0, 30.0)
    assert store.counts("s1").plays == 1


def test_one_sessions_events_at_once_count_one_view(store: PlaybackStore) -> None:
    barrier = threading.Barrier(8)

    def play() -> None:
        barrier.wait()
        store.record("s", "same-session", "play", 0.0, 1.0)

    threads = [threading.Thread(target=play) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.counts("s") == PlaybackCounts(events=8, plays=1, watch_seconds=0.0)
