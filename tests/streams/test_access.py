"""Playback tokens, allowed domains and CORS headers."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from convertly.errors import ForbiddenError
from convertly.streams import access

SECRET = b"s" * 32


def parts(query: str) -> tuple[str, str]:
    fields = parse_qs(query)
    return fields["expires"][0], fields["token"][0]


def test_a_token_opens_its_stream_until_it_expires() -> None:
    expires, token = parts(access.playback_query("pb_a", 60, SECRET, now=1000))
    assert expires == "1060"
    access.check_token("pb_a", expires, token, SECRET, now=1060)
    with pytest.raises(ForbiddenError, match="expired"):
        access.check_token("pb_a", expires, token, SECRET, now=1061)
    for playback_id, until, mac in [("pb_b", expires, token), ("pb_a", "1999", token),
                                    ("pb_a", expires, token[:-2] + "xx"),
                                    ("pb_a", "soon", token)]:
        with pytest.raises(ForbiddenError, match="invalid"):
            access.check_token(playback_id, until, mac, SECRET, now=1000)
    with pytest.raises(ForbiddenError, match="signed"):
        access.check_token("pb_a", None, None, SECRET, now=1000)
    # A rotated secret keeps the tokens it signed while it is listed as an old one.
    access.check_token("pb_a", expires, token, b"new" * 11, old=[SECRET], now=1000)
    with pytest.raises(ForbiddenError):
        access.check_token("pb_a", expires, token, b"new" * 11, now=1000)


def test_allowed_domains_are_checked_against_origin_then_referer() -> None:
    allowed = ["app.example.com", "*.example.org"]
    ok = [("https://app.example.com", None), (None, "https://APP.example.com:8443/page?x"),
          ("https://a.b.example.org", "https://evil.test/"), ("https://example.org", None),
          (None, "http://127.0.0.1:8000/#streams")]
    for origin, referer in ok:
        access.check_domain(allowed, origin, referer, own_hosts=["127.0.0.1"])
    refused = [("https://example.com", None), ("https://evil.test", "https://app.example.com/"),
               (None, "https://notexample.org/"), (None, None), ("null", None)]
    for origin, referer in refused:
        with pytest.raises(ForbiddenError):
            access.check_domain(allowed, origin, referer, own_hosts=["127.0.0.1"])
    access.check_domain([], None, None)


def test_cors_opens_unrestricted_streams_to_any_page() -> None:
    assert access.cors_headers("https://a.test", [])["Access-Control-Allow-Origin"] == "*"
    restricted = access.cors_headers("https://app.example.com", ["app.example.com"])
    assert restricted["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert restricted["Vary"] == "Origin"
    assert "Range" in restricted["Access-Control-Allow-Headers"]


def test_playback_files_have_their_media_types() -> None:
    assert access.mime_type("master.m3u8") == "application/vnd.apple.mpegurl"
    assert access.mime_type("manifest.mpd") == "application/dash+xml"
    assert access.mime_type("chunk-stream0-00001.m4s") == "video/iso.segment"
    assert access.mime_type("captions/c1.vtt") == "text/vtt; charset=utf-8"
    assert access.mime_type("poster.jpg") == "image/jpeg"
    assert access.mime_type("source.mov") is None and access.mime_type("README") is None
