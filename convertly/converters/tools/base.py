"""What a media tool is: its name, the sources it takes, its worker queue, its parameters,
and a function from one source file to output files and facts.

A tool keeps the converter contract (`convertly.converters.base.Converter`): it reads `src`
inside `workdir`, writes its outputs inside `workdir`, never touches the network, requests,
storage or the job store, runs external programs only through
`convertly.converters.process.run`, raises `convertly.errors.ConvertlyError` subclasses, and
enforces `limits`. Its `options` are already validated against its `params` (canonical
names, typed values, defaults filled in); a `ParamKind.FILE` option arrives as a local
`Path` inside `workdir`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from convertly.converters.base import Limits, ProgressFn
from convertly.models import SourceInfo
from convertly.sniff import Kind
from convertly.transforms.table import Param


@dataclass(frozen=True)
class ToolOutput:
    """A tool's result: `files` written inside the workdir, in the order the answer lists
    them (none for `inspect`); `facts` JSON-ready values returned beside them (a probe, a
    storyboard's grid)."""

    files: list[Path]
    facts: dict[str, Any] = field(default_factory=dict)


class ToolFn(Protocol):
    def __call__(
        self,
        src: Path,
        source: SourceInfo,
        options: Mapping[str, Any],
        workdir: Path,
        limits: Limits,
        progress: ProgressFn,
    ) -> ToolOutput: ...


@dataclass(frozen=True)
class Tool:
    """One media tool. `name` is its route's (`POST /api/media/{name}`, e.g. "poster-frame");
    `sources` the kinds it takes (others get 415 naming the tool); `params` every option it
    reads. Its work runs on the queue of its source's kind (`Registry.queue_for(kind, None)`:
    images and PDFs on image workers, audio and video on media workers)."""

    name: str
    summary: str
    sources: frozenset[Kind]
    params: tuple[Param, ...]
    run: ToolFn
