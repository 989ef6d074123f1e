"""The README's transform-parameter table lists exactly the image rows of the table."""

from __future__ import annotations

import re
from pathlib import Path

from convertly.transforms import table

README = Path(__file__).resolve().parent.parent.parent / "README.md"
NAME = re.compile(r"`([A-Za-z-]+)`")


def test_the_readme_table_lists_every_image_parameter_with_its_aliases() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n### Transform parameters")
    end = text.index("\n### ", start + 1)
    rows = [line for line in text[start:end].splitlines() if line.startswith("| `")]
    listed = {NAME.findall(row.split("|")[1])[0]: tuple(NAME.findall(row.split("|")[2]))
              for row in rows}
    assert listed == {p.name: p.aliases for p in table.IMAGE}
