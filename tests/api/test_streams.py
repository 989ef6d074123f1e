"""/api/video/streams in both modes, on real ffmpeg: a stored video becomes a ladder of the
asked heights and bitrates (ffprobe), packaged for HLS and DASH from one set of segments
(every playlist parsed and every segment it names present), captions named in both
manifests, the ready event recorded; deleting the stream removes every object."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from convertly import webhooks
from convertly.settings import Settings
from convertly.state.records import STREAM_READY, Endpoint, new_id
from convertly.streams import layout
from tests.api.support import (
    SHARED_LIMITS,
    AppEnv,
    Tenant,
    assert_error,
    multipart,
    running_app,
)
from tests.origin import loopback_origin
from tests.streams.play import names, walk_dash, walk_hls
from tests.streams.source import source_video

VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello\n"
LADDER = [{"height": 144, "bitrate": 150, "audioBitrate": 48},
          {"height": 180, "bitrate": 300, "audioBitrate": 64}]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return source_video(tmp_path_factory.mktemp("src") / "clip.mp4", seconds=3).read_bytes()


def stored_video(client: TestClient, tenant: Tenant, video: bytes) -> str:
    response = client.post("/api/files", headers=tenant.headers,
                           files=multipart([("clip.mp4", video)], "file"))
    assert response.status_code == 201, response.text
    file_id: str = response.json()["file"]["id"]
    return file_id


def wait_ready(client: TestClient, tenant: Tenant, stream_id: str,
               timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/video/streams/{stream_id}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        stream: dict[str, Any] = response.json()["stream"]
        if stream["status"] in ("ready", "failed") or time.monotonic() > deadline:
            return stream
        time.sleep(0.1)


def _probe(path: Path) -> dict[str, Any]:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                           "stream=codec_type,height", "-show_entries", "format=duration",
                           "-of", "json", str(path)],
                          check=True, capture_output=True, text=True, timeout=30)
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_a_stored_video_becomes_an_hls_and_dash_ladder(app_env: AppEnv, tenant: Tenant,
                                                       video: bytes, tmp_path: Path) -> None:
    client, svc = app_env.client, app_env.services
    endpoint = Endpoint(id=new_id("we"), tenant=tenant.tenant, url="https://hooks.example/x",
                        secret="whsec_" + "a" * 32, events=(STREAM_READY,),
                        base_url="http://testserver", created_at=time.time())
    svc.webhooks.add_endpoint(endpoint, 3600)
    response = client.post("/api/video/streams", headers=tenant.headers, json={
        "sourceFileId": stored_video(client, tenant, video), "profile": "custom",
        "renditions": LADDER, "packageFormats": ["hls", "dash"], "segmentDuration": 2,
        "access": "public", "title": "Clip",
        "captions": [{"label": "English", "language": "en", "content": VTT}]})
    assert response.status_code == 201, response.text
    created = response.json()["stream"]
    assert created["status"] == "queued" and created["hlsManifestUrl"] is None

    stream = wait_ready(client, tenant, created["id"])
    assert stream["status"] == "ready", stream
    assert stream["progress"] == 100 and stream["duration"] == pytest.approx(3.0, abs=0.1)
    assert stream["hlsManifestUrl"].endswith(f"/video/v1/{stream['playbackId']}/master.m3u8")
    assert stream["dashManifestUrl"].endswith("/manifest.mpd")
    assert stream["posterUrl"].endswith("/poster.jpg")
    assert [(r["height"], r["width"], r["segmentCount"]) for r in stream["renditions"]] \
        == [(144, 256, 2), (180, 320, 2)]

    # Every object the manifests name is in storage under the stream's play/ prefix.
    def read(path: str) -> bytes:
        key = layout.play_key(tenant.tenant, stream["id"], path)
        with svc.storage.open(key) as fh:
            return fh.read()

    master = read(layout.MASTER_PLAYLIST).decode()
    assert 'TYPE=SUBTITLES' in master and 'LANGUAGE="en"' in master
    playlists = re.findall(r'^(media_\d+\.m3u8)$', master, re.M)
    playlists += re.findall(r'URI="(media_\d+\.m3u8)"', master)
    assert sorted(playlists) == ["media_0.m3u8", "media_1.m3u8", "media_2.m3u8"]
    for index, (rung, name) in enumerate(zip(LADDER, ["media_0.m3u8", "media_1.m3u8"],
                                             strict=True)):
        text = read(name).decode()
        assert text.rstrip().endswith("#EXT-X-ENDLIST")
        parts = re.findall(r'URI="([^"]+)"', text) + re.findall(r"^(seg-\S+\.m4s)$", text,
                                                                 re.M)
        assert len(parts) == 1 + 2
        joined = tmp_path / f"r{index}.mp4"
        joined.write_bytes(b"".join(read(p) for p in parts))
        probed = _probe(joined)
        assert [s["height"] for s in probed["streams"] if s["codec_type"] == "video"] \
            == [rung["height"]]
        kbps = joined.stat().st_size * 8 / float(probed["format"]["duration"]) / 1000
        assert 0.3 * rung["bitrate"] < kbps < 1.5 * rung["bitrate"], kbps
    assert read(layout.caption_path(stream["captions"][0]["id"])).decode() == VTT
    mpd = ET.fromstring(read(layout.DASH_MANIFEST))
    sets = mpd.findall(".//{urn:mpeg:dash:schema:mpd:2011}AdaptationSet")
    assert {s.get("contentType") for s in sets} >= {"video", "audio", "text"}

    # The ready event was recorded, carrying the stream.
    deliveries = svc.webhooks.deliveries(tenant.tenant, job_id=stream["id"], limit=10,
                                         offset=0)
    assert [d.event_type for d in deliveries[0]] == [STREAM_READY]
    event = json.loads(webhooks.envelope(svc, "http://testserver", deliveries[0][0]))
    assert event["data"]["status"] == "ready" and event["data"]["id"] == stream["id"]

    # Metadata, the list, and deleting with every object.
    patched = client.patch(f"/api/video/streams/{stream['id']}", headers=tenant.headers,
                           json={"tags": ["a"], "engagement": {"likes": 3}}).json()["stream"]
    assert (patched["title"], patched["tags"], patched["engagement"]) == \
        ("Clip", ["a"], {"likes": 3})
    listed = client.get("/api/video/streams?status=ready", headers=tenant.headers).json()
    assert [s["id"] for s in listed["streams"]] == [stream["id"]]
    # Played as a player plays it: every playlist, segment and caption through the route.
    played = names(walk_hls(client, stream["hlsManifestUrl"]))
    assert {"seg-0-00002.m4s", "seg-1-00002.m4s", "init-2.m4s"} <= played
    assert f"{stream['captions'][0]['id']}.vtt" in played
    assert len(walk_dash(client, stream["dashManifestUrl"], stream["duration"])) >= 3 * 3
    prefix = layout.stream_prefix(tenant.tenant, stream["id"])
    assert list(svc.storage.list_prefix(prefix))
    gone = client.delete(f"/api/video/streams/{stream['id']}", headers=tenant.headers)
    assert gone.status_code == 200, gone.text
    assert list(svc.storage.list_prefix(prefix)) == []
    assert_error(client.get(stream["hlsManifestUrl"]), 404, "NOT_FOUND")
    assert_error(client.get(f"/api/video/streams/{stream['id']}", headers=tenant.headers),
                 404, "NOT_FOUND")


def test_bad_requests_get_clear_errors(client: TestClient, tenant: Tenant,
                                       other_tenant: Tenant, video: bytes) -> None:
    def create(body: dict[str, Any]) -> Any:
        return client.post("/api/video/streams", headers=tenant.headers, json=body)

    file_id = stored_video(client, tenant, video)
    assert_error(create({"profile": "standard"}), 400, "INVALID_FIELD", "sourceFileId")
    assert_error(create({"sourceFileId": file_id, "profile": "ultra"}), 400, "INVALID_FIELD",
                 "profile")
    assert_error(create({"sourceFileId": file_id, "profile": "custom"}), 400,
                 "INVALID_FIELD", "renditions")
    assert_error(create({"sourceFileId": file_id, "segmentDuration": 30}), 400,
                 "INVALID_FIELD", "segmentDuration")
    assert_error(create({"sourceFileId": file_id, "packageFormats": ["smooth"]}), 400,
                 "INVALID_FIELD", "packageFormats")
    assert_error(create({"sourceFileId": file_id, "clip": {"start": 9}}), 400,
                 "INVALID_FIELD", "clip")
    assert_error(create({"sourceFileId": file_id, "captions": [
        {"label": "x", "language": "en", "content": "not vtt"}]}), 400, "INVALID_REQUEST")
    assert_error(create({"sourceFileId": file_id, "colour": "red"}), 400, "INVALID_FIELD",
                 "colour")
    other = client.post("/api/video/streams", headers=other_tenant.headers,
                        json={"sourceFileId": file_id})
    assert_error(other, 404, "NOT_FOUND")
    assert_error(client.get("/api/video/streams/vs_nope", headers=tenant.headers), 404,
                 "NOT_FOUND")
    assert_error(client.get("/api/video/streams?status=done", headers=tenant.headers), 400,
                 "INVALID_FIELD", "status")


def test_embedded_a_stream_survives_its_pool_process_killed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", workers=1, **SHARED_LIMITS)
    video = source_video(tmp_path / "long.mp4", seconds=8, size="640x360", audio=False)
    with running_app("embedded", settings) as env:
        tenant = env.new_tenant()
        created = env.client.post("/api/video/streams", headers=tenant.headers, json={
            "sourceFileId": stored_video(env.client, tenant, video.read_bytes()),
            "profile": "custom", "renditions": [{"height": 360, "bitrate": 800}],
            "segmentDuration": 2})
        assert created.status_code == 201, created.text
        stream_id = created.json()["stream"]["id"]
        deadline = time.monotonic() + 60
        while env.client.get(f"/api/video/streams/{stream_id}", headers=tenant.headers
                             ).json()["stream"]["progress"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pool = env.app.state.executor._pool
        for process in list(pool._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
        stream = wait_ready(env.client, tenant, stream_id)
        assert stream["status"] == "ready", stream
        assert [(r["height"], r["segmentCount"]) for r in stream["renditions"]] == [(360, 4)]
        assert env.app.state.executor._pool is not pool


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("tiny") / "tiny.mp4"
    return source_video(path, seconds=1, size="160x90", audio=False).read_bytes()


@pytest.fixture(scope="module")
def origin(tiny_video: bytes) -> Iterator[str]:
    class Origin(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(tiny_video)))
            self.end_headers()
            self.wfile.write(tiny_video)

        def log_message(self, *args: object) -> None:
            pass

    with loopback_origin(Origin) as base:
        yield f"{base}/clip.mp4"


def test_an_upload_or_a_source_url_is_stored_first(limited_env: AppEnv, tiny_video: bytes,
                                                   origin: str) -> None:
    client, tenant = limited_env.client, limited_env.new_tenant()
    uploaded = client.post("/api/video/streams", headers=tenant.headers,
                           files=multipart([("tiny.mp4", tiny_video)], "file"),
                           data={"profile": "basic", "packageFormats": '["dash"]'})
    fetched = client.post("/api/video/streams", headers=tenant.headers,
                          json={"sourceUrl": origin, "access": "public"})
    for response in (uploaded, fetched):
        assert response.status_code == 201, response.text
        stream = response.json()["stream"]
        file = client.get(f"/api/files/{stream['sourceFileId']}", headers=tenant.headers)
        assert file.json()["file"]["mime_type"] == "video/mp4"
        # A 90-line source gets one rung of the profile, at its own height.
        assert [r["height"] for r in stream["renditions"]] == [90]
        client.delete(f"/api/video/streams/{stream['id']}", headers=tenant.headers)
    assert uploaded.json()["stream"]["packageFormats"] == ["dash"]
    both = client.post("/api/video/streams", headers=tenant.headers,
                       json={"sourceUrl": origin, "sourceFileId": "file_x"})
    assert_error(both, 400, "INVALID_FIELD", "exactly one source")
