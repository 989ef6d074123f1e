"""The converter protocol: one family of media in, files in a scratch directory out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from convertly.models import ConvertedFile, FileSpec, SourceInfo


class Converter(Protocol):
    """Turns one source file into one output file.

    Contract:
    - `src` is a readable file inside `workdir`; the converter writes its output inside
      `workdir` (a per-task scratch directory the caller creates and deletes) and returns it.
    - It never touches the network, requests, storage or the job store.
    - `spec.format` is the target (for compress jobs the caller sets it to the source's own
      format). Failures raise `convertly.errors.ConvertlyError` subclasses, translated from the
      library's own exceptions with `raise ... from exc`; anything else is a bug.
    - `limits` carries the resource limits (max pixels, ...) the converter must enforce.
    """

    name: str

    def convert(
        self, src: Path, source: SourceInfo, spec: FileSpec, workdir: Path, limits: Limits
    ) -> ConvertedFile: ...


class Limits(Protocol):
    """The subset of settings converters read."""

    @property
    def max_pixels(self) -> int: ...
