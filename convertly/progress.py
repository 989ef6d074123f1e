"""Progress on stderr for the client commands: a bar redrawn in place on a terminal, plain
lines otherwise (logs and pipes get one line per step, never carriage returns)."""

from __future__ import annotations

import os
import shutil
import time
from typing import TextIO

REDRAW_EVERY = 0.1  # seconds between two redraws of a terminal bar
BAR_WIDTH = 24
MIN_BAR_WIDTH = 8  # a narrower terminal shortens the label instead


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


class Reporter:
    """Writes messages and progress bars to `stream`; `interactive` (default: the stream is a
    terminal) chooses redrawn bars over plain lines. `quiet` keeps progress off, not messages.
    Use it as a context manager so that an error leaves no half-drawn line behind."""

    def __init__(self, stream: TextIO, *, interactive: bool | None = None,
                 quiet: bool = False) -> None:
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self.quiet = quiet
        self._drawn = False  # a bar is on the current line

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever ended the command, its next line starts below the last bar.
        self.keep()

    def message(self, text: str) -> None:
        """A line of its own (below any bar, which is cleared first)."""
        self.clear()
        print(text, file=self.stream, flush=True)

    def bytes_bar(self, label: str, total: int) -> Bar:
        return Bar(self, label, total, unit="bytes")

    def files_bar(self, label: str, total: int, done: int = 0,
                  percent: float | None = None) -> Bar:
        """A bar of files, starting at `done` of them (`percent` when the server says)."""
        return Bar(self, label, total, unit="files", done=done, percent=percent)

    def width(self) -> int:
        """Columns a line may use without wrapping: the stream's terminal's (stdout may be a
        pipe while the bars go to a terminal), else COLUMNS, else 80."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        return (columns or shutil.get_terminal_size((80, 24)).columns) - 1

    def draw(self, text: str) -> None:
        """Redraw the current line of a terminal with `text`."""
        width = self.width()
        self.stream.write("\r" + text[:width].ljust(width))
        self.stream.flush()
        self._drawn = True

    def keep(self) -> None:
        """Leave the bar drawn last on screen and move below it."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def clear(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self.width() + "\r")
            self._drawn = False


class Bar:
    """One task's progress. Bytes: `update(done)`; files: `update(done, percent)` where
    percent may run ahead of whole files (the server reports partial progress)."""

    def __init__(self, reporter: Reporter, label: str, total: int, *, unit: str,
                 done: int = 0, percent: float | None = None) -> None:
        self.reporter = reporter
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.percent = 0.0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_line = ""
        self.update(done, percent)

    def update(self, done: int, percent: float | None = None) -> None:
        self.done = done
        if percent is None:
            percent = 100 * done / self.total if self.total else 100.0
        self.percent = max(0.0, min(100.0, percent))
        if self.reporter.quiet:
            return
        if self.reporter.interactive:
            now = time.monotonic()
            if now - self._last_draw >= REDRAW_EVERY or 0 < self.total <= done:
                self._last_draw = now
                self.reporter.draw(self.render(self.reporter.width()))
        elif self.unit == "files":
            # One plain line each time a file finishes.
            line = f"{self.label}: {self._amount()} ({self.percent:.0f}%)"
            if line != self._last_line and (done or not self._last_line):
                self._last_line = line
                self.reporter.message(line)

    def render(self, width: int) -> str:
        """The bar as one line of at most `width` columns. The counts always show: a narrow
        terminal gets a shorter bar, then a label shortened in its middle."""
        tail = f"] {self.percent:3.0f}% {self._amount()}"
        elapsed = time.monotonic() - self.started
        if self.unit == "bytes" and elapsed > 0.5 and self.done:
            tail += f" {human_bytes(self.done / elapsed)}/s"
        room = width - len(tail) - len(" [")
        bar_width = max(MIN_BAR_WIDTH, min(BAR_WIDTH, room - len(self.label)))
        label = _shorten(self.label, room - bar_width)
        filled = round(bar_width * self.percent / 100)
        return f"{label} [{'#' * filled}{'-' * (bar_width - filled)}{tail}"

    def close(self, summary: str | None = None) -> None:
        """End the bar: `summary` replaces it when given; else a terminal keeps the final bar
        and plain output gets a summary line for bytes (files had theirs already)."""
        if self.reporter.quiet:
            return
        if summary is None and self.unit == "bytes" and not self.reporter.interactive:
            elapsed = time.monotonic() - self.started
            summary = f"{self.label}: {human_bytes(self.done)} in {elapsed:.1f} s"
        if summary is not None:
            self.reporter.message(summary)
        elif self.reporter.interactive:
            # The finished bar stays on screen as the record of this step.
            self.reporter.draw(self.render(self.reporter.width()))
            self.reporter.keep()

    def _amount(self) -> str:
        if self.unit == "bytes":
            return f"{human_bytes(self.done)}/{human_bytes(self.total)}"
        return f"{self.done}/{self.total} files"


def _shorten(text: str, width: int) -> str:
    """`text` in at most `width` columns (at least 3), its middle replaced by "..."."""
    if len(text) <= width:
        return text
    keep = max(width - 3, 0)
    return text[:(keep + 1) // 2] + "..." + text[len(text) - keep // 2:]
