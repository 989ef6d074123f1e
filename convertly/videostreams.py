"""Video streams, the domain on top of `convertly.streams`: creating a stream from a stored
video, its metadata, deleting it with every object, and the two steps its encoding takes,
on the embedded pool or on Celery workers (`media` queue):

1. `run_rendition` (one task per rendition): encode it from the source, store it, record it;
   the store's join (`StreamStore.record_rendition`) tells exactly one task that the ladder
   is complete, and that task queues
2. `package_stream`: package every rendition into CMAF segments, HLS and DASH manifests,
   caption playlists and a poster; the stream becomes ready.

Both steps are idempotent: a task delivered again after its worker died (the lease sweep,
`workers.leases`) or resumed at start-up (embedded) redoes or skips its work, and a
rendition task that finds the ladder complete but the stream unpackaged queues the
packaging again. The stream's own module `convertly.streams` imports nothing of the state
or the services (the state engines import it); this module joins them.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from convertly import webhooks
from convertly.converters.media.ffmpeg import probe
from convertly.errors import (
    ConvertlyError,
    InvalidFieldError,
    NotFoundError,
    ServiceUnavailableError,
)
from convertly.pipeline import Persist, once
from convertly.service import Services, scratch_dir
from convertly.state.records import STREAM_FAILED, STREAM_READY, STREAM_STARTED
from convertly.streams import encode, ladder, layout
from convertly.streams.frames import grab_frames
from convertly.streams.manifests import (
    TextTrack,
    check_language,
    check_webvtt,
    dash_with_tracks,
    hls_master_with_tracks,
    text_playlist,
)
from convertly.streams.model import (
    DEFAULT_SEGMENT_DURATION,
    DEFAULT_TOKEN_TTL,
    SEGMENT_DURATION_RANGE,
    Access,
    CaptionTrack,
    Clip,
    ClipMode,
    LadderStep,
    PackageFormat,
    Profile,
    StreamStatus,
    VideoStream,
    new_playback_id,
    new_stream_id,
    new_track_id,
)

log = logging.getLogger("convertly.streams")

MAX_CAPTIONS = 20
MAX_DOMAINS = 50
MAX_TAGS = 50
TOKEN_TTL_RANGE = (60, 7 * 24 * 3600)
POSTER_AT = 0.1  # the default poster: this far into the video


# --- creating ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamOptions:
    """A create request's options, checked (the SDK's VideoStreamOptions)."""

    profile: Profile = Profile.STANDARD
    custom: tuple[LadderStep, ...] = ()
    package_formats: tuple[PackageFormat, ...] = (PackageFormat.HLS,)
    segment_duration: int = DEFAULT_SEGMENT_DURATION
    access: Access = Access.SIGNED
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL
    allowed_domains: tuple[str, ...] = ()
    captions: tuple[tuple[CaptionTrack, str], ...] = ()  # each track with its WebVTT text
    clip: Clip | None = None
    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()


def _choice(body: dict[str, Any], name: str, kind: Any, default: Any) -> Any:
    raw = body.get(name)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidFieldError(name, f"must be one of {allowed}.") from None


def _number(raw: Any, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) \
            or raw < 0:
        raise InvalidFieldError(name, "must be a number of seconds, 0 or more.")
    return float(raw)


def _whole(raw: Any, name: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw) \
            or not low <= raw <= high:
        raise InvalidFieldError(name, f"must be a whole number from {low} to {high}.")
    return int(raw)


def _strings(raw: Any, name: str, most: int, longest: int = 253) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > most or not all(
            isinstance(v, str) and 0 < len(v) <= longest for v in raw):
        raise InvalidFieldError(name, f"must be a list of at most {most} non-empty strings.")
    return tuple(raw)


def _text(raw: Any, name: str, longest: int) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > longest:
        raise InvalidFieldError(name, f"must be a string of at most {longest} characters.")
    return raw


def parse_clip(raw: Any) -> Clip | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidFieldError("clip", "must be an object {start, end | duration, mode}.")
    start = _number(raw.get("start", 0), "clip.start")
    end = None if raw.get("end") is None else _number(raw["end"], "clip.end")
    duration = None if raw.get("duration") is None else _number(raw["duration"],
                                                                "clip.duration")
    if end is not None and duration is not None:
        raise InvalidFieldError("clip", "give `end` or `duration`, not both.")
    if (end is not None and end <= start) or duration == 0:
        raise InvalidFieldError("clip", "must cover some of the video: `end` after `start`, "
                                "or a `duration` above 0.")
    mode = _choice(raw, "mode", ClipMode, ClipMode.ACCURATE)
    return Clip(start=start, end=end, duration=duration, mode=mode)


def _captions(raw: Any) -> tuple[tuple[CaptionTrack, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_CAPTIONS:
        raise InvalidFieldError("captions", f"must be a list of at most {MAX_CAPTIONS} "
                                "tracks {label, language, kind, content}.")
    tracks = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidFieldError("captions", "entries must be objects.")
        label = _text(entry.get("label"), "captions.label", 200)
        if not label:
            raise InvalidFieldError("captions", "every track needs a `label`.")
        language = check_language(str(entry.get("language") or ""))
        kind = entry.get("kind") or "subtitles"
        if kind not in ("subtitles", "captions"):
            raise InvalidFieldError("captions", "`kind` must be subtitles or captions.")
        content = entry.get("content")
        if not isinstance(content, str):
            raise InvalidFieldError("captions", "every track needs its WebVTT `content`.")
        track = CaptionTrack(id=new_track_id("cap"), label=label, language=language,
                             kind=kind)
        tracks.append((track, check_webvtt(content)))
    return tuple(tracks)


def parse_options(body: Any) -> StreamOptions:
    """The create request's fields other than its source, checked; InvalidFieldError names
    the first one that is wrong."""
    if not isinstance(body, dict):
        raise InvalidFieldError("body", "must be a JSON object.")
    profile = _choice(body, "profile", Profile, Profile.STANDARD)
    custom: tuple[LadderStep, ...] = ()
    if profile is Profile.CUSTOM:
        custom = ladder.parse_custom(body.get("renditions"))
    elif body.get("renditions") is not None:
        raise InvalidFieldError("renditions", "is for profile `custom` only.")
    formats_raw = body.get("packageFormats")
    if formats_raw is None:
        formats: tuple[PackageFormat, ...] = (PackageFormat.HLS,)
    else:
        if not isinstance(formats_raw, list) or not formats_raw or not all(
                f in ("hls", "dash") for f in formats_raw):
            raise InvalidFieldError("packageFormats", 'must be a non-empty list of "hls" '
                                    'and "dash".')
        formats = tuple(p for p in PackageFormat if p.value in formats_raw)
    low, high = SEGMENT_DURATION_RANGE
    segment = body.get("segmentDuration")
    ttl = body.get("tokenTtlSeconds")
    return StreamOptions(
        profile=profile, custom=custom, package_formats=formats,
        segment_duration=DEFAULT_SEGMENT_DURATION if segment is None
        else _whole(segment, "segmentDuration", low, high),
        access=_choice(body, "access", Access, Access.SIGNED),
        token_ttl_seconds=DEFAULT_TOKEN_TTL if ttl is None
        else _whole(ttl, "tokenTtlSeconds", *TOKEN_TTL_RANGE),
        allowed_domains=tuple(d.lower() for d in _strings(body.get("allowedDomains"),
                                                          "allowedDomains", MAX_DOMAINS)),
        captions=_captions(body.get("captions")),
        clip=parse_clip(body.get("clip")),
        title=_text(body.get("title"), "title", 500),
        description=_text(body.get("description"), "description", 5000),
        tags=_strings(body.get("tags"), "tags", MAX_TAGS, 100),
    )


def _clip_within(clip: Clip | None, duration: float | None) -> Clip | None:
    if clip is None or duration is None:
        return clip
    if clip.start >= duration:
        raise InvalidFieldError("clip", f"`start` must be inside the video (0 to "
                                f"{duration:.2f} s).")
    return clip


def create(svc: Services, tenant: str, options: StreamOptions, *,
           source_file_id: str) -> VideoStream:
    """Store a new stream of the tenant's stored video `source_file_id` (NotFoundError when
    there is none), its ladder planned from the video's height, its caption files written.
    The caller queues it (`Executor.submit_stream`)."""
    stored = svc.files.get(source_file_id, tenant)
    if stored is None:
        raise NotFoundError(f"No stored file {source_file_id!r} for this API key.")
    if not stored.mime_type.startswith("video/"):
        raise InvalidFieldError("sourceFileId", f"must be a video; the file is "
                                f"{stored.mime_type}.")
    stream_id = new_stream_id()
    stream = VideoStream(
        id=stream_id, tenant=tenant, playback_id=new_playback_id(), source_key=stored.key,
        source_file_id=stored.id, profile=options.profile,
        renditions=ladder.plan(options.profile, stored.height, options.custom),
        package_formats=options.package_formats, segment_duration=options.segment_duration,
        clip=_clip_within(options.clip, stored.duration), access=options.access,
        token_ttl_seconds=options.token_ttl_seconds, allowed_domains=options.allowed_domains,
        captions=tuple(track for track, _ in options.captions), title=options.title,
        description=options.description, tags=options.tags, created_at=time.time())
    for track, content in options.captions:
        svc.storage.put_bytes(layout.play_key(tenant, stream_id, layout.caption_path(track.id)),
                              content.encode())
    svc.streams.add(stream)
    return stream


# --- managing ------------------------------------------------------------------------------


def not_found(stream_id: str) -> NotFoundError:
    return NotFoundError(f"No video stream {stream_id!r} for this API key.")


_UPDATABLE = {"title": 500, "description": 5000}


def update(svc: Services, tenant: str, stream_id: str, body: Any) -> VideoStream:
    """PATCH: title, description, tags, engagement (an object, replaced whole)."""
    if not isinstance(body, dict):
        raise InvalidFieldError("body", "must be a JSON object.")
    unknown = sorted(set(body) - {"title", "description", "tags", "engagement"})
    if unknown:
        raise InvalidFieldError(unknown[0], "cannot be changed; use title, description, "
                                "tags or engagement.")
    changes: dict[str, Any] = {}
    for name, longest in _UPDATABLE.items():
        if name in body:
            changes[name] = _text(body[name], name, longest)
    if "tags" in body:
        changes["tags"] = _strings(body["tags"], "tags", MAX_TAGS, 100)
    if "engagement" in body:
        engagement = body["engagement"]
        if engagement is not None and not isinstance(engagement, dict):
            raise InvalidFieldError("engagement", "must be an object.")
        changes["engagement"] = dict(engagement or {})
    updated = svc.streams.update(stream_id, tenant, **changes)
    if updated is None:
        raise not_found(stream_id)
    return updated


def delete(svc: Services, tenant: str, stream_id: str) -> VideoStream:
    """Delete the stream's record and every object under its prefix (segments, manifests,
    captions, poster, its own source copy); a stored file it was made from stays. An
    encoding still running finds the stream gone and stops at its next step."""
    stream = svc.streams.get(stream_id, tenant)
    if stream is None:
        raise not_found(stream_id)
    svc.streams.remove(stream_id, tenant)
    svc.storage.delete_prefix(layout.stream_prefix(tenant, stream_id))
    svc.playback.forget(stream_id)
    return stream


# --- encoding ------------------------------------------------------------------------------


@contextmanager
def _local(svc: Services, key: str, work: Path, name: str,
           persist: Persist) -> Iterator[Path]:
    """The object at `key` as a local file: its own path on local storage, else a copy."""
    path = svc.storage.local_path(key)
    if path is not None and path.is_file():
        yield path
        return
    copy = work / name
    persist(partial(svc.storage.get_file, key, copy))
    yield copy


def _progress(svc: Services, stream_id: str, index: int) -> Callable[[float], None]:
    def note(fraction: float) -> None:
        # Progress is a nicety: an outage of the state must not fail the encoding.
        with suppress(ServiceUnavailableError):
            svc.streams.set_progress(stream_id, index, fraction)
    return note


def _probed(svc: Services, stream: VideoStream, src: Path,
            persist: Persist) -> VideoStream:
    """The stream with the encoded video's duration, size and audio noted (once)."""
    if stream.duration is not None:
        return stream
    info = probe(src)
    video = info.video
    if video is None:
        raise InvalidFieldError("sourceFileId", "must be a video; the file holds no video "
                                "stream.")
    duration = info.duration or 0.0
    clip = stream.clip
    if clip is not None:
        end = clip.start + clip.length if clip.length is not None else duration
        duration = max(0.0, min(end, duration) - clip.start)
    width, height = video.display_size
    top = max(stream.renditions, key=lambda r: r.height)
    out_height = top.height
    out_width = round(width * out_height / height / 2) * 2 if height else None
    updated = persist(lambda: svc.streams.update(
        stream.id, duration=round(duration, 3), width=out_width, height=out_height,
        has_audio=info.audio is not None))
    return updated or stream


