"""Progress bars keep their counts visible whatever the terminal's width."""

from __future__ import annotations

import io

import pytest

from convertly.progress import BAR_WIDTH, Reporter

JOB = "Job 5e1cc342-010a-4ef9-8875-03a9e81dadb2"


def _bar(label: str, done: int, total: int) -> str:
    reporter = Reporter(io.StringIO(), interactive=False, quiet=True)
    bar = reporter.files_bar(label, total)
    bar.update(done)
    return bar.render


@pytest.mark.parametrize("width", [200, 79, 60, 40, 20])
def test_a_bar_fits_its_width_and_keeps_the_counts(width: int) -> None:
    line = _bar(JOB, 3, 4)(width)
    tail = "]  75% 3/4 files"
    # The narrowest line: "..." for the label and the shortest bar.
    assert len(line) <= max(width, len("... [") + 8 + len(tail))
    assert line.endswith(tail)


def test_a_wide_terminal_gets_the_full_bar_and_label() -> None:
    assert _bar(JOB, 4, 4)(200) == f"{JOB} [{'#' * BAR_WIDTH}] 100% 4/4 files"


def test_the_bar_narrows_before_the_label_is_shortened() -> None:
    line = _bar(JOB, 2, 4)(79)
    assert line.startswith(JOB + " [")
    assert len(line) == 79
    line = _bar(JOB, 2, 4)(50)
    assert "..." in line and line.startswith("Job 5e1") and len(line) == 50
    assert "[####----]" in line


def test_a_files_bar_starts_where_the_job_is() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream, interactive=False)
    bar = reporter.files_bar("Job j", 3, 3, 100.0)
    bar.update(3, 100.0)
    assert stream.getvalue() == "Job j: 3/3 files (100%)\n"
