"""The playback route and playback events, in both modes (local disk and S3): a stream
packaged by ffmpeg is stored as a ready stream, and every playlist, manifest and segment is
fetched the way a player fetches them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from convertly.streams import access
from convertly.streams.model import Access
from tests.api.support import AppEnv, Tenant, assert_error
from tests.streams.packaged import SECONDS, package, store_ready
from tests.streams.play import names, walk_dash, walk_hls


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package(tmp_path_factory.mktemp("packaged"))


def test_a_public_stream_plays_with_ranges_and_cors(app_env: AppEnv, tenant: Tenant,
                                                   packaged: Path) -> None:
    client = app_env.client
    stream = store_ready(app_env.services, tenant.tenant, packaged, access=Access.PUBLIC)
    base = f"http://testserver/video/v1/{stream.playback_id}/"
    files = walk_hls(client, base + "master.m3u8", Origin="https://anywhere.test")
    # Every playlist and every segment the packager wrote is reached from the master: two
    # video renditions and the audio, an init section each.
    packaged_names = {p.name for p in packaged.iterdir()}
    assert names(files) == packaged_names - {"manifest.mpd"}
    assert len([n for n in packaged_names if n.startswith("init-")]) == 3
    dash = walk_dash(client, base + "manifest.mpd", SECONDS)
    assert {n for n in dash if n.startswith("init-")} == {"init-0.m4s", "init-1.m4s",
                                                          "init-2.m4s"}
    assert dash <= packaged_names and len(dash) >= 3 * (1 + SECONDS)

    segment = base + "seg-1-00001.m4s"
    whole = client.get(segment, headers={"Origin": "https://anywhere.test"})
    assert whole.headers["access-control-allow-origin"] == "*"
    assert whole.headers["accept-ranges"] == "bytes"
    size = len(whole.content)
    part = client.get(segment, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-109/{size}"
    assert part.content == whole.content[10:110]
    tail = client.get(segment, headers={"Range": "bytes=-50"})
    assert (tail.status_code, tail.content) == (206, whole.content[-50:])
    past = client.get(segment, headers={"Range": f"bytes={size}-"})
    assert_error(past, 416, "RANGE_NOT_SATISFIABLE")
    assert past.headers["content-range"] == f"bytes */{size}"
    head = client.head(segment)
    assert head.headers["content-length"] == str(size) and not head.content

    preflight = client.options(segment, headers={"Origin": "https://a.test",
                                                 "Access-Control-Request-Headers": "range"})
    assert preflight.status_code == 204
    assert "Range" in preflight.headers["access-control-allow-headers"]
    assert_error(client.get(base + "nothing.m4s"), 404, "NOT_FOUND")
    assert_error(client.get(base + "source.mov"), 404, "NOT_FOUND")
    assert_error(client.get("http://testserver/video/v1/pb_nope/master.m3u8"), 404,
                 "NOT_FOUND")


def test_signed_access_refuses_expired_links_and_other_domains(
        app_env: AppEnv, tenant: Tenant, packaged: Path) -> None:
    client = app_env.client
    svc = app_env.services
    stream = store_ready(svc, tenant.tenant, packaged, access=Access.SIGNED,
                         allowed_domains=("app.example.com",))
    base = f"http://testserver/video/v1/{stream.playback_id}/"
    page = {"Referer": "https://app.example.com/lesson/1"}
    assert_error(client.get(base + "master.m3u8", headers=page), 403, "FORBIDDEN", "signed")

    query = access.playback_query(stream.playback_id, 60, svc.secret)
    files = walk_hls(client, f"{base}master.m3u8?{query}", **page)
    assert names(files) == {p.name for p in packaged.iterdir()} - {"manifest.mpd"}
    # Every URI a signed manifest names carries the link's own query.
    assert all(parse_qs(urlsplit(u).query) == parse_qs(query) for u in files)
    assert len(walk_dash(client, f"{base}manifest.mpd?{query}", SECONDS, **page)) >= 12

    allowed = client.get(f"{base}seg-0-00001.m4s?{query}",
                         headers={"Origin": "https://app.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = client.get(f"{base}seg-0-00001.m4s?{query}",
                       headers={"Origin": "https://elsewhere.test"})
    assert_error(other, 403, "FORBIDDEN", "elsewhere.test")
    assert_error(client.get(f"{base}master.m3u8?{query}"), 403, "FORBIDDEN", "Origin")

    expired = access.playback_query(stream.playback_id, -1, svc.secret)
    assert_error(client.get(f"{base}master.m3u8?{expired}", headers=page), 403, "FORBIDDEN",
                 "expired")
    other_stream = access.playback_query("pb_other", 60, svc.secret)
    assert_error(client.get(f"{base}master.m3u8?{other_stream}", headers=page), 403,
                 "FORBIDDEN", "invalid")


def test_playback_events_count_views_and_watch_time(app_env: AppEnv, tenant: Tenant,
                                                    packaged: Path) -> None:
    client = app_env.client
    stream = store_ready(app_env.services, tenant.tenant, packaged, access=Access.PUBLIC)
    url = "/api/video/playback-events"
    preflight = client.options(url, headers={"Origin": "https://a.test",
                                             "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    for event, at in [("ready", None), ("play", 0.0), ("timeupdate", 0.5)]:
        body = {"playbackId": stream.playback_id, "sessionId": "sess-1", "event": event,
                "currentTime": at, "duration": 3.0}
        answer = client.post(url, json={k: v for k, v in body.items() if v is not None})
        assert answer.status_code == 202, answer.text
        assert answer.headers["access-control-allow-origin"] == "*"
    counts = app_env.services.playback.counts(stream.id)
    assert (counts.events, counts.plays) == (3, 1)
    assert 0 < counts.watch_seconds <= 0.5

    good = {"playbackId": stream.playback_id, "sessionId": "s", "event": "play"}
    for bad, fragment in [({**good, "event": "rewind"}, "event"),
                          ({**good, "sessionId": "x" * 200}, "sessionId"),
                          ({**good, "currentTime": -3}, "currentTime"),
                          ({**good, "currentTime": "7"}, "currentTime"),
                          ({"sessionId": "s", "event": "play"}, "playbackId")]:
        assert_error(client.post(url, json=bad), 400, "INVALID_REQUEST", fragment)
    assert_error(client.post(url, content=b"[1]"), 400, "INVALID_REQUEST")
    assert_error(client.post(url, content=b"{" * 5000), 413, "PAYLOAD_TOO_LARGE")
    assert_error(client.post(url, json={**good, "playbackId": "pb_none"}), 404, "NOT_FOUND")


def test_playback_events_are_limited_per_address(limited_env: AppEnv, tmp_path: Path) -> None:
    """The route takes no key: an address sending more than its rate gets 429, readable by
    the player's page (CORS)."""
    tenant = limited_env.new_tenant("events")
    stream = store_ready(limited_env.services, tenant.tenant, tmp_path, access=Access.PUBLIC)
    body = {"playbackId": stream.playback_id, "sessionId": "s", "event": "timeupdate",
            "currentTime": 1.0}
    answers = [limited_env.client.post("/api/video/playback-events", json=body)
               for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [202, 202]
    assert_error(answers[2], 429, "RATE_LIMITED", "playback events")
    assert int(answers[2].headers["retry-after"]) >= 1
    assert answers[2].headers["access-control-allow-origin"] == "*"
    assert limited_env.services.playback.counts(stream.id).events == 2
