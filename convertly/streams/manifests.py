"""Editing the manifests the packager wrote: text tracks (captions and subtitles) added to an
HLS master playlist as one SUBTITLES group and to a DASH MPD as text adaptation sets, the
WebVTT files themselves (captions checked, chapters written), and the query string a signed
stream's manifests give every URI they name.

Every function here is pure text in, text out. Adding tracks is idempotent: the tracks a
manifest held before are dropped and the given ones written, so the manifest always says
exactly what the stream's record says.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from convertly.errors import InvalidRequestError

SUBTITLE_GROUP = "subs"
DASH_NS = "urn:mpeg:dash:schema:mpd:2011"
MAX_WEBVTT_BYTES = 2 * 1024 * 1024
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
_TIMESTAMP = r"(?:\d{2,}:)?[0-5]\d:[0-5]\d\.\d{3}"
_CUE_TIMING = re.compile(rf"^({_TIMESTAMP})[ \t]+-->[ \t]+({_TIMESTAMP})(?:[ \t].*)?$")
_URI_ATTR = re.compile(r'URI="([^"]*)"')
_MPD_URL_ATTR = re.compile(r'\b(initialization|media|sourceURL)="([^"]*)"')
_MPD_BASE_URL = re.compile(r"(<BaseURL>)([^<]*)(</BaseURL>)")
_NAMESPACES = {
    "": DASH_NS,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xlink": "http://www.w3.org/1999/xlink",
    "cenc": "urn:mpeg:cenc:2013",
}


@dataclass(frozen=True)
class TextTrack:
    """A caption or subtitle track as the manifests name it: `playlist` is the URI of its
    HLS media playlist and `vtt` the URI of its WebVTT file, both relative to the manifest."""

    id: str
    label: str
    language: str
    kind: str  # "subtitles" or "captions"
    playlist: str
    vtt: str


def check_language(language: str) -> str:
    """A BCP 47 language tag as manifests carry it ("en", "pt-BR"); InvalidRequestError
    otherwise."""
    if not _LANGUAGE.match(language):
        raise InvalidRequestError(
            f"`language` must be a language tag such as \"en\" or \"pt-BR\", not {language!r}.")
    return language


def _seconds(stamp: str) -> float:
    parts = stamp.split(":")
    seconds = float(parts[-1]) + 60 * int(parts[-2])
    return seconds + 3600 * int(parts[-3]) if len(parts) == 3 else seconds


def check_webvtt(content: str) -> str:
    """`content` as a WebVTT file (line ends made `\\n`, a final newline), checked: the
    `WEBVTT` signature, at least one cue, and every cue timing well formed with its end
    after its start. InvalidRequestError says what is wrong and on which line."""
    if len(content.encode()) > MAX_WEBVTT_BYTES:
        raise InvalidRequestError(
            f"A caption track may hold at most {MAX_WEBVTT_BYTES // (1024 * 1024)} MiB of "
            "WebVTT.")
    text = content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if not re.match(r"^WEBVTT(?:[ \t].*)?$", lines[0]):
        raise InvalidRequestError("`content` must be WebVTT: its first line is `WEBVTT`.")
    cues = 0
    for number, line in enumerate(lines[1:], start=2):
        if "-->" not in line:
            continue
        match = _CUE_TIMING.match(line.strip())
        if match is None:
            raise InvalidRequestError(
                f"WebVTT line {number} is not a cue timing (`00:00:01.000 --> "
                f"00:00:02.500`): {line[:80]!r}.")
        if _seconds(match.group(2)) <= _seconds(match.group(1)):
            raise InvalidRequestError(f"WebVTT line {number}: the cue ends before it starts.")
        cues += 1
    if not cues:
        raise InvalidRequestError("This WebVTT file has no cues.")
    return text.rstrip("\n") + "\n"


def _stamp(seconds: float) -> str:
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def chapters_webvtt(chapters: Sequence[tuple[str, float]], duration: float) -> str:
    """A WebVTT chapters track: one cue per (title, start), each ending where the next one
    starts and the last at `duration`. Chapters are sorted by start; the caller has checked
    that starts are distinct and inside the video."""
    ordered = sorted(chapters, key=lambda chapter: chapter[1])
    lines = ["WEBVTT", ""]
    for index, (title, start) in enumerate(ordered):
        end = ordered[index + 1][1] if index + 1 < len(ordered) else max(duration, start)
        lines += [f"chapter-{index + 1}", f"{_stamp(start)} --> {_stamp(end)}",
                  _cue_text(title), ""]
    return "\n".join(lines)


def _cue_text(title: str) -> str:
    # A cue's text ends at the first blank line and may not hold "-->".
    return " ".join(title.replace("-->", "->").split())


def text_playlist(vtt_uri: str, duration: float) -> str:
    """The HLS media playlist of one WebVTT file covering the whole video."""
    return "\n".join([
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        f"#EXTINF:{duration:.3f},",
        vtt_uri,
        "#EXT-X-ENDLIST",
        "",
    ])


def _quoted(value: str) -> str:
    # An HLS quoted string holds no double quote, CR or LF.
    return '"' + re.sub(r'["\r\n]', "'", value) + '"'


def _without_attribute(line: str, name: str) -> str:
    return re.sub(rf',{name}=(?:"[^"]*"|[^,]*)', "", line)


def _media_line(track: TextTrack, first: bool) -> str:
    attributes = [
        "TYPE=SUBTITLES",
        f"GROUP-ID={_quoted(SUBTITLE_GROUP)}",
        f"NAME={_quoted(track.label)}",
        f"LANGUAGE={_quoted(track.language)}",
        f"DEFAULT={'YES' if first else 'NO'}",
        "AUTOSELECT=YES",
    ]
    if track.kind == "captions":
        attributes.append('CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,'
                          'public.accessibility.describes-music-and-sound"')
    attributes.append(f"URI={_quoted(track.playlist)}")
    return "#EXT-X-MEDIA:" + ",".join(attributes)


def hls_master_with_tracks(master: str, tracks: Sequence[TextTrack]) -> str:
    """The master playlist with exactly `tracks` as its subtitles: one SUBTITLES rendition
    group named on every variant (none at all when `tracks` is empty)."""
    lines = master.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != "#EXTM3U":
        raise ValueError("not an HLS playlist")
    kept: list[str] = []
    for line in lines:
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in line:
            continue
        if line.startswith("#EXT-X-STREAM-INF:"):
            line = _without_attribute(line, "SUBTITLES")
            if tracks:
                line += f",SUBTITLES={_quoted(SUBTITLE_GROUP)}"
        kept.append(line)
    # The group goes after the header tags, before the first variant.
    at = next((i for i, line in enumerate(kept) if line.startswith("#EXT-X-STREAM-INF:")),
              len(kept))
    media = [_media_line(track, index == 0) for index, track in enumerate(tracks)]
    return "\n".join(kept[:at] + media + kept[at:])


def _register_namespaces() -> None:
    for prefix, uri in _NAMESPACES.items():
        ET.register_namespace(prefix, uri)


def dash_with_tracks(mpd: str, tracks: Sequence[TextTrack]) -> str:
    """The MPD with exactly `tracks` as text adaptation sets (WebVTT side files) in its
    first period."""
    _register_namespaces()
    root = ET.fromstring(mpd)
    period = root.find(f"{{{DASH_NS}}}Period")
    if root.tag != f"{{{DASH_NS}}}MPD" or period is None:
        raise ValueError("not a DASH MPD with a period")
    for adaptation in period.findall(f"{{{DASH_NS}}}AdaptationSet"):
        if adaptation.get("contentType") == "text" or adaptation.get("mimeType") == "text/vtt":
            period.remove(adaptation)
    next_id = 1 + max((int(a.get("id", "0")) for a in period.findall(f"{{{DASH_NS}}}AdaptationSet")
                       if a.get("id", "").isdigit()), default=-1)
    for offset, track in enumerate(tracks):
        adaptation = ET.SubElement(period, f"{{{DASH_NS}}}AdaptationSet", {
            "id": str(next_id + offset), "contentType": "text", "mimeType": "text/vtt",
            "lang": track.language,
        })
        ET.SubElement(adaptation, f"{{{DASH_NS}}}Role", {
            "schemeIdUri": "urn:mpeg:dash:role:2011",
            "value": "caption" if track.kind == "captions" else "subtitle",
        })
        ET.SubElement(adaptation, f"{{{DASH_NS}}}Label").text = track.label
        representation = ET.SubElement(adaptation, f"{{{DASH_NS}}}Representation", {
            "id": f"text-{track.id}", "bandwidth": "256",
        })
        ET.SubElement(representation, f"{{{DASH_NS}}}BaseURL").text = track.vtt
    ET.indent(root, space="\t")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _with_query(uri: str, query: str) -> str:
    if not uri or uri.startswith(("data:", "#")):
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


def hls_with_query(playlist: str, query: str) -> str:
    """An HLS playlist whose every URI (variant, media playlist, segment, init section,
    rendition group) carries `query`: a player resolves relative URIs against the playlist's
    URL without its query, so a signed stream's token must be written into each one."""
    out = []
    for line in playlist.split("\n"):
        if line.startswith("#"):
            line = _URI_ATTR.sub(lambda m: f'URI="{_with_query(m.group(1), query)}"', line)
        elif line.strip():
            line = _with_query(line.strip(), query)
        out.append(line)
    return "\n".join(out)


def dash_with_query(mpd: str, query: str) -> str:
    """The MPD with `query` on every segment template, segment URL and base URL."""
    escaped = escape(query)  # `&` is `&amp;` inside XML
    text = _MPD_URL_ATTR.sub(
        lambda m: f'{m.group(1)}="{_with_query(m.group(2), escaped)}"', mpd)
    return _MPD_BASE_URL.sub(
        lambda m: m.group(1) + _with_query(m.group(2), escaped) + m.group(3), text)
