"""Where a stream's objects live in storage.

Everything of a stream is under one prefix, so deleting the prefix deletes every object:

    tenants/{tenant}/streams/{stream_id}/
        source/{name}          the video it was made from, when the stream owns it (an
                               upload or a `sourceUrl`; a stored file stays the library's)
        renditions/{id}.mp4    each rendition as encoded (fragmented MP4, keyframes on the
                               segment boundaries); the packaging step's input, deleted once
                               the stream is ready
        play/                  what the playback route serves, `/video/v1/{playbackId}/{path}`
                               reading `play/{path}`; manifests refer to each other and to
                               segments by these relative paths:
            master.m3u8            HLS master playlist (with "hls")
            media_{n}.m3u8         HLS media playlist of representation n
            manifest.mpd           DASH manifest (with "dash")
            init-{n}.m4s           CMAF initialisation segment of representation n
            seg-{n}-{k:05d}.m4s    CMAF media segment k (from 1) of representation n;
                                   HLS and DASH share the same segments
            captions/{id}.vtt      a caption track (WebVTT)
            captions/{id}.m3u8     its HLS subtitle playlist
            chapters.vtt           the chapters track (WebVTT)
            poster.jpg             the poster
            thumbnails/{k}.jpg     thumbnail candidates

Representations are numbered as the renditions' `index` (smallest height first); the audio
track, when the source has one, is representation `len(renditions)`.
"""

from __future__ import annotations

from convertly.storage.base import safe_name

MASTER_PLAYLIST = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"
CHAPTERS = "chapters.vtt"
POSTER = "poster.jpg"
INIT_SEGMENT = "init-$RepresentationID$.m4s"  # the packager's templates (ffmpeg's dash muxer)
MEDIA_SEGMENT = "seg-$RepresentationID$-$Number%05d$.m4s"

# Content types of what `play/` holds, by extension.
MIME_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
}


def stream_prefix(tenant: str, stream_id: str) -> str:
    return f"tenants/{tenant}/streams/{stream_id}"


def source_key(tenant: str, stream_id: str, filename: str) -> str:
    return f"{stream_prefix(tenant, stream_id)}/source/{safe_name(filename, 'source')}"


def rendition_key(tenant: str, stream_id: str, rendition_id: str) -> str:
    return f"{stream_prefix(tenant, stream_id)}/renditions/{rendition_id}.mp4"


def play_prefix(tenant: str, stream_id: str) -> str:
    return f"{stream_prefix(tenant, stream_id)}/play"


def play_key(tenant: str, stream_id: str, path: str) -> str:
    """The storage key of playback path `path` (relative, e.g. `seg-0-00001.m4s`); the
    caller checks `path` (storage.base.check_key refuses `..` and the like)."""
    return f"{play_prefix(tenant, stream_id)}/{path}"


def media_playlist(index: int) -> str:
    return f"media_{index}.m3u8"


def init_segment(index: int) -> str:
    return f"init-{index}.m4s"


def media_segment(index: int, number: int) -> str:
    return f"seg-{index}-{number:05d}.m4s"


def caption_path(caption_id: str) -> str:
    return f"captions/{caption_id}.vtt"


def caption_playlist(caption_id: str) -> str:
    return f"captions/{caption_id}.m3u8"


def thumbnail_path(number: int) -> str:
    return f"thumbnails/{number}.jpg"
