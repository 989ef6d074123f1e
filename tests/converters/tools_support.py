"""Running a tool as the API does: raw options (text, as a form sends them) parsed against
its params, then its function on a real file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convertly.converters.base import no_progress
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.sniff import sniff_file
from convertly.transforms.parse import parse
from tests.converters.conftest import FakeLimits


def run_tool(tool: Tool, src: Path, workdir: Path, limits: FakeLimits | None = None,
             **raw: Any) -> ToolOutput:
    """Run `tool` on `src` with `raw` options (a Path value is passed as it is: a resolved
    FILE option)."""
    form = {k: v if isinstance(v, Path) else str(v) for k, v in raw.items()}
    options = parse(form, tool.params)
    return tool.run(src, sniff_file(src), options, workdir, limits or FakeLimits(), no_progress)
