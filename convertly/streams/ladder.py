"""Which renditions a stream gets: a profile's rungs that fit the source, or the caller's
own (`custom`), smallest first."""

from __future__ import annotations

from collections.abc import Sequence

from convertly.errors import InvalidFieldError
from convertly.streams.model import (
    LADDER,
    MAX_RENDITIONS,
    PROFILE_HEIGHTS,
    LadderStep,
    Profile,
    Rendition,
)

MIN_HEIGHT = 64
MAX_HEIGHT = 4320
BITRATE_RANGE = (50, 100_000)       # kbit/s, video
AUDIO_BITRATE_RANGE = (16, 512)     # kbit/s
DEFAULT_AUDIO_BITRATE = 128


def _rendition(index: int, step: LadderStep) -> Rendition:
    return Rendition(id=f"{step.height}p", index=index, height=step.height,
                     bitrate=step.bitrate, audio_bitrate=step.audio_bitrate)


def plan(profile: Profile, source_height: int | None,
         custom: Sequence[LadderStep] = ()) -> tuple[Rendition, ...]:
    """The ladder for `profile`. A profile's rungs taller than the source are left out
    (never upscaled); a source shorter than the smallest rung gets that rung at its own
    height. `custom` rungs are taken as given, duplicates of a height refused."""
    if profile is Profile.CUSTOM:
        steps = sorted(custom, key=lambda s: (s.height, s.bitrate))
        heights = [s.height for s in steps]
        if len(set(heights)) != len(heights):
            raise InvalidFieldError("renditions", "must not repeat a height.")
        return tuple(_rendition(i, s) for i, s in enumerate(steps))
    wanted = [s for s in LADDER if s.height in PROFILE_HEIGHTS[profile]]
    if source_height:
        fitting = [s for s in wanted if s.height <= source_height]
        if not fitting:
            even = max(MIN_HEIGHT, source_height - source_height % 2)
            first = wanted[0]
            fitting = [LadderStep(even, first.bitrate, first.audio_bitrate)]
        wanted = fitting
    return tuple(_rendition(i, s) for i, s in enumerate(wanted))


def parse_custom(raw: object) -> tuple[LadderStep, ...]:
    """The `renditions` field: [{height, bitrate, audioBitrate?}, ...] (kbit/s)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidFieldError("renditions", "is required with profile `custom`: a list of "
                                "{height, bitrate, audioBitrate}.")
    if len(raw) > MAX_RENDITIONS:
        raise InvalidFieldError("renditions", f"may hold at most {MAX_RENDITIONS} entries.")
    steps = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidFieldError("renditions", "entries must be objects.")
        height = _int(entry.get("height"), "height", (MIN_HEIGHT, MAX_HEIGHT))
        bitrate = _int(entry.get("bitrate"), "bitrate", BITRATE_RANGE)
        audio = entry.get("audioBitrate")
        audio_bitrate = (DEFAULT_AUDIO_BITRATE if audio is None
                         else _int(audio, "audioBitrate", AUDIO_BITRATE_RANGE))
        steps.append(LadderStep(height - height % 2, bitrate, audio_bitrate))
    return tuple(steps)


def _int(value: object, name: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) \
            or not low <= value <= high:
        raise InvalidFieldError("renditions", f"`{name}` must be a whole number from {low} "
                                f"to {high}.")
    return int(value)
