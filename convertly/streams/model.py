"""The video stream record and its parts: frozen dataclasses, the same on both state engines
(`to_dict`/`from_dict` round-trip through JSON).

Units: bitrates are kilobits per second (the API's `bitrate`/`audioBitrate`), times are
seconds, timestamps are Unix seconds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any


class StreamStatus(StrEnum):
    QUEUED = "queued"          # stored, no rendition started yet
    PROCESSING = "processing"  # renditions encoding, or the packaging step running
    READY = "ready"            # manifests and segments in storage, playable
    FAILED = "failed"          # `error`/`error_code` say why

    @property
    def finished(self) -> bool:
        return self in (StreamStatus.READY, StreamStatus.FAILED)


class Profile(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    HD = "hd"
    SOURCE_MAX = "source_max"
    CUSTOM = "custom"


class PackageFormat(StrEnum):
    HLS = "hls"
    DASH = "dash"


class Access(StrEnum):
    PUBLIC = "public"
    SIGNED = "signed"


class ClipMode(StrEnum):
    ACCURATE = "accurate"  # re-encoded from the exact frame
    FAST = "fast"          # starts at the keyframe before `start`


@dataclass(frozen=True)
class LadderStep:
    """One rung of a profile's ladder: the height and the bitrates it is encoded at."""

    height: int
    bitrate: int        # video, kbit/s
    audio_bitrate: int  # kbit/s


# The rungs every profile picks from, smallest first.
LADDER: tuple[LadderStep, ...] = (
    LadderStep(360, 800, 96),
    LadderStep(480, 1400, 128),
    LadderStep(720, 2800, 128),
    LadderStep(1080, 5000, 192),
    LadderStep(1440, 8000, 192),
    LadderStep(2160, 14000, 192),
)

PROFILE_HEIGHTS: dict[Profile, tuple[int, ...]] = {
    Profile.BASIC: (360, 480),
    Profile.STANDARD: (360, 480, 720),
    Profile.HD: (360, 480, 720, 1080),
    Profile.SOURCE_MAX: (360, 480, 720, 1080, 1440, 2160),  # up to the source's height
}

DEFAULT_SEGMENT_DURATION = 6
SEGMENT_DURATION_RANGE = (2, 12)
DEFAULT_TOKEN_TTL = 3600
MAX_RENDITIONS = 8


@dataclass(frozen=True)
class Rendition:
    """One encoded rung. `id` is unique within the stream (e.g. `720p`); `index` is its
    place in the ladder, smallest first, and its representation number in the manifests.
    Width, averageBitrate and segmentCount are known once it is encoded and packaged."""

    id: str
    index: int
    height: int
    bitrate: int
    audio_bitrate: int | None = None
    width: int | None = None
    codec: str = "h264"
    audio_codec: str | None = None
    average_bitrate: int | None = None  # kbit/s measured over the encoded rendition
    segment_count: int | None = None
    done: bool = False
    progress: float = 0.0  # fraction encoded, from ffmpeg's progress

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rendition:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class CaptionTrack:
    """A WebVTT track; its text is in storage (`layout.caption_path`)."""

    id: str
    label: str
    language: str
    kind: str = "subtitles"  # or "captions"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Chapter:
    id: str
    title: str
    start: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Clip:
    """The part of the source a stream covers: `start`, then `end` or `duration`."""

    start: float = 0.0
    end: float | None = None
    duration: float | None = None
    mode: ClipMode = ClipMode.ACCURATE

    @property
    def length(self) -> float | None:
        if self.duration is not None:
            return self.duration
        if self.end is not None:
            return self.end - self.start
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "duration": self.duration,
                "mode": str(self.mode)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Clip:
        return cls(start=float(data.get("start") or 0.0), end=data.get("end"),
                   duration=data.get("duration"),
                   mode=ClipMode(data.get("mode") or ClipMode.ACCURATE))


@dataclass(frozen=True)
class VideoStream:
    """A video stream. `source_key` is the storage key of the video it is encoded from (a
    stored file's object, or the stream's own copy of an upload or a fetched URL);
    `own_source` says the stream owns that object (deleting the stream deletes it).

    `poster` is the playback path of the poster image (`layout.POSTER`) once there is one;
    `duration`, `width` and `height` are the encoded (clipped) video's, known after the
    probe that starts the encoding."""

    id: str
    tenant: str
    playback_id: str
    source_key: str
    source_file_id: str | None = None
    own_source: bool = False
    profile: Profile = Profile.STANDARD
    status: StreamStatus = StreamStatus.QUEUED
    progress: float = 0.0
    renditions: tuple[Rendition, ...] = ()
    package_formats: tuple[PackageFormat, ...] = (PackageFormat.HLS,)
    segment_duration: int = DEFAULT_SEGMENT_DURATION
    clip: Clip | None = None
    access: Access = Access.SIGNED
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL
    allowed_domains: tuple[str, ...] = ()
    captions: tuple[CaptionTrack, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    poster: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    has_audio: bool = False
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    engagement: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_code: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    ready_at: float | None = None

    @property
    def hls(self) -> bool:
        return PackageFormat.HLS in self.package_formats

    @property
    def dash(self) -> bool:
        return PackageFormat.DASH in self.package_formats

    def with_rendition(self, rendition: Rendition) -> VideoStream:
        """This stream with `rendition` in place of the one with its index."""
        return replace(self, renditions=tuple(
            rendition if r.index == rendition.index else r for r in self.renditions))

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["renditions"] = [r.to_dict() for r in self.renditions]
        data["captions"] = [c.to_dict() for c in self.captions]
        data["chapters"] = [c.to_dict() for c in self.chapters]
        data["clip"] = self.clip.to_dict() if self.clip else None
        data["package_formats"] = [str(p) for p in self.package_formats]
        data["allowed_domains"] = list(self.allowed_domains)
        data["tags"] = list(self.tags)
        for name in ("profile", "status", "access"):
            data[name] = str(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoStream:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["profile"] = Profile(values.get("profile", Profile.STANDARD))
        values["status"] = StreamStatus(values.get("status", StreamStatus.QUEUED))
        values["access"] = Access(values.get("access", Access.SIGNED))
        values["renditions"] = tuple(Rendition.from_dict(r)
                                     for r in values.get("renditions") or ())
        values["captions"] = tuple(CaptionTrack(**c) for c in values.get("captions") or ())
        values["chapters"] = tuple(Chapter(**c) for c in values.get("chapters") or ())
        clip = values.get("clip")
        values["clip"] = Clip.from_dict(clip) if clip else None
        values["package_formats"] = tuple(PackageFormat(p)
                                          for p in values.get("package_formats") or ())
        values["allowed_domains"] = tuple(values.get("allowed_domains") or ())
        values["tags"] = tuple(values.get("tags") or ())
        values["engagement"] = dict(values.get("engagement") or {})
        return cls(**values)


def new_stream_id() -> str:
    return "vs_" + secrets.token_hex(12)


def new_playback_id() -> str:
    """The public name a stream is played under (`/video/v1/{playbackId}/...`); unguessable,
    and not the stream id, so a player never learns the id the API manages it by."""
    return "pb_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


def new_track_id(prefix: str) -> str:
    return prefix + "_" + secrets.token_hex(8)
