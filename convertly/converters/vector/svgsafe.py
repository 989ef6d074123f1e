"""SVG made safe to render: `safe_svg` re-serialises a document so that librsvg reads
nothing outside it. Entity declarations and internal DTD subsets (XXE, "billion laughs")
are refused; hrefs other than `#fragment` and `data:`, XInclude, CSS `url(...)` and `@import`
and stylesheet instructions are removed. Comments, processing instructions, the DOCTYPE and
idle whitespace go too, which is also what minifying an SVG means.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from convertly.errors import CorruptFileError


class _Refused(Exception):
    """The document declares entities or an internal DTD subset."""


_TEXT_ELEMENTS = frozenset({"text", "tspan", "textPath", "title", "desc", "style", "script"})
_EXTERNAL_URL = re.compile(r"url\(\s*(?!['\"]?\s*(?:#|data:))[^)]*\)", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import\b[^;]*;?", re.IGNORECASE)


@dataclass(frozen=True)
class SafeSvg:
    """What `safe_svg` made: the rewritten document and how many outside references it cut."""

    data: bytes
    removed_references: int = 0


def safe_svg(data: bytes, *, external: bool, metadata: bool = True) -> SafeSvg:
    """Re-serialise an SVG without comments, processing instructions, DOCTYPE or idle space.

    Entity declarations and internal DTD subsets (XXE, "billion laughs") are refused with
    CorruptFileError. With `external` False every reference outside the document is removed:
    hrefs other than `#fragment` and `data:` (images, `use`, fonts), XInclude elements, CSS
    `url(...)` and `@import`. With `metadata` False `<metadata>` elements go too.
    """
    rewriter = _SvgRewriter(external=external, metadata=metadata)
    try:
        rewriter.parse(data)
    except _Refused:
        raise CorruptFileError(
            "The SVG declares XML entities or an internal DTD, which are refused for "
            "security; remove the <!DOCTYPE ...[...]> block and send it again."
        ) from None
    except xml.parsers.expat.ExpatError as exc:
        raise CorruptFileError(
            f"The SVG is not well-formed XML (line {exc.lineno}, column {exc.offset})."
        ) from exc
    if _local(rewriter.root) != "svg":
        raise CorruptFileError("The file is XML but its root element is not <svg>.")
    return SafeSvg("".join(rewriter.out).encode(), rewriter.removed)


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1]


class _SvgRewriter:
    """Expat handlers that write the document back out (namespace prefixes as they were)."""

    def __init__(self, *, external: bool, metadata: bool) -> None:
        self.external = external
        self.metadata = metadata
        self.out: list[str] = []
        self.stack: list[str] = []
        self.root = ""
        self.removed = 0
        self._skipping = 0  # depth inside an element being dropped
        self._tag_open = False  # "<name attrs" written, ">" or "/>" still to come

    def parse(self, data: bytes) -> None:
        parser = xml.parsers.expat.ParserCreate()
        parser.ordered_attributes = True
        parser.buffer_text = True
        # External DTDs and parameter entities are never read.
        parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._doctype
        parser.EntityDeclHandler = self._refuse
        parser.UnparsedEntityDeclHandler = self._refuse
        parser.NotationDeclHandler = self._refuse
        parser.ExternalEntityRefHandler = self._refuse_reference
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.Parse(data, True)

    def _refuse(self, *_args: object) -> None:
        raise _Refused

    def _refuse_reference(self, *_args: object) -> int:
        raise _Refused

    def _doctype(self, _name: str, _sysid: str | None, _pubid: str | None, subset: int) -> None:
        if subset:
            raise _Refused

    def _close_tag(self) -> None:
        if self._tag_open:
            self.out.append(">")
            self._tag_open = False

    def _start(self, name: str, attributes: list[str]) -> None:
        if not self.stack:
            self.root = name
        self.stack.append(name)
        dropped = _local(name) == "include" and not self.external
        if self._skipping or dropped or (not self.metadata and _local(name) == "metadata"):
            self._skipping += 1
            self.removed += dropped
            return
        self._close_tag()
        parts = [f"<{name}"]
        for key, value in zip(attributes[::2], attributes[1::2], strict=True):
            kept: str | None = value
            if not self.external:
                kept = _without_external(key, value)
                self.removed += kept != value
            if kept is not None:
                parts.append(f" {key}={quoteattr(kept)}")
        self.out.append("".join(parts))
        self._tag_open = True

    def _end(self, name: str) -> None:
        self.stack.pop()
        if self._skipping:
            self._skipping -= 1
        elif self._tag_open:
            self.out.append("/>")
            self._tag_open = False
        else:
            self.out.append(f"</{name}>")

    def _text(self, content: str) -> None:
        if self._skipping or not self.stack:
            return
        inside = _local(self.stack[-1])
        if not content.strip() and inside not in _TEXT_ELEMENTS:
            return
        if inside == "style" and not self.external:
            cleaned = _EXTERNAL_URL.sub("none", _CSS_IMPORT.sub("", content))
            self.removed += cleaned != content
            content = cleaned
        self._close_tag()
        self.out.append(escape(content))


def _without_external(key: str, value: str) -> str | None:
    """The attribute's value with outside references removed; None drops the attribute."""
    if _local(key) == "href":
        target = value.strip().lower()
        return value if not target or target.startswith(("#", "data:")) else None
    lowered = value.lower()
    if "url(" in lowered or "@import" in lowered:
        return _EXTERNAL_URL.sub("none", _CSS_IMPORT.sub("", value))
    return value
