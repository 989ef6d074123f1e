"""The one validator of transform parameters: `parse(raw, params)` reads a tool's (or a job's,
or a delivery URL's) options against the rows of `table.py` and returns them under their
canonical names, typed, ranges checked, defaults filled in.

Every value may arrive as text (a multipart field, a query string) or already typed (JSON).
An empty value is an absent one. A name and its aliases are one parameter: the first of
them sent wins, the name first. Names no row declares are refused, naming them and the
parameters that are known. Every refusal is an `InvalidFieldError` naming the field as sent.

Typed values by kind: INTEGER int (or, for a row with `choices`, one of those names as a
str), NUMBER float, BOOLEAN bool, CHOICE the canonical choice (str), LENGTH `Length`,
COLOUR `Colour`, SECONDS float, POINT `Point`, TEXT str, FILE the value as given (a stored
file's id, or what the caller resolved it to). A parameter that is absent and has no
default is None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from convertly.errors import InvalidFieldError
from convertly.fields import parse_bool, parse_int
from convertly.transforms.table import Param, ParamKind
from convertly.transforms.values import TRANSPARENT, Colour, Length, Point

_HEX = re.compile(r"#?([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)")


def parse(raw: Mapping[str, Any], params: Sequence[Param]) -> dict[str, Any]:
    """`raw`'s values for `params`, by canonical name, every param present (None if absent
    with no default). Raises `InvalidFieldError` for an unknown name or a bad value."""
    known = {name: param for param in params for name in param.names}
    unknown = [name for name, value in raw.items() if name not in known and not _empty(value)]
    if unknown:
        raise _unknown(unknown, params)
    parsed: dict[str, Any] = {}
    for param in params:
        sent = next(((n, raw[n]) for n in param.names if n in raw and not _empty(raw[n])), None)
        if sent is not None:
            parsed[param.name] = parse_value(param, sent[1], sent[0])
        elif param.default is not None:
            parsed[param.name] = parse_value(param, param.default, param.name)
        else:
            parsed[param.name] = None
    return parsed


def parse_value(param: Param, value: Any, name: str | None = None) -> Any:
    """One value of `param`, sent under `name` (its own name by default)."""
    name = name or param.name
    if isinstance(value, list | tuple) and param.kind is not ParamKind.POINT:
        raise InvalidFieldError(name, f"send one value, not a list ({_shown(value)}).")
    return _PARSERS[param.kind](param, value, name)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _unknown(names: list[str], params: Sequence[Param]) -> InvalidFieldError:
    listed = ", ".join(repr(n) for n in names)
    options = ", ".join(p.name for p in params) or "none"
    error = InvalidFieldError(
        names[0], f"unknown option{'s' if len(names) > 1 else ''} {listed}; "
        f"the options here are: {options}.",
    )
    error.detail.update(unknown=names, known=[p.name for p in params])
    return error


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def _bounds(param: Param) -> tuple[float, float]:
    return (-math.inf if param.low is None else param.low,
            math.inf if param.high is None else param.high)


def _range_text(param: Param, unit: str = "") -> str:
    low, high = _bounds(param)
    if math.isinf(low) and math.isinf(high):
        return f"a number{unit}"
    if math.isinf(high):
        return f"a number{unit} of at least {low:g}"
    if math.isinf(low):
        return f"a number{unit} of at most {high:g}"
    return f"a number{unit} from {low:g} to {high:g}"


def _number(text: Any) -> float | None:
    """A finite float from a number or its text, else None."""
    if isinstance(text, bool):
        return None
    try:
        number = float(text) if isinstance(text, int | float) else float(str(text).strip())
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _choice(param: Param, value: Any) -> str | None:
    """The canonical choice `value` names (a choice or a synonym), else None."""
    text = str(value).strip().lower()
    text = dict(param.synonyms).get(text, text)
    return text if text in param.choices else None


def _integer(param: Param, value: Any, name: str) -> int | str:
    if param.choices and not isinstance(value, int | float):
        named = _choice(param, value)
        if named is not None:
            return named
    low, high = _bounds(param)
    what = f"a whole number from {low:g} to {high:g}"
    if param.choices:
        what += f" or one of {', '.join(param.choices)}"
    return parse_int(value, name, None, int(max(low, -(2**62))), int(min(high, 2**62)), what)


def _real(param: Param, value: Any, name: str) -> float:
    number = _number(value)
    low, high = _bounds(param)
    if number is None or not low <= number <= high:
        raise InvalidFieldError(name, f"must be {_range_text(param)}, got {_shown(value)}.")
    return number


def _boolean(param: Param, value: Any, name: str) -> bool:
    return parse_bool(value, name, None)


def _choice_value(param: Param, value: Any, name: str) -> str:
    named = _choice(param, value)
    if named is None:
        raise InvalidFieldError(
            name, f"unknown value {_shown(value)}; use one of {', '.join(param.choices)}."
        )
    return named


def _length(param: Param, value: Any, name: str) -> Length:
    text = str(value).strip().lower()
    low, high = _bounds(param)
    what = f"whole pixels from {low:g} to {high:g} (\"600\") or a percentage (\"50%\")"
    if text.endswith("%"):
        percent = _number(text[:-1])
        if percent is None or not 0 < percent <= 100:
            raise InvalidFieldError(name, f"must be {what} above 0 and at most 100%, "
                                    f"got {_shown(value)}.")
        return Length(percent, percent=True)
    pixels = _number(text.removesuffix("px"))
    if pixels is None or pixels != int(pixels) or not low <= pixels <= high:
        raise InvalidFieldError(name, f"must be {what}, got {_shown(value)}.")
    return Length(int(pixels))


def _colour(param: Param, value: Any, name: str) -> Colour:
    text = str(value).strip().lower()
    if text == "transparent":
        return TRANSPARENT
    match = _HEX.fullmatch(text)
    if match is None:
        raise InvalidFieldError(name, "must be a hex colour (#rgb, #rgba, #rrggbb or "
                                f"#rrggbbaa) or transparent, got {_shown(value)}.")
    digits = match.group(1)
    if len(digits) <= 4:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
    return Colour(*channels)


def _seconds(param: Param, value: Any, name: str) -> float:
    seconds = _number(value)
    if seconds is None:
        match = _TIMESTAMP.fullmatch(str(value).strip())
        if match is not None:
            hours, minutes, secs = match.groups()
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
            if int(minutes) > 59 or float(secs) >= 60:
                seconds = None
    low, high = _bounds(param)
    if seconds is None or not low <= seconds <= high:
        raise InvalidFieldError(name, f"must be {_range_text(param, ' of seconds')} "
                                f"(\"2.5\" or \"00:01:02.5\"), got {_shown(value)}.")
    return seconds


def _point(param: Param, value: Any, name: str) -> Point:
    parts = list(value) if isinstance(value, list | tuple) else str(value).split(",")
    coords: list[float] = []
    for part in parts:
        text = str(part).strip()
        number = _number(text[:-1]) if text.endswith("%") else _number(text)
        if number is not None and text.endswith("%"):
            number /= 100
        if number is None or not 0 <= number <= 1:
            break
        coords.append(number)
    if len(parts) != 2 or len(coords) != 2:
        raise InvalidFieldError(name, "must be x,y as fractions from 0 to 1 (\"0.3,0.6\") or "
                                f"percentages (\"30%,60%\"), got {_shown(value)}.")
    return Point(coords[0], coords[1])


def _text(param: Param, value: Any, name: str) -> str:
    text = str(value)
    low, high = param.low or 0, param.high or math.inf
    if not low <= len(text) <= high:
        raise InvalidFieldError(name, f"must be {low:g} to {high:g} characters long, "
                                f"got {len(text)}.")
    return text


def _file(param: Param, value: Any, name: str) -> Any:
    return value.strip() if isinstance(value, str) else value


_PARSERS: dict[ParamKind, Callable[[Param, Any, str], Any]] = {
    ParamKind.INTEGER: _integer,
    ParamKind.NUMBER: _real,
    ParamKind.BOOLEAN: _boolean,
    ParamKind.CHOICE: _choice_value,
    ParamKind.LENGTH: _length,
    ParamKind.COLOUR: _colour,
    ParamKind.SECONDS: _seconds,
    ParamKind.POINT: _point,
    ParamKind.TEXT: _text,
    ParamKind.FILE: _file,
}
