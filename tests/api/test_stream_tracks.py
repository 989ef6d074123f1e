"""A stream's captions, chapters, poster and thumbnail candidates, in both modes: each change
is read back the way a player reads it, through the playback route."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from convertly.streams.manifests import DASH_NS
from convertly.streams.model import Access, StreamStatus
from tests.api.support import AppEnv, Tenant, assert_error
from tests.streams.packaged import package, store_ready

NS = {"d": DASH_NS}
VTT = "WEBVTT\n\n00:00.500 --> 00:02.000\nHello there\n"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package(tmp_path_factory.mktemp("packaged"))


def play(client: TestClient, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, (url, response.text)
    return response.content


def master_subtitles(client: TestClient, stream: dict[str, Any]) -> list[str]:
    master = play(client, stream["hlsManifestUrl"]).decode()
    return [line for line in master.splitlines() if "TYPE=SUBTITLES" in line]


def test_captions_are_added_to_and_removed_from_both_manifests(
        app_env: AppEnv, tenant: Tenant, packaged: Path) -> None:
    client = app_env.client
    stream = store_ready(app_env.services, tenant.tenant, packaged, access=Access.SIGNED)
    url = f"/api/video/streams/{stream.id}/captions"
    answer = client.post(url, headers=tenant.headers, json={
        "label": "English", "language": "en", "kind": "captions", "content": VTT})
    assert answer.status_code == 201, answer.text
    client.post(url, headers=tenant.headers, json={
        "label": "Français", "language": "fr", "content": VTT.replace("Hello", "Bonjour")})
    got = client.get(f"/api/video/streams/{stream.id}", headers=tenant.headers).json()["stream"]
    english, french = got["captions"]
    assert (english["label"], english["kind"], french["kind"]) == ("English", "captions",
                                                                   "subtitles")
    assert play(client, french["url"]).decode() == VTT.replace("Hello", "Bonjour")
    lines = master_subtitles(client, got)
    assert len(lines) == 2 and 'LANGUAGE="fr"' in lines[1]
    # The subtitle playlist, signed like every URI of a signed stream, leads to the WebVTT.
    playlist_uri = lines[0].split('URI="')[1].split('"')[0]
    assert "token=" in playlist_uri
    base = got["hlsManifestUrl"].rsplit("/", 1)[0]
    playlist = play(client, f"{base}/{playlist_uri}").decode()
    vtt_uri = next(x for x in playlist.splitlines() if x and not x.startswith("#"))
    assert play(client, f"{base}/captions/{vtt_uri}").decode() == VTT
    mpd = ET.fromstring(play(client, got["dashManifestUrl"]))
    text = [a for a in mpd.iter(f"{{{DASH_NS}}}AdaptationSet")
            if a.get("contentType") == "text"]
    assert [a.get("lang") for a in text] == ["en", "fr"]

    removed = client.delete(f"{url}?captionId={english['id']}", headers=tenant.headers)
    assert removed.status_code == 200, removed.text
    got = removed.json()["stream"]
    assert [c["language"] for c in got["captions"]] == ["fr"]
    assert len(master_subtitles(client, got)) == 1
    assert client.get(english["url"]).status_code == 404

    assert_error(client.delete(f"{url}?captionId=cap_nope", headers=tenant.headers), 404,
                 "NOT_FOUND")
    assert_error(client.post(url, headers=tenant.headers, json={
        "label": "x", "language": "en", "content": "not vtt"}), 400, "INVALID_REQUEST",
        "WEBVTT")
    assert_error(client.post(url, headers=tenant.headers, json={
        "label": "x", "language": "??", "content": VTT}), 400, "INVALID_REQUEST", "language")
    other = app_env.new_tenant("other")
    assert_error(client.post(url, headers=other.headers, json={
        "label": "x", "language": "en", "content": VTT}), 404, "NOT_FOUND")


def test_chapters_poster_and_thumbnails(app_env: AppEnv, tenant: Tenant,
                                        packaged: Path) -> None:
    client = app_env.client
    stream = store_ready(app_env.services, tenant.tenant, packaged, access=Access.PUBLIC)
    base = f"/api/video/streams/{stream.id}"
    answer = client.put(f"{base}/chapters", headers=tenant.headers, json={"chapters": [
        {"title": "Second", "start": 1.5}, {"title": "First", "start": 0}]})
    assert answer.status_code == 200, answer.text
    got = answer.json()["stream"]
    assert [c["title"] for c in got["chapters"]] == ["First", "Second"]
    chapters = play(client, got["chaptersUrl"]).decode()
    assert "00:00:00.000 --> 00:00:01.500\nFirst" in chapters
    assert "00:00:01.500 --> 00:00:03.000\nSecond" in chapters
    first = got["chapters"][0]["id"]
    got = client.delete(f"{base}/chapters?chapterId={first}", headers=tenant.headers).json()
    assert [c["title"] for c in got["stream"]["chapters"]] == ["Second"]
    assert_error(client.put(f"{base}/chapters", headers=tenant.headers, json={
        "chapters": [{"title": "Late", "start": 9}]}), 400, "INVALID_FIELD", "inside")

    poster = client.post(f"{base}/poster", headers=tenant.headers, json={"timeSeconds": 2.2})
    assert poster.status_code == 200, poster.text
    with Image.open(io.BytesIO(play(client, poster.json()["stream"]["posterUrl"]))) as image:
        assert (image.format, image.size) == ("JPEG", (320, 180))
    assert_error(client.post(f"{base}/poster", headers=tenant.headers,
                             json={"timeSeconds": 3.0}), 400, "INVALID_REQUEST", "inside")
    upload = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 30, 30)).save(upload, "PNG")
    uploaded = client.post(f"{base}/poster", headers=tenant.headers,
                           files={"poster": ("poster.png", upload.getvalue(), "image/png")})
    assert uploaded.status_code == 200, uploaded.text
    with Image.open(io.BytesIO(play(client, uploaded.json()["stream"]["posterUrl"]))) as image:
        assert (image.format, image.size) == ("JPEG", (64, 36))
        assert image.getpixel((32, 18))[0] > 150  # type: ignore[index]
    assert_error(client.post(f"{base}/poster", headers=tenant.headers,
                             files={"poster": ("x.png", b"not an image", "image/png")}),
                 400, "INVALID_FIELD", "image")

    thumbnails = client.get(f"{base}/thumbnails", headers=tenant.headers).json()["thumbnails"]
    assert [t["timeSeconds"] for t in thumbnails] == [0.3, 0.9, 1.5, 2.1, 2.7]
    for thumbnail in thumbnails:
        with Image.open(io.BytesIO(play(client, thumbnail["url"]))) as image:
            assert (image.format, image.size) == ("JPEG", (320, 180))
    # Picked: the candidate's time makes the poster.
    assert client.post(f"{base}/poster", headers=tenant.headers, json={
        "timeSeconds": thumbnails[2]["timeSeconds"]}).status_code == 200


def test_a_stream_still_encoding_takes_captions_but_not_frames_or_chapters(
        app_env: AppEnv, tenant: Tenant, packaged: Path) -> None:
    client = app_env.client
    stream = store_ready(app_env.services, tenant.tenant, packaged,
                         status=StreamStatus.PROCESSING)
    base = f"/api/video/streams/{stream.id}"
    added = client.post(f"{base}/captions", headers=tenant.headers, json={
        "label": "English", "language": "en", "content": VTT})
    assert added.status_code == 201, added.text
    assert [c["label"] for c in added.json()["stream"]["captions"]] == ["English"]
    for response in (
            client.put(f"{base}/chapters", headers=tenant.headers,
                       json={"chapters": [{"title": "A", "start": 0}]}),
            client.post(f"{base}/poster", headers=tenant.headers, json={"timeSeconds": 1}),
            client.get(f"{base}/thumbnails", headers=tenant.headers)):
        assert_error(response, 409, "CONFLICT", "processing")
