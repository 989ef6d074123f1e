"""The README's error table lists every code the service answers with, and nothing else: the
codes of the error classes (`convertly/errors.py`), the ones the HTTP layer writes itself
(`convertly/api/errors.py`, the connection layer), and the codes a job's file carries."""

from __future__ import annotations

import re
from pathlib import Path

from convertly import errors
from convertly.api.errors import STATUS, status_for

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CODE = re.compile(r"`([A-Z][A-Z0-9_]+)`")
# Codes written as string literals where a body is built: {"code": "X"}, error_response(429,
# "X", ...), a job file failed with "X" or error_code="X", a constant NAME = "X" of one.
_LITERALS = [
    re.compile(r'"code":\s*"([A-Z][A-Z0-9_]+)"'),
    re.compile(r'error_response\(\s*\d{3},\s*"([A-Z][A-Z0-9_]+)"'),
    re.compile(r'fail_file\([^)]*?"([A-Z][A-Z0-9_]+)"\)', re.S),
    re.compile(r'error_code="([A-Z][A-Z0-9_]+)"'),
    re.compile(r'^[A-Z_]*(?:CODE|MISSING)\s*=\s*"([A-Z][A-Z0-9_]+)"', re.M),
]
_WRITERS = ["convertly/api/errors.py", "convertly/connections.py", "convertly/pipeline.py",
            "convertly/models.py", "convertly/executors/inprocess.py", "workers/tasks.py",
            "convertly/transfers.py"]


def _table() -> dict[str, str]:
    """code -> the status column of its row, from the table under `### Errors`."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n### Errors")
    end = re.compile(r"\n##+ ").search(text, start + 1)
    rows = [line for line in text[start:end.start() if end else None].splitlines()
            if line.startswith("|")][2:]
    table: dict[str, str] = {}
    for row in rows:
        status, codes = (cell.strip() for cell in row.split("|")[1:3])
        for code in CODE.findall(codes):
            assert code not in table, f"{code} is listed twice"
            table[code] = status
    return table


def _written_codes() -> set[str]:
    found: set[str] = set()
    for name in _WRITERS:
        source = (ROOT / name).read_text(encoding="utf-8")
        for pattern in _LITERALS:
            found |= set(pattern.findall(source))
    return found


def test_the_table_lists_every_code_and_only_those() -> None:
    listed = set(_table())
    known = set(errors.ERROR_CLASSES) | _written_codes()
    assert known - listed == set(), "codes missing from the README's error table"
    assert listed - known == set(), "the README's error table lists codes nothing answers"


def test_each_error_class_is_listed_under_its_status() -> None:
    table = _table()
    for code, cls in errors.ERROR_CLASSES.items():
        status = status_for(cls.__new__(cls))
        assert table[code] == str(status), (code, table[code], status)
    assert set(STATUS) <= set(errors.ERROR_CLASSES.values())


def test_the_writers_are_found() -> None:
    """The literal scan finds the codes written outside the error classes."""
    assert {"METHOD_NOT_ALLOWED", "HEADERS_TOO_LARGE", "TOO_MANY_CONNECTIONS",
            "WORKER_CRASHED", "TIME_LIMIT", "SOURCE_MISSING", "OUTPUT_MISSING",
            "CANCELLED"} <= _written_codes()
