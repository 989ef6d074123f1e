"""The typed values `parse` returns for the parameter kinds that are more than a number: a
length (pixels or a percentage), a colour (RGBA) and a point (fractions of the image)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Length:
    """Pixels, or a percentage of the source's size along the same axis."""

    amount: float
    percent: bool = False

    def pixels(self, source: int) -> int:
        """The length in pixels for a source `source` pixels long (at least 1)."""
        if not self.percent:
            return int(self.amount)
        return max(1, round(source * self.amount / 100))


@dataclass(frozen=True)
class Colour:
    """An sRGB colour with alpha, each channel 0-255 (alpha 255 is opaque)."""

    red: int
    green: int
    blue: int
    alpha: int = 255

    @property
    def rgb(self) -> list[float]:
        return [float(self.red), float(self.green), float(self.blue)]

    @property
    def rgba(self) -> list[float]:
        return [*self.rgb, float(self.alpha)]

    @property
    def opaque(self) -> bool:
        return self.alpha == 255


TRANSPARENT = Colour(0, 0, 0, 0)


@dataclass(frozen=True)
class Point:
    """A point as fractions of the image's width and height, (0, 0) the top left."""

    x: float
    y: float
