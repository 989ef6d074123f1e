"""Tool name -> `Tool`: every media tool `POST /api/media/{tool}` and the job pipeline run.

Built-in tools register exactly as an extension's would (`default_tools`); a name taken twice
is an error. A tool's module only declares its `Tool`; adding it to `default_tools` is what
makes the route, the job type, `/openapi.json` and the CLI know it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from convertly.converters.tools import (
    background,
    documents,
    image,
    inspect,
    media,
    metadata,
    overlay,
)
from convertly.converters.tools.base import Tool
from convertly.errors import NotFoundError


@dataclass
class ToolRegistry:
    _tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, tool: Tool) -> None:
        """Add `tool`; a name registered twice is an error."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        """The tool called `name`; NotFoundError (404) naming the known tools otherwise."""
        try:
            return self._tools[name]
        except KeyError:
            raise NotFoundError(
                f"No media tool {name!r}. Tools: {', '.join(sorted(self._tools))}."
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        """Every tool, by name."""
        return iter(sorted(self._tools.values(), key=lambda t: t.name))

    def names(self) -> list[str]:
        return sorted(self._tools)


def default_tools() -> ToolRegistry:
    """The registry with every built-in tool."""
    tools = ToolRegistry()
    for family in (
        metadata.TOOLS,  # strip-metadata
        image.TOOLS,  # thumbnail, transform
        media.TOOLS,  # poster-frame, extract-audio, trim, gif, storyboard
        (inspect.INSPECT,),
        (documents.PDF_PREVIEW, documents.IMAGE_TO_PDF),
        (overlay.WATERMARK,),
        (background.REMOVE_BACKGROUND,),
    ):
        for tool in family:
            tools.register(tool)
    return tools
