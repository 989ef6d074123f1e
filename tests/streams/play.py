"""Playing a stream the way a player does, through the playback route: every playlist the
HLS master leads to, every segment of every DASH representation, each answer checked for
its status and media type."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from urllib.parse import urljoin, urlsplit

from starlette.testclient import TestClient

from convertly.streams import access
from convertly.streams.manifests import DASH_NS

NS = {"d": DASH_NS}


def fetch(client: TestClient, url: str, **headers: str) -> bytes:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.text)
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    assert response.headers["content-type"].split(";")[0] == (
        access.mime_type(name) or "").split(";")[0], url
    return response.content


def walk_hls(client: TestClient, master_url: str, **headers: str) -> dict[str, bytes]:
    """Every URI the master playlist leads to (media playlists, init sections, segments),
    fetched through the playback route: URL -> body."""
    seen: dict[str, bytes] = {}
    pending = [master_url]
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        body = fetch(client, url, **headers)
        seen[url] = body
        if not urlsplit(url).path.endswith(".m3u8"):
            continue
        for line in body.decode().splitlines():
            uris = [line] if line and not line.startswith("#") else []
            if 'URI="' in line:
                uris.append(line.split('URI="', 1)[1].split('"', 1)[0])
            pending += [urljoin(url, uri) for uri in uris]
    return seen


def _numbers(template: ET.Element, duration: float) -> range:
    """The segment numbers a SegmentTemplate names: from its SegmentTimeline (`S` entries,
    each repeated `r` more times), else its fixed `duration`."""
    first = int(template.get("startNumber", "1"))
    timeline = template.find("d:SegmentTimeline", NS)
    if timeline is not None:
        count = sum(1 + int(entry.get("r", "0")) for entry in timeline.findall("d:S", NS))
    else:
        seconds = int(template.get("duration", "0")) / int(template.get("timescale", "1"))
        count = math.ceil(duration / seconds)
    return range(first, first + count)


def walk_dash(client: TestClient, mpd_url: str, duration: float,
              **headers: str) -> set[str]:
    """Fetch the init segment and every media segment of every representation of the MPD
    (templates by `$Number$`); return the names of the files fetched."""
    root = ET.fromstring(fetch(client, mpd_url, **headers))
    fetched: set[str] = set()
    for representation in root.iter(f"{{{DASH_NS}}}Representation"):
        template = representation.find("d:SegmentTemplate", NS)
        if template is None:
            continue
        rid = representation.get("id", "")
        init = template.get("initialization", "").replace("$RepresentationID$", rid)
        fetch(client, urljoin(mpd_url, init), **headers)
        fetched.add(init.split("?")[0])
        for number in _numbers(template, duration):
            media = template.get("media", "").replace("$RepresentationID$", rid)
            media = media.replace("$Number%05d$", f"{number:05d}")
            fetch(client, urljoin(mpd_url, media), **headers)
            fetched.add(media.split("?")[0])
    return fetched


def names(urls: dict[str, bytes]) -> set[str]:
    """The file names of fetched URLs (their last path segment)."""
    return {urlsplit(u).path.rsplit("/", 1)[-1] for u in urls}