def run_rendition(svc: Services, stream_id: str, index: int, *,
                  persist: Persist = once) -> bool:
    """Encode rendition `index` of the stream and record it; True when the ladder is now
    complete and the stream waits for its packaging (the caller queues it). A stream gone,
    finished or failed is left alone. Errors of the video fail the stream
    (ConvertlyError); `persist` wraps each state step (the workers wait out outages)."""
    stream = persist(lambda: svc.streams.get(stream_id))
    if stream is None or stream.status.finished:
        return False
    rendition = next((r for r in stream.renditions if r.index == index), None)
    if rendition is None:
        return False
    if rendition.done:  # delivered again: the packaging may still be owed
        return all(r.done for r in stream.renditions)
    if stream.status is StreamStatus.QUEUED:
        started = persist(lambda: svc.streams.update(
            stream_id, status=StreamStatus.PROCESSING, started_at=time.time()))
        if started is not None:
            webhooks.stream_event(svc, started, STREAM_STARTED)
    try:
        with scratch_dir(svc, "stream") as work, \
                _local(svc, stream.source_key, work, "source", persist) as src:
            stream = _probed(svc, stream, src, persist)
            top = max(r.index for r in stream.renditions)
            out = work / f"{rendition.id}.mp4"
            encode.encode_rendition(
                src, out, rendition, clip=stream.clip,
                segment_duration=stream.segment_duration,
                with_audio=stream.has_audio and index == top, duration=stream.duration,
                timeout=svc.settings.task_soft_time_limit,
                progress=_progress(svc, stream_id, index))
            info = probe(out)
            video = info.video
            size = out.stat().st_size
            seconds = info.duration or stream.duration or 0.0
            encoded = replace(
                rendition, width=video.width if video else None,
                audio_codec="aac" if info.audio is not None else None,
                average_bitrate=round(size * 8 / seconds / 1000) if seconds else None)
            persist(lambda: svc.storage.put_file(
                layout.rendition_key(stream.tenant, stream_id, rendition.id), out, move=True))
    except ServiceUnavailableError:
        raise  # not the video's fault: the task is tried again
    except ConvertlyError as exc:
        fail(svc, stream_id, exc.message, exc.code, persist=persist)
        return False
    last = bool(persist(lambda: svc.streams.record_rendition(stream_id, encoded)))
    if not last:
        _tidy_if_deleted(svc, stream, persist)
    return last


