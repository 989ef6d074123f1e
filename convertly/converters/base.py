"""The converter protocol: one family of media in, files in a scratch directory out."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from convertly.errors import UnsupportedConversionError
from convertly.models import ConvertedFile, FileSpec, OutputFormat, SourceInfo
from convertly.sniff import Kind

# Reports a file's progress as a fraction in [0, 1]; cheap to call often (callers throttle).
ProgressFn = Callable[[float], None]


def no_progress(_fraction: float) -> None:
    """The progress callback used when nobody listens."""


class Queue(StrEnum):
    """The worker queues conversions go to, by what their workers must have installed.

    The executor maps each to its configured name (CONVERTLY_IMAGE_QUEUE, ...); jobs store
    these values per file.
    """

    IMAGE = "image"  # libvips, Pillow, vtracer, PDFium, Ghostscript
    MEDIA = "media"  # ffmpeg
    ARCHIVE = "archive"  # the archive libraries, unar and rar (and finishing jobs)


class Converter(Protocol):
    """Turns one source file into one output file.

    Contract:
    - `src` is a readable file inside `workdir`; the converter writes its output inside
      `workdir` (a per-task scratch directory the caller creates and deletes) and returns it.
    - It never touches the network, requests, storage or the job store.
    - `spec.format` is the target, settled once by the plan (`Registry.plan`: a compress keeps
      the source's own format); converters read it through `target_of` and never decide it
      again, though each refuses a pair it does not handle.
    - Failures raise `convertly.errors.ConvertlyError` subclasses, translated from the
      library's own exceptions with `raise ... from exc`; anything else is a bug.
    - `limits` carries the resource limits (max pixels, ...) the converter must enforce.
    - Long conversions call `progress` with the fraction done; short ones may ignore it.
    - External programs run only through `convertly.converters.process.run`.
    - `queue` names the worker queue for each pair it is registered for.
    """

    name: str

    def queue(self, source: Kind, target: OutputFormat) -> Queue:
        """The queue whose workers convert `source` to `target`."""
        ...

    def convert(
        self,
        src: Path,
        source: SourceInfo,
        spec: FileSpec,
        workdir: Path,
        limits: Limits,
        progress: ProgressFn = no_progress,
    ) -> ConvertedFile: ...


def target_of(spec: FileSpec) -> OutputFormat:
    """The target format the plan settled in `spec` (`convertly.converters.registry.settle`)."""
    if spec.format is None:
        raise UnsupportedConversionError("No target format given.")
    return spec.format


class Limits(Protocol):
    """The subset of settings converters read (`convertly.settings.Settings` provides all)."""

    @property
    def max_pixels(self) -> int: ...

    @property
    def max_pdf_pages(self) -> int: ...

    @property
    def pdf_dpi(self) -> int: ...

    @property
    def max_media_seconds(self) -> int: ...

    @property
    def trace_timeout(self) -> int: ...

    @property
    def max_archive_entries(self) -> int: ...

    @property
    def max_extracted_bytes(self) -> int: ...

    @property
    def max_expansion_ratio(self) -> int: ...

    @property
    def rar_command(self) -> str: ...

    @property
    def background_model(self) -> str: ...
