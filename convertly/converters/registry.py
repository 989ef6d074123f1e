"""(source kind, target format) -> converter, and the worker queue its work goes to.

`Registry.plan` settles a request's target format once (`settle`), for every converter;
built-in converters register like extensions would; a pair taken twice is an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from convertly.converters.base import Converter, Queue, target_of
from convertly.errors import UnsupportedConversionError
from convertly.models import FileSpec, JobType, OutputFormat
from convertly.sniff import Kind

# The format that keeps each kind (what compress writes; BMP has none), and the kind each
# format's files are (a tgz is gzip data).
_FORMAT_OF = {k: OutputFormat(k.own_format) for k in Kind if k.own_format in set(OutputFormat)}
_KIND_OF = {**{f: k for k, f in _FORMAT_OF.items()}, OutputFormat.TGZ: Kind.GZIP}


@dataclass
class Registry:
    _table: dict[tuple[Kind, OutputFormat], Converter] = field(default_factory=dict)
    # Targets this server cannot produce as configured (RAR without the `rar` program): left
    # out of the listings; asked for, their converter explains what is missing.
    unavailable: frozenset[OutputFormat] = frozenset()

    def register(
        self, converter: Converter, sources: Iterable[Kind], targets: Iterable[OutputFormat]
    ) -> None:
        """Register `converter` for every (source, target) pair; a pair taken twice is an error."""
        targets = list(targets)
        for source in sources:
            for target in targets:
                key = (source, target)
                if key in self._table:
                    raise ValueError(
                        f"{source}->{target} is already handled by {self._table[key].name}"
                    )
                self._table[key] = converter

    def plan(self, source: Kind, spec: FileSpec) -> tuple[Converter, FileSpec]:
        """The converter for a `source` file and `spec`, and `spec` with its target settled
        (`settle`); raises UnsupportedConversionError when no converter takes the pair."""
        spec = settle(source, spec)
        return self.find(source, target_of(spec)), spec

    def find(self, source: Kind, target: OutputFormat) -> Converter:
        try:
            return self._table[(source, target)]
        except KeyError:
            raise UnsupportedConversionError(
                f"Converting {source.label} to {target.value} is not supported. "
                f"Supported targets for {source.label}: "
                f"{', '.join(t.value for t in self.targets_for(source)) or 'none'}."
            ) from None

    def queue_for(self, source: Kind | None, target: OutputFormat | None) -> Queue:
        """The queue a `source` file converted to `target` goes to: the one its converter
        declares.

        A pair no converter takes, or no target at all, goes by its source alone: to the
        queue of the converter that keeps the source's own format (as compress would), so
        that it fails at once on a worker for that source instead of waiting for a worker of
        the target's queue that may not run. Content no kind matches (`source` None) goes
        where a file of the target's own kind would. What is left goes to the image queue,
        whose converter reports the precise error.
        """
        if source is None:
            source = _KIND_OF.get(target) if target is not None else None
        if source is None:
            return Queue.IMAGE
        if target is None or (source, target) not in self._table:
            target = _FORMAT_OF.get(source)
        if target is None or (source, target) not in self._table:
            return Queue.IMAGE
        return self._table[(source, target)].queue(source, target)

    def supports(self, source: Kind, target: str) -> bool:
        """Whether `source` converts to the format named `target`."""
        try:
            return (source, OutputFormat(target)) in self._table
        except ValueError:  # not a format at all
            return False

    def targets_for(self, source: Kind) -> list[OutputFormat]:
        return [t for (s, t) in self._table if s == source and t not in self.unavailable]

    def matrix(self) -> dict[Kind, list[OutputFormat]]:
        out: dict[Kind, list[OutputFormat]] = {}
        for s, t in self._table:
            if t not in self.unavailable:
                out.setdefault(s, []).append(t)
        return out


def settle(source: Kind, spec: FileSpec) -> FileSpec:
    """`spec` with the target format every converter then takes as given: a compress keeps
    the source's own format, a convert must name one. The one place this is decided."""
    if spec.job_type is JobType.COMPRESS:
        own = _FORMAT_OF.get(source)
        if own is None:
            raise UnsupportedConversionError(
                f"{source.label} files cannot be compressed in place; convert them to another "
                "format instead (for example png)."
            )
        spec = replace(spec, format=own)
    target_of(spec)
    return spec

