"""Posters and thumbnail candidates grabbed by ffmpeg from packaged segments."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from convertly.errors import InvalidRequestError
from convertly.streams import frames


def test_frames_come_from_an_init_section_and_a_segment(packaged: Path,
                                                        tmp_path: Path) -> None:
    clip = tmp_path / "segment.mp4"
    clip.write_bytes((packaged / "init-0.m4s").read_bytes()
                     + (packaged / "seg-0-00002.m4s").read_bytes())
    times = frames.candidate_times(1.0, count=3)
    assert times == [pytest.approx(1 / 6, abs=1e-3), 0.5, pytest.approx(5 / 6, abs=1e-3)]
    # The last time lies past the segment's end: the last frame is taken instead.
    out = frames.grab_frames(clip, [*times, 5.0], tmp_path, duration=1.0, max_height=90)
    assert len(out) == 4
    for path in out:
        with Image.open(path) as image:
            assert (image.format, image.size) == ("JPEG", (160, 90))
    with pytest.raises(InvalidRequestError, match="inside the video"):
        frames.check_time(3.0, 3.0)
    with pytest.raises(InvalidRequestError):
        frames.check_time(-1, None)
