"""What changes on a stream after it is made: caption tracks added and removed, chapters
replaced and removed, the poster set from a time or an upload, and the thumbnail candidates
a poster can be picked from (the SDK's `video.streams` addCaptions ... listThumbnailCandidates).

Captions live beside the segments (`play/captions/{id}.vtt`, with an HLS playlist each) and
are named in the manifests the packager wrote; every change rewrites them from the record
(`convertly.streams.manifests`), so the manifests always list exactly the record's tracks.
A stream still encoding keeps its captions in the record and in storage; its packaging
names them. Chapters are one WebVTT chapters track (`play/chapters.vtt`).

Frames come from the packaged segments, not the source (which may be gone): the top
rendition's init section and the one segment holding the time asked, read from storage.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from convertly.errors import (
    ConflictError,
    InvalidFieldError,
    InvalidRequestError,
    NotFoundError,
)
from convertly.service import Services, scratch_dir
from convertly.streams import frames, layout
from convertly.streams.manifests import (
    TextTrack,
    chapters_webvtt,
    check_language,
    check_webvtt,
    dash_with_tracks,
    hls_master_with_tracks,
    text_playlist,
)
from convertly.streams.model import (
    CaptionTrack,
    Chapter,
    StreamStatus,
    VideoStream,
    new_track_id,
)

MAX_CAPTION_TRACKS = 20
MAX_CHAPTERS = 100
MAX_POSTER_BYTES = 10 * 1024 * 1024
POSTER_QUALITY = 85


def _stream(svc: Services, tenant: str, stream_id: str) -> VideoStream:
    stream = svc.streams.get(stream_id, tenant)
    if stream is None:
        raise NotFoundError(f"No video stream {stream_id!r} for this API key.")
    return stream


def _ready(svc: Services, tenant: str, stream_id: str) -> VideoStream:
    stream = _stream(svc, tenant, stream_id)
    if stream.status is not StreamStatus.READY or not stream.duration:
        raise ConflictError(f"The stream is {stream.status.value}: its poster, thumbnails "
                            "and chapters can be set once it is ready.")
    return stream


def _saved(svc: Services, stream: VideoStream, **changes: Any) -> VideoStream:
    updated = svc.streams.update(stream.id, stream.tenant, **changes)
    if updated is None:
        raise NotFoundError(f"No video stream {stream.id!r} for this API key.")
    return updated


def _put(svc: Services, stream: VideoStream, path: str, data: bytes) -> None:
    svc.storage.put_bytes(layout.play_key(stream.tenant, stream.id, path), data)


def _read(svc: Services, stream: VideoStream, path: str) -> str:
    with svc.storage.open(layout.play_key(stream.tenant, stream.id, path)) as fh:
        return fh.read().decode("utf-8")


def write_text_tracks(svc: Services, stream: VideoStream) -> None:
    """Name exactly the stream's caption tracks in its stored manifests (a ready stream's),
    each with its HLS subtitle playlist."""
    if stream.status is not StreamStatus.READY:
        return
    tracks = [TextTrack(id=c.id, label=c.label, language=c.language, kind=c.kind,
                        playlist=layout.caption_playlist(c.id), vtt=layout.caption_path(c.id))
              for c in stream.captions]
    for track in tracks:
        # The playlist names the WebVTT file beside it (both under captions/).
        _put(svc, stream, track.playlist,
             text_playlist(Path(track.vtt).name, stream.duration or 0.0).encode())
    if stream.hls:
        master = _read(svc, stream, layout.MASTER_PLAYLIST)
        _put(svc, stream, layout.MASTER_PLAYLIST, hls_master_with_tracks(master, tracks).encode())
    if stream.dash:
        mpd = _read(svc, stream, layout.DASH_MANIFEST)
        _put(svc, stream, layout.DASH_MANIFEST, dash_with_tracks(mpd, tracks).encode())


def _text(body: dict[str, Any], name: str, longest: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        raise InvalidFieldError(name, f"is required: text of 1 to {longest} characters.")
    return " ".join(value.split())


def add_caption(svc: Services, tenant: str, stream_id: str, body: Any) -> VideoStream:
    """POST /captions: a WebVTT track {label, language, kind?, content}."""
    if not isinstance(body, dict):
        raise InvalidRequestError("Send a JSON object {label, language, kind, content}.")
    label = _text(body, "label", 200)
    language = check_language(str(body.get("language") or ""))
    kind = body.get("kind") or "subtitles"
    if kind not in ("subtitles", "captions"):
        raise InvalidFieldError("kind", "must be subtitles or captions.")
    content = body.get("content")
    if not isinstance(content, str):
        raise InvalidFieldError("content", "is required: the track's WebVTT text.")
    vtt = check_webvtt(content)
    stream = _stream(svc, tenant, stream_id)
    if len(stream.captions) >= MAX_CAPTION_TRACKS:
        raise ConflictError(f"A stream has at most {MAX_CAPTION_TRACKS} caption tracks; "
                            "remove one first.")
    track = CaptionTrack(id=new_track_id("cap"), label=label, language=language, kind=kind)
    _put(svc, stream, layout.caption_path(track.id), vtt.encode())
    stream = _saved(svc, stream, captions=(*stream.captions, track))
    write_text_tracks(svc, stream)
    return stream


def remove_caption(svc: Services, tenant: str, stream_id: str,
                   caption_id: str | None) -> VideoStream:
    """DELETE /captions?captionId=: the track leaves the manifests, then storage."""
    stream = _stream(svc, tenant, stream_id)
    if not caption_id or caption_id not in {c.id for c in stream.captions}:
        raise NotFoundError(f"This stream has no caption track {caption_id!r}.")
    stream = _saved(svc, stream, captions=tuple(c for c in stream.captions
                                                if c.id != caption_id))
    write_text_tracks(svc, stream)
    for path in (layout.caption_path(caption_id), layout.caption_playlist(caption_id)):
        svc.storage.delete(layout.play_key(stream.tenant, stream.id, path))
    return stream


def _write_chapters(svc: Services, stream: VideoStream) -> None:
    key = layout.play_key(stream.tenant, stream.id, layout.CHAPTERS)
    if not stream.chapters:
        svc.storage.delete(key)
        return
    svc.storage.put_bytes(key, chapters_webvtt(
        [(c.title, c.start) for c in stream.chapters], stream.duration or 0.0).encode())


def replace_chapters(svc: Services, tenant: str, stream_id: str, body: Any) -> VideoStream:
    """PUT /chapters: {chapters: [{title, start}, ...]} replaces every chapter."""
    raw = body.get("chapters") if isinstance(body, dict) else None
    if not isinstance(raw, list) or len(raw) > MAX_CHAPTERS:
        raise InvalidFieldError("chapters", f"must be a list of at most {MAX_CHAPTERS} "
                                "chapters {title, start}.")
    stream = _ready(svc, tenant, stream_id)
    duration = stream.duration or 0.0
    chapters: list[Chapter] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidFieldError("chapters", "entries must be objects {title, start}.")
        title = _text(entry, "title", 200)
        start = entry.get("start")
        if isinstance(start, bool) or not isinstance(start, int | float) \
                or not math.isfinite(start) or not 0 <= start < duration:
            raise InvalidFieldError("chapters", f"every `start` must be a time inside the "
                                    f"video, 0 to {duration:.2f} seconds.")
        chapters.append(Chapter(id=new_track_id("chap"), title=title, start=float(start)))
    if len({c.start for c in chapters}) != len(chapters):
        raise InvalidFieldError("chapters", "two chapters start at the same time.")
    stream = _saved(svc, stream, chapters=tuple(sorted(chapters, key=lambda c: c.start)))
    _write_chapters(svc, stream)
    return stream


def remove_chapter(svc: Services, tenant: str, stream_id: str,
                   chapter_id: str | None) -> VideoStream:
    """DELETE /chapters?chapterId=: the chapter before it runs on to the next one."""
    stream = _stream(svc, tenant, stream_id)
    if not chapter_id or chapter_id not in {c.id for c in stream.chapters}:
        raise NotFoundError(f"This stream has no chapter {chapter_id!r}.")
    stream = _saved(svc, stream, chapters=tuple(c for c in stream.chapters
                                                if c.id != chapter_id))
    _write_chapters(svc, stream)
    return stream


def _grab(svc: Services, stream: VideoStream, times: Sequence[float], work: Path
          ) -> list[Path]:
    """Frames of the top rendition at `times`: for each, its init section and the segment
    holding the time, joined into one small fMP4 file, and the frame taken inside it."""
    top = max(stream.renditions, key=lambda r: r.height)
    init = svc.storage.open(layout.play_key(stream.tenant, stream.id,
                                            layout.init_segment(top.index)))
    with init:
        head = init.read()
    last = top.segment_count or math.ceil((stream.duration or 0.0) / stream.segment_duration)
    paths: dict[int, Path] = {}  # segment number -> init section + that segment
    pairs: list[tuple[Path, float]] = []
    for seconds in times:
        number = min(last, int(seconds // stream.segment_duration) + 1)
        if number not in paths:
            key = layout.play_key(stream.tenant, stream.id,
                                  layout.media_segment(top.index, number))
            paths[number] = work / f"segment-{number}.mp4"
            with svc.storage.open(key) as segment, paths[number].open("wb") as out:
                out.write(head)
                while block := segment.read(1024 * 1024):
                    out.write(block)
        begins = (number - 1) * stream.segment_duration
        # A time in a segment's last moment may lie after its last frame.
        length = min(stream.segment_duration, (stream.duration or 0.0) - begins)
        pairs.append((paths[number],
                      max(0.0, min(seconds - begins, length - frames.END_MARGIN))))
    return frames.grab_frames_of(pairs, work)


def poster_at(svc: Services, tenant: str, stream_id: str, body: Any) -> VideoStream:
    """POST /poster {timeSeconds}: the frame at that time becomes the poster."""
    raw = body.get("timeSeconds") if isinstance(body, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise InvalidFieldError("timeSeconds", "is required: a time in seconds.")
    stream = _ready(svc, tenant, stream_id)
    seconds = frames.check_time(float(raw), stream.duration)
    with scratch_dir(svc, "poster") as work:
        (frame,) = _grab(svc, stream, [seconds], work)
        svc.storage.put_file(layout.play_key(stream.tenant, stream.id, layout.POSTER), frame)
    return _saved(svc, stream, poster=layout.POSTER)


def poster_upload(svc: Services, tenant: str, stream_id: str, src: Path) -> VideoStream:
    """POST /poster (multipart `poster`): an image (JPEG, PNG, WebP, ...) stored as the
    poster, as a JPEG no larger than the server's pixel budget allows. Like a poster from a
    time, once the stream is ready (its packaging writes the first poster)."""
    stream = _ready(svc, tenant, stream_id)
    if src.stat().st_size > MAX_POSTER_BYTES:
        raise InvalidFieldError("poster", f"must be at most {MAX_POSTER_BYTES // 2**20} MiB.")
    try:
        with Image.open(src) as image:
            if image.width * image.height > svc.settings.max_pixels:
                raise InvalidFieldError("poster", f"has more than {svc.settings.max_pixels} "
                                        "pixels.")
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=POSTER_QUALITY)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InvalidFieldError("poster", "must be an image (JPEG, PNG or WebP).") from exc
    _put(svc, stream, layout.POSTER, out.getvalue())
    return _saved(svc, stream, poster=layout.POSTER)


def thumbnails(svc: Services, tenant: str, stream_id: str) -> list[tuple[int, float]]:
    """GET /thumbnails: the candidates (number, time in seconds), stored at
    `thumbnails/{number}.jpg` (grabbed on the first call, kept with the stream)."""
    stream = _ready(svc, tenant, stream_id)
    times = frames.candidate_times(stream.duration or 0.0)
    candidates = list(enumerate(times, start=1))
    keys = [layout.play_key(stream.tenant, stream.id, layout.thumbnail_path(n))
            for n, _ in candidates]
    if all(svc.storage.exists(key) for key in keys):
        return candidates
    with scratch_dir(svc, "thumbnails") as work:
        for key, frame in zip(keys, _grab(svc, stream, times, work), strict=True):
            svc.storage.put_file(key, frame, move=True)
    return candidates
