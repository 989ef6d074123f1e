"""The README's request-field tables list exactly the fields of `convertly/fields.py`."""

from __future__ import annotations

import re
from pathlib import Path

from convertly import fields
from convertly.fields import Route

README = Path(__file__).resolve().parent.parent / "README.md"
NAME = re.compile(r"`([A-Za-z]+)`")


def _section(heading: str) -> str:
    """The text of the README's `### <heading>...` section, up to the next heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n### {heading}")
    end = re.compile(r"\n##+ ").search(text, start + 1)
    return text[start:end.start() if end else len(text)]


def _table_names(section: str) -> set[str]:
    """The field names in the first two columns (field, per-file array) of the section's
    table rows."""
    names: set[str] = set()
    rows = [line for line in section.splitlines() if line.startswith("|")]
    for row in rows[2:]:  # after the header and its rule
        field, array = row.split("|")[1:3]
        names |= set(NAME.findall(field)) | set(NAME.findall(array))
    return names


def test_convert_table_lists_the_convert_fields() -> None:
    assert _table_names(_section("Convert")) == fields.names_for(Route.CONVERT)


def test_jobs_table_lists_what_jobs_add_to_convert() -> None:
    jobs_only = fields.names_for(Route.JOBS) - fields.names_for(Route.CONVERT)
    assert _table_names(_section("Jobs")) == jobs_only
    assert fields.names_for(Route.CONVERT) <= fields.names_for(Route.JOBS)


def test_compress_takes_the_convert_fields_but_format() -> None:
    """The README says so in words; the table has to agree."""
    assert "convert fields except `format`/`formats`" in _section("Compress")
    format_names = set(fields.BY_NAME["format"].names)
    assert fields.names_for(Route.COMPRESS) == fields.names_for(Route.CONVERT) - format_names
