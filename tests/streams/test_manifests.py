"""Text tracks and signed queries written into manifests ffmpeg packaged."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from convertly.errors import InvalidRequestError
from convertly.streams import manifests
from convertly.streams.manifests import DASH_NS, TextTrack

NS = {"d": DASH_NS}
ENGLISH = TextTrack("c1", "English", "en", "captions", "captions/c1.m3u8", "captions/c1.vtt")
GERMAN = TextTrack("c2", 'Deutsch "DE"', "de", "subtitles", "captions/c2.m3u8",
                   "captions/c2.vtt")


def attributes(line: str) -> dict[str, str]:
    """The attribute list of an HLS tag line, quoted values unquoted."""
    body = line.partition(":")[2]
    out: dict[str, str] = {}
    while body:
        name, _, rest = body.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
            rest = rest.removeprefix(",")
        else:
            value, _, rest = rest.partition(",")
        out[name] = value
        body = rest
    return out


def test_hls_master_gets_one_subtitle_group_named_by_every_variant(packaged: Path) -> None:
    master = (packaged / "master.m3u8").read_text()
    both = manifests.hls_master_with_tracks(master, [ENGLISH, GERMAN])
    lines = both.splitlines()
    media = [attributes(x) for x in lines if x.startswith("#EXT-X-MEDIA:TYPE=SUBTITLES")]
    assert [(m["NAME"], m["LANGUAGE"], m["URI"], m["DEFAULT"]) for m in media] == [
        ("English", "en", "captions/c1.m3u8", "YES"),
        ("Deutsch 'DE'", "de", "captions/c2.m3u8", "NO"),
    ]
    assert "transcribes-spoken-dialog" in media[0]["CHARACTERISTICS"]
    assert "CHARACTERISTICS" not in media[1]
    variants = [attributes(x) for x in lines if x.startswith("#EXT-X-STREAM-INF:")]
    assert len(variants) == 2 and all(v["SUBTITLES"] == "subs" for v in variants)
    # The group comes before the first variant; the variants' URIs stay where they were.
    first_variant = next(i for i, x in enumerate(lines) if x.startswith("#EXT-X-STREAM-INF"))
    assert all(i < first_variant for i, x in enumerate(lines) if "TYPE=SUBTITLES" in x)
    assert lines[first_variant + 1] == "media_0.m3u8"

    one = manifests.hls_master_with_tracks(both, [GERMAN])
    assert one.count("TYPE=SUBTITLES") == 1 and "English" not in one
    assert manifests.hls_master_with_tracks(one, []) == master


def test_dash_gets_one_text_adaptation_set_per_track(packaged: Path) -> None:
    mpd = (packaged / "manifest.mpd").read_text()
    both = manifests.dash_with_tracks(mpd, [ENGLISH, GERMAN])
    period = ET.fromstring(both).find("d:Period", NS)
    assert period is not None
    sets = period.findall("d:AdaptationSet", NS)
    assert [s.get("contentType") for s in sets] == ["video", "audio", "text", "text"]
    assert len({s.get("id") for s in sets}) == 4
    text = sets[2:]
    assert [(s.get("lang"), s.findtext("d:Label", namespaces=NS)) for s in text] == [
        ("en", "English"), ("de", 'Deutsch "DE"')]
    assert [s.find("d:Role", NS).get("value") for s in text] == ["caption", "subtitle"]  # type: ignore[union-attr]
    assert [s.findtext("d:Representation/d:BaseURL", namespaces=NS) for s in text] == [
        "captions/c1.vtt", "captions/c2.vtt"]
    # The media sets are untouched.
    video = sets[0].findall("d:Representation", NS)
    assert [r.get("height") for r in video] == ["144", "180"]
    none = ET.fromstring(manifests.dash_with_tracks(both, []))
    assert len(none.findall("d:Period/d:AdaptationSet", NS)) == 2


def test_signed_query_reaches_every_uri(packaged: Path) -> None:
    query = "expires=1700000000&token=abc_-"
    master = manifests.hls_master_with_tracks((packaged / "master.m3u8").read_text(),
                                              [ENGLISH])
    for playlist in (master, (packaged / "media_0.m3u8").read_text()):
        signed = manifests.hls_with_query(playlist, query)
        uris = [x for x in signed.splitlines() if x and not x.startswith("#")]
        uris += [attributes(x)["URI"] for x in signed.splitlines() if 'URI="' in x]
        assert len(uris) >= 3
        assert all(u.endswith("?" + query) for u in uris), uris
    mpd = manifests.dash_with_tracks((packaged / "manifest.mpd").read_text(), [ENGLISH])
    root = ET.fromstring(manifests.dash_with_query(mpd, query))
    templates = root.findall(".//d:SegmentTemplate", NS)
    assert len(templates) == 3
    for template in templates:
        assert template.get("media", "").endswith(".m4s?" + query)
        assert template.get("initialization", "").endswith(".m4s?" + query)
    assert root.findtext(".//d:BaseURL", namespaces=NS) == "captions/c1.vtt?" + query


def test_webvtt_is_checked_and_normalised() -> None:
    assert manifests.check_webvtt("\ufeffWEBVTT\r\n\r\n00:01.000 --> 00:02.500\r\nHi\r\n") == (
        "WEBVTT\n\n00:01.000 --> 00:02.500\nHi\n")
    bad = {
        "1\n00:01.000 --> 00:02.000\nHi": "first line",
        "WEBVTT\n\n00:01 --> 00:02\nHi": "line 3",
        "WEBVTT\n\n00:03.000 --> 00:02.000\nHi": "ends before",
        "WEBVTT\n\nNOTE nothing": "no cues",
    }
    for content, message in bad.items():
        with pytest.raises(InvalidRequestError, match=message):
            manifests.check_webvtt(content)
    with pytest.raises(InvalidRequestError, match="language tag"):
        manifests.check_language("english!")


def test_chapters_track_cues_end_where_the_next_one_starts() -> None:
    vtt = manifests.chapters_webvtt([("Outro", 61.5), ("Intro", 0), ("A --> B", 3.25)], 75)
    assert manifests.check_webvtt(vtt) == vtt
    cues = [block.split("\n") for block in vtt.strip().split("\n\n")[1:]]
    assert [(c[1], c[2]) for c in cues] == [
        ("00:00:00.000 --> 00:00:03.250", "Intro"),
        ("00:00:03.250 --> 00:01:01.500", "A -> B"),
        ("00:01:01.500 --> 00:01:15.000", "Outro"),
    ]
