"""Playback analytics: what the SDK's player reports (`POST /api/video/playback-events`) and
the counts a stream's `get` answers with.

Each event counts; a session's first `play` is a view (`plays`); watch time grows by how far
a playing session's position advanced between two of its events, never by more than the
wall-clock time between them (a seek forward is not watching). The rule is `step`, one pure
function both state engines apply to a session under their own lock.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol

EVENTS = frozenset({"ready", "play", "pause", "ended", "timeupdate", "seeked", "error"})
# Events after which the time a playing session advanced was watched.
_WATCHED_UNTIL = frozenset({"timeupdate", "pause", "ended"})
# Players report positions a little after the clock that timed them.
CLOCK_SLACK = 1.0
SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SESSION_TTL = 24 * 3600  # a session's state is kept this long after its last event


@dataclass(frozen=True)
class Session:
    """Where one viewer's session is: whether it ever played, whether it plays now, its
    last reported position (seconds) and when (Unix seconds)."""

    played: bool = False
    playing: bool = False
    position: float | None = None
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        return cls(**{k: data[k] for k in ("played", "playing", "position", "at") if k in data})


@dataclass(frozen=True)
class PlaybackCounts:
    events: int = 0
    plays: int = 0
    watch_seconds: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        """The stream's `analytics` object."""
        return {"events": self.events, "plays": self.plays,
                "watchTimeSeconds": round(self.watch_seconds, 3)}


def step(session: Session, event: str, position: float | None,
         at: float) -> tuple[Session, bool, float]:
    """The session after `event` at `position` (seconds into the video) reported at `at`;
    whether the event is the session's first play (a view); and the seconds it watched."""
    watched = 0.0
    if (event in _WATCHED_UNTIL and session.playing and position is not None
            and session.position is not None):
        advanced = position - session.position
        if advanced > 0:
            watched = min(advanced, max(0.0, at - session.at) + CLOCK_SLACK)
    first_play = event == "play" and not session.played
    playing = {"play": True, "pause": False, "ended": False, "error": False}.get(
        event, session.playing)
    after = Session(played=session.played or event == "play", playing=playing,
                    position=position if position is not None else session.position, at=at)
    return after, first_play, watched


class PlaybackStore(Protocol):
    """Playback counts per stream and the sessions they come from
    (`convertly.state.sqlite.playback`, `convertly.state.redis.playback`). The shared
    contract of `convertly.state.base` holds; a stream's counts are its own (no tenant: the
    caller found the stream first)."""

    def record(self, stream_id: str, session_id: str, event: str, position: float | None,
               at: float) -> None:
        """Count `event` of `session_id` (`step` applied to the session atomically: two
        events of one session at once are counted one after the other)."""
        ...

    def counts(self, stream_id: str) -> PlaybackCounts:
        """The stream's counts (zeros when nothing was recorded)."""
        ...

    def forget(self, stream_id: str) -> None:
        """Delete the stream's counts and sessions."""
        ...
