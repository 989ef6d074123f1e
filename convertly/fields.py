"""The request-field table: every multipart field of POST /api/convert, /api/compress and
/api/jobs, declared once with its type, per-file array twin, aliases, default, allowed values,
routes and help.

`convertly/api/forms.py` parses requests from it, `convertly/api/openapi.py` builds the
request schemas from it, and the tests hold the README's field tables to it. It imports only
the standard library and `convertly.models` / `convertly.errors`, so a client can read it
without the server's dependencies.

A per-file field is sent either once (its singular name or an alias: the value applies to
every file) or as its array twin, a JSON array with one entry per file (a null entry takes
the singular value, else the default).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from convertly.errors import InvalidFieldError
from convertly.models import (
    DEFAULT_COMPRESSION,
    FORMAT_ALIASES,
    CompressMode,
    JobType,
    OutputFormat,
    ResizePreset,
)

ARCHIVE_FORMATS = ("zip", "tar", "tgz", "7z")  # what createArchive can bundle into
PRIORITIES = ("low", "normal", "high")
CALLBACK_SECRET_MIN, CALLBACK_SECRET_MAX = 16, 256


class Route(StrEnum):
    """The routes whose multipart fields the table describes."""

    CONVERT = "/api/convert"
    COMPRESS = "/api/compress"
    JOBS = "/api/jobs"


class Kind(StrEnum):
    """How a field's value is read."""

    FILES = "files"  # file parts
    TEXT = "text"  # free text, checked where it is used (URLs, secrets)
    INTEGER = "integer"  # a whole number within [low, high]
    BOOLEAN = "boolean"  # true/false (also 1/0, yes/no, on/off)
    CHOICE = "choice"  # one of `choices`, case-insensitive


Parse = Callable[[Any, str, "int | None"], Any]


# --- value parsers: (value, field name, file index or None) -> value ---------------------


def parse_format(value: Any, name: str, index: int | None) -> OutputFormat:
    text = str(value).strip().lower().lstrip(".")
    text = FORMAT_ALIASES.get(text, text)
    try:
        return OutputFormat(text)
    except ValueError:
        raise InvalidFieldError(
            name, f"unknown format {value!r}; use one of "
            f"{', '.join(f.value for f in OutputFormat)}.", file_index=index,
        ) from None


def parse_preset(value: Any, name: str, index: int | None) -> ResizePreset:
    try:
        return ResizePreset(str(value).strip().lower())
    except ValueError:
        raise InvalidFieldError(
            name, f"unknown resize preset {value!r}; use one of "
            f"{', '.join(p.value for p in ResizePreset)}.", file_index=index,
        ) from None


def parse_int(value: Any, name: str, index: int | None, low: int, high: int, what: str) -> int:
    shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
    if isinstance(value, bool):
        raise InvalidFieldError(name, f"must be {what}, got {shown}.", file_index=index)
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) else value
    except (ValueError, OverflowError):
        raise InvalidFieldError(name, f"must be {what}, got {shown}.",
                                file_index=index) from None
    # NaN and infinities (JSON's NaN and Infinity, "1e400") have no integer value; an integer
    # beyond a float's range is out of every range we accept.
    if isinstance(number, float) and not math.isfinite(number):
        number = low - 1
    if number != int(number) or not low <= number <= high:
        raise InvalidFieldError(name, f"must be {what}, got {shown}.", file_index=index)
    return int(number)


def parse_bool(value: Any, name: str, index: int | None) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off"}:
        return False
    raise InvalidFieldError(name, f"must be true or false, got {value!r}.", file_index=index)


def parse_mode(value: Any, name: str, index: int | None) -> CompressMode:
    try:
        return CompressMode(str(value).strip().lower())
    except ValueError:
        raise InvalidFieldError(name, f"unknown mode {value!r}; use quality or target-size.",
                                file_index=index) from None


def parse_job_type(value: Any, name: str, index: int | None) -> JobType:
    text = str(value).lower()
    try:
        job_type = JobType(text)
        if job_type is JobType.TRANSFER:  # made by POST /api/transfer only
            raise ValueError(text)
        return job_type
    except ValueError:
        raise InvalidFieldError(name, f"unknown job type {text!r}; use convert or "
                                "compress.") from None


def parse_archive_format(value: Any, name: str, index: int | None) -> str:
    text = str(value).lower()
    if text not in ARCHIVE_FORMATS:
        raise InvalidFieldError(name, f"unknown archive format {text!r}; use one of "
                                f"{', '.join(ARCHIVE_FORMATS)}.")
    return text


def parse_priority(value: Any, name: str, index: int | None) -> str:
    text = str(value).strip().lower()
    if text not in PRIORITIES:
        raise InvalidFieldError(name, f"unknown priority {value!r}; use "
                                f"{', '.join(PRIORITIES)}.")
    return text


def parse_text(value: Any, name: str, index: int | None) -> str:
    return str(value)


