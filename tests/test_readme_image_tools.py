"""The README's table of the image and document tools names every option each tool takes
(its parameters' canonical names), and lists exactly those tools."""

from __future__ import annotations

import re
from pathlib import Path

from convertly.converters.tools.background import REMOVE_BACKGROUND
from convertly.converters.tools.documents import IMAGE_TO_PDF, PDF_PREVIEW
from convertly.converters.tools.overlay import WATERMARK

README = Path(__file__).resolve().parent.parent / "README.md"
TOOLS = (PDF_PREVIEW, IMAGE_TO_PDF, WATERMARK, REMOVE_BACKGROUND)
NAME = re.compile(r"`([A-Za-z-]+)`")


def test_the_readme_names_every_option_of_the_image_and_document_tools() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n### Image and document tools")
    end = text.index("\n### ", start + 1)
    rows = {NAME.findall(line.split("|")[1])[0]: set(NAME.findall(line.split("|")[3]))
            for line in text[start:end].splitlines() if line.startswith("| `")}
    assert set(rows) == {tool.name for tool in TOOLS}
    for tool in TOOLS:
        missing = {p.name for p in tool.params} - rows[tool.name]
        assert not missing, f"{tool.name}: {sorted(missing)} not in the README"
