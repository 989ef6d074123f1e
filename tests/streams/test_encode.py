"""Encoding renditions and packaging them, with real ffmpeg: every rendition at its height
and near its bitrate, segments on the same boundaries, one set of CMAF segments named by
both the HLS playlists and the DASH manifest."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from convertly.streams import encode, layout
from convertly.streams.model import Clip, ClipMode, Rendition
from tests.media import real_seconds
from tests.streams.source import ffprobe_streams, source_video


def test_renditions_package_into_hls_and_dash(tmp_path: Path) -> None:
    src = source_video(tmp_path / "src.mp4", seconds=4)
    ladder = [Rendition("144p", 0, 144, 150, 48), Rendition("180p", 1, 180, 400, 64)]
    outs = []
    for r in ladder:
        seen: list[float] = []
        out = tmp_path / f"{r.id}.mp4"
        encode.encode_rendition(src, out, r, clip=None, segment_duration=2,
                                with_audio=r.index == 1, duration=4.0, timeout=60,
                                progress=seen.append)
        outs.append(out)
        assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    for r, out in zip(ladder, outs, strict=True):
        video = next(s for s in ffprobe_streams(out) if s["codec_type"] == "video")
        assert (int(video["height"]), video["codec_name"]) == (r.height, "h264")
        kbps = out.stat().st_size * 8 / 4.0 / 1000
        assert kbps < r.bitrate * 1.5 + (64 if r.index == 1 else 0)

    play = tmp_path / "play"
    play.mkdir()
    encode.package(outs, play, audio_from=1, segment_duration=2, hls=True, timeout=60)
    master = (play / layout.MASTER_PLAYLIST).read_text()
    variants = re.findall(r"RESOLUTION=(\d+)x(\d+)", master)
    assert [int(h) for _, h in variants] == [144, 180]
    named: set[str] = set()
    for index in range(3):
        playlist = (play / layout.media_playlist(index)).read_text()
        assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
        named |= {line for line in playlist.splitlines() if line.endswith(".m4s")}
        named |= set(re.findall(r'URI="([^"]+)"', playlist))
    on_disk = {p.name for p in play.glob("*.m4s")}
    assert named == on_disk
    assert encode.segment_count(play, 0) == 2
    mpd = ET.parse(play / layout.DASH_MANIFEST).getroot()
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    heights = [int(r.get("height", 0)) for r in mpd.iterfind(".//d:Representation", ns)
               if r.get("height")]
    assert heights == [144, 180]


def test_a_clip_covers_its_part_of_the_source(tmp_path: Path) -> None:
    src = source_video(tmp_path / "src.mp4", seconds=4, audio=False)
    out = tmp_path / "clip.mp4"
    encode.encode_rendition(src, out, Rendition("144p", 0, 144, 150),
                            clip=Clip(start=1.0, end=2.5, mode=ClipMode.ACCURATE),
                            segment_duration=2, with_audio=False, duration=1.5, timeout=60,
                            progress=lambda _f: None)
    assert abs(real_seconds(out) - 1.5) <= 0.15  # to a few frames