# --- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One request field. `array` is its per-file twin (a JSON array, one entry per file);
    `aliases` are other singular names read in its place, first sent wins, name first;
    `low`/`high` bound an integer (or a text's length), `choices` a choice. `default` is
    what an absent field means (None: nothing, or required when `required`)."""

    name: str
    kind: Kind
    routes: frozenset[Route]
    help: str
    array: str | None = None
    aliases: tuple[str, ...] = ()
    default: str | int | bool | None = None
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    what: str = ""  # for an integer, the phrase its error message uses
    uri: bool = False  # a URL the schema marks as such
    required: bool = False
    parser: Parse | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the field is read under: itself, its aliases, its array."""
        return (self.name, *self.aliases, *((self.array,) if self.array else ()))

    def singular(self, job_type: JobType) -> tuple[str, ...]:
        """The singular names in the order a `job_type` request reads them: compress calls
        `compression` `quality`, so there `quality` wins when both are sent."""
        if job_type is JobType.COMPRESS and self.name == "compression":
            return (*self.aliases, self.name)
        return (self.name, *self.aliases)

    def parse(self, value: Any, name: str, index: int | None) -> Any:
        """The field's value from one raw value sent under `name` (for file `index`)."""
        if self.parser is not None:
            return self.parser(value, name, index)
        if self.kind is Kind.INTEGER:
            assert self.low is not None and self.high is not None
            return parse_int(value, name, index, self.low, self.high, self.what)
        if self.kind is Kind.BOOLEAN:
            return parse_bool(value, name, index)
        return parse_text(value, name, index)


ALL = frozenset(Route)
CONVERTING = frozenset({Route.CONVERT, Route.JOBS})
JOBS = frozenset({Route.JOBS})

FIELDS: tuple[Field, ...] = (
    Field("files", Kind.FILES, ALL, "One or more files (`file`, `files[]` and `files[0]`, "
          "`files[1]`, ... are accepted too).",
          aliases=("file",), required=True),
    Field("sourceUrl", Kind.TEXT, ALL, "An http(s) URL the server downloads as the one file, "
          "in place of `files` (public addresses only, up to 5 redirects)."),
    Field("format", Kind.CHOICE, CONVERTING, "The output format (jpeg, tif, heic and tar.gz "
          "are accepted for jpg, tiff, heif and tgz).", array="formats", required=True,
          choices=tuple(f.value for f in OutputFormat), parser=parse_format),
    Field("compression", Kind.INTEGER, ALL, "The encoder's quality, 1-100 "
          "(`appliedQuality`); `quality` is the same field.", array="compressions",
          aliases=("quality",), default=DEFAULT_COMPRESSION, low=1, high=100,
          what="an integer from 1 to 100"),
    Field("resize", Kind.CHOICE, ALL, "A resize preset (compress keeps the size and refuses "
          "any but original).", array="resizes", default=ResizePreset.ORIGINAL.value,
          choices=tuple(p.value for p in ResizePreset), parser=parse_preset),
    Field("resizeWidth", Kind.INTEGER, ALL, "Pixels, for the width and square presets.",
          array="resizeWidths", low=1, high=100_000,
          what="a whole number of pixels from 1 to 100000"),
    Field("resizeHeight", Kind.INTEGER, ALL, "Pixels, for the height preset.",
          array="resizeHeights", low=1, high=100_000,
          what="a whole number of pixels from 1 to 100000"),
    Field("autoOrient", Kind.BOOLEAN, ALL, "Apply the EXIF orientation.",
          array="autoOrients", default=True),
    Field("mono", Kind.BOOLEAN, ALL, "Monochrome raster-to-SVG tracing (with the svg "
          "format).", array="monos", default=False),
    Field("page", Kind.INTEGER, ALL, "Which page of a PDF becomes the image (1 for the "
          "first).", array="pages", default=1, low=1, high=1_000_000,
          what="a page number, 1 for the first page"),
    Field("mode", Kind.CHOICE, ALL, "How compress picks the quality: quality, or "
          "target-size (at or under targetBytes).", array="modes",
          default=CompressMode.QUALITY.value, choices=tuple(m.value for m in CompressMode),
          parser=parse_mode),
    Field("targetBytes", Kind.INTEGER, ALL, "The size to land at or under with "
          "mode=target-size.", array="targetByteValues", aliases=("targetByteValue",),
          low=1, high=2**50, what="a positive number of bytes"),
    Field("lossless", Kind.BOOLEAN, ALL, "Compress without loss (PNG, lossless WebP; JPEG "
          "is only optimised).", array="losslessValues", aliases=("losslessValue",),
          default=False),
    Field("stripMetadata", Kind.BOOLEAN, ALL, "Drop EXIF, GPS, XMP and IPTC (the ICC "
          "profile stays).", array="stripMetadataValues", aliases=("stripMetadataValue",),
          default=False),
    Field("saveToStorage", Kind.BOOLEAN, ALL, "Keep uploads and outputs in storage (a job "
          "keeps its outputs until it expires, CONVERTLY_JOB_RETENTION; with this, for good).",
          default=False),
    Field("jobType", Kind.CHOICE, JOBS, "What the job does to every file.",
          default=JobType.CONVERT.value,
          choices=tuple(t.value for t in JobType if t is not JobType.TRANSFER),
          parser=parse_job_type),
    Field("createArchive", Kind.BOOLEAN, JOBS, "Also bundle the outputs into one archive.",
          default=False),
    Field("archiveFormat", Kind.CHOICE, JOBS, "The archive's format.", default="zip",
          choices=ARCHIVE_FORMATS, parser=parse_archive_format),
    Field("priority", Kind.CHOICE, JOBS, "high: every file goes ahead of other jobs' files; "
          "low: after all other work. With normal, a job's first files go ahead of the rest "
          "of larger jobs queued before it.", default="normal", choices=PRIORITIES,
          parser=parse_priority),
    Field("callbackUrl", Kind.TEXT, JOBS, "This job's events are POSTed here (public http or "
          "https URL).", uri=True),
    Field("callbackSecret", Kind.TEXT, JOBS, "Signs the callback's events; required with "
          "callbackUrl.", low=CALLBACK_SECRET_MIN, high=CALLBACK_SECRET_MAX),
)

BY_NAME = {f.name: f for f in FIELDS}


def fields_for(route: Route) -> tuple[Field, ...]:
    """The fields `route` takes, in table order."""
    return tuple(f for f in FIELDS if route in f.routes)


def names_for(route: Route) -> frozenset[str]:
    """Every name `route` reads: fields, aliases and arrays."""
    return frozenset(n for f in fields_for(route) for n in f.names)