def _tidy_if_deleted(svc: Services, stream: VideoStream, persist: Persist) -> None:
    """A stream deleted while this task stored objects under its prefix: remove them (the
    delete has removed the prefix before, so this is what it missed)."""
    if persist(lambda: svc.streams.get(stream.id)) is None:
        persist(lambda: svc.storage.delete_prefix(layout.stream_prefix(stream.tenant,
                                                                       stream.id)))


def _tracks(stream: VideoStream) -> list[TextTrack]:
    return [TextTrack(id=c.id, label=c.label, language=c.language, kind=c.kind,
                      playlist=layout.caption_playlist(c.id), vtt=layout.caption_path(c.id))
            for c in stream.captions]


def _write_tracks(stream: VideoStream, play: Path) -> None:
    """Caption playlists, and the captions named in the manifests the packager wrote."""
    tracks = _tracks(stream)
    if not tracks:
        return
    (play / "captions").mkdir(exist_ok=True)
    for track in tracks:
        # The playlist names the WebVTT file beside it (both under captions/).
        (play / track.playlist).write_text(text_playlist(Path(track.vtt).name,
                                                         stream.duration or 0.0))
    master = play / layout.MASTER_PLAYLIST
    if master.exists():
        master.write_text(hls_master_with_tracks(master.read_text(), tracks))
    mpd = play / layout.DASH_MANIFEST
    if mpd.exists():
        mpd.write_text(dash_with_tracks(mpd.read_text(), tracks))


