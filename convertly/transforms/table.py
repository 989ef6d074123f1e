"""Transform parameters: each declared once, with how its value is read and the range one
place validates. Tools, job options and delivery URLs name the parameters they take."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ParamKind(StrEnum):
    """How a parameter's value is read."""

    INTEGER = "integer"  # a whole number within [low, high]
    NUMBER = "number"  # a real number within [low, high]
    BOOLEAN = "boolean"  # true/false (also 1/0, yes/no, on/off)
    CHOICE = "choice"  # one of `choices`, case-insensitive
    LENGTH = "length"  # pixels ("600") or a percentage of the source ("50%")
    COLOUR = "colour"  # hex, #rgb/#rrggbb/#rrggbbaa
    SECONDS = "seconds"  # seconds ("2.5") or a timestamp ("00:01:02.5")
    POINT = "point"  # x,y as fractions in [0, 1] or percentages ("0.3,0.6", "30%,60%")
    TEXT = "text"  # free text of at most `high` characters
    FILE = "file"  # a stored file's id (or an uploaded part): the tool gets a local path


@dataclass(frozen=True)
class Param:
    """One transform parameter. `name` is the wire name (as Convertly spells it); `aliases`
    are read in its place, first sent wins, name first; `low`/`high` bound a number (or a
    text's length), `choices` a choice (or, for an integer, names it also takes, kept as
    names); `synonyms` are other spellings of a choice, each (spelling, choice); `default`
    is what an absent parameter means."""

    name: str
    kind: ParamKind
    help: str
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    default: str | int | float | bool | None = None
    synonyms: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)