def package_stream(svc: Services, stream_id: str, *,
                   persist: Persist = once) -> None:
    """Package the stream's encoded renditions, store its playback files and make it ready
    (a stream already ready, failed or gone is left alone); a failure fails the stream."""
    stream = persist(lambda: svc.streams.get(stream_id))
    if stream is None or stream.status.finished or not all(r.done
                                                           for r in stream.renditions):
        return
    try:
        ready = _package(svc, stream, persist)
    except ServiceUnavailableError:
        raise
    except ConvertlyError as exc:
        fail(svc, stream_id, exc.message, exc.code, persist=persist)
        return
    if ready is not None:
        webhooks.stream_event(svc, ready, STREAM_READY)
        for r in stream.renditions:
            persist(partial(svc.storage.delete,
                            layout.rendition_key(stream.tenant, stream_id, r.id)))


def _package(svc: Services, stream: VideoStream,
             persist: Persist) -> VideoStream | None:
    ladder_ = sorted(stream.renditions, key=lambda r: r.index)
    with scratch_dir(svc, "package") as work:
        inputs = []
        for r in ladder_:
            key = layout.rendition_key(stream.tenant, stream.id, r.id)
            local = svc.storage.local_path(key)
            if local is None or not local.is_file():
                local = work / f"{r.id}.mp4"
                persist(partial(svc.storage.get_file, key, local))
            inputs.append(local)
        play = work / "play"
        play.mkdir()
        encode.package(inputs, play, audio_from=len(inputs) - 1 if stream.has_audio else None,
                       segment_duration=stream.segment_duration, hls=stream.hls,
                       timeout=svc.settings.task_soft_time_limit)
        if not stream.dash:
            (play / layout.DASH_MANIFEST).unlink()
        _write_tracks(stream, play)
        poster = grab_frames(inputs[-1], [(stream.duration or 0.0) * POSTER_AT], work,
                             duration=stream.duration)[0]
        shutil.move(poster, play / layout.POSTER)
        renditions = tuple(replace(r, segment_count=encode.segment_count(play, r.index))
                           for r in ladder_)
        for path in sorted(p for p in play.rglob("*") if p.is_file()):
            relative = path.relative_to(play).as_posix()
            persist(partial(svc.storage.put_file,
                            layout.play_key(stream.tenant, stream.id, relative), path,
                            move=True))
    ready: VideoStream | None = persist(lambda: svc.streams.update(
        stream.id, status=StreamStatus.READY, progress=1.0, ready_at=time.time(),
        renditions=renditions, poster=layout.POSTER))
    if ready is None:
        _tidy_if_deleted(svc, stream, persist)
    return ready


def fail(svc: Services, stream_id: str, message: str, code: str, *,
         persist: Persist = once) -> None:
    """Mark the stream failed (once) and send video.stream.failed."""
    stream = persist(lambda: svc.streams.get(stream_id))
    if stream is None or stream.status.finished:
        return
    log.warning("stream %s failed: %s (%s)", stream_id, message, code)
    failed = persist(lambda: svc.streams.update(stream_id, status=StreamStatus.FAILED,
                                                error=message, error_code=code))
    if failed is not None:
        webhooks.stream_event(svc, failed, STREAM_FAILED)
