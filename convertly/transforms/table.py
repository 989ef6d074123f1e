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


# --- image: size, crop, orientation, edges, filters, colour, output ----------------------

POSITIONS = ("centre", "top", "bottom", "left", "right", "top-left", "top-right",
             "bottom-left", "bottom-right", "entropy", "attention")
_COMPASS = {"north": "top", "south": "bottom", "west": "left", "east": "right"}
_POSITION_SYNONYMS = (
    ("center", "centre"), ("middle", "centre"), ("smart", "attention"),
    ("auto", "attention"), *_COMPASS.items(),
    # corners: top-left, topleft, top_left, left-top, northwest, north-west, ...
    *((f"{a}{sep}{b}", f"{v}-{h}") for v in ("top", "bottom") for h in ("left", "right")
      for a, b in ((v, h), (h, v)) for sep in ("", "_", "-") if (a, b, sep) != (v, h, "-")),
    *((f"{a}{sep}{b}", f"{_COMPASS[a]}-{_COMPASS[b]}") for a in ("north", "south")
      for b in ("west", "east") for sep in ("", "_", "-")),
)
IMAGE_FORMATS = ("jpg", "png", "webp", "avif", "gif", "tiff")
QUALITY_NAMES = ("very_low", "low", "medium", "high", "very_high")
MAX_SIDE = 16_384

WIDTH = Param("width", ParamKind.LENGTH, "Output width: pixels (1-16384) or a percentage of "
              "the source's (\"50%\"). With only one of width and height the other keeps "
              "the aspect ratio.", aliases=("w",), low=1, high=MAX_SIDE)
HEIGHT = Param("height", ParamKind.LENGTH, "Output height: pixels (1-16384) or a percentage "
               "of the source's.", aliases=("h",), low=1, high=MAX_SIDE)
FIT = Param("fit", ParamKind.CHOICE, "How the image meets width and height: cover (fill "
            "the box, crop the overflow), contain (fit inside, pad with background), fill "
            "(stretch), inside (fit inside, no padding), outside (cover, no crop).",
            choices=("cover", "contain", "fill", "inside", "outside"), default="cover")
POSITION = Param("position", ParamKind.CHOICE, "What a cover crop keeps (and where contain "
                 "places the image): centre, an edge, a corner, or entropy/attention "
                 "(libvips smartcrop: the busiest / most salient region).",
                 aliases=("gravity", "g"), choices=POSITIONS, synonyms=_POSITION_SYNONYMS,
                 default="centre")
FOCAL_POINT = Param("focalPoint", ParamKind.POINT, "A cover crop is centred on this point "
                    "(x,y as fractions or percentages of the image); overrides position.",
                    aliases=("fp", "focal"))
BACKGROUND = Param("background", ParamKind.COLOUR, "Fills contain padding, pad and the "
                   "corners of a rotation: hex with optional alpha (#rrggbbaa) or "
                   "transparent. Default: transparent, or white where the format has no "
                   "alpha. (true or false here is async's alias, as on every tool.)",
                   aliases=("bg",))
ROTATE = Param("rotate", ParamKind.NUMBER, "Degrees clockwise, -360 to 360 (after resizing; "
               "other than multiples of 90 the canvas grows and corners get background).",
               aliases=("rot",), low=-360, high=360, default=0)
FLIP = Param("flip", ParamKind.BOOLEAN, "Mirror top to bottom.", default=False)
FLOP = Param("flop", ParamKind.BOOLEAN, "Mirror left to right.", default=False)
TRIM = Param("trim", ParamKind.BOOLEAN, "Crop away fully transparent borders first.",
             aliases=("trimAlpha", "trim-alpha"), default=False)
PAD = Param("pad", ParamKind.INTEGER, "Pixels of background added on every side (0-1000).",
            low=0, high=1000, default=0)
BORDER = Param("border", ParamKind.INTEGER, "Pixels of borderColor added on every side, "
               "outside the padding (0-400).", low=0, high=400, default=0)
BORDER_COLOUR = Param("borderColor", ParamKind.COLOUR, "The border's colour (hex, alpha "
                      "allowed).", aliases=("borderColour",), default="#000000")
RADIUS = Param("radius", ParamKind.INTEGER, "Rounds the corners with this radius in pixels "
               "(outside them transparent, or background where the format has no alpha).",
               aliases=("r",), low=0, high=MAX_SIDE, default=0)
BLUR = Param("blur", ParamKind.NUMBER, "Gaussian blur sigma in pixels (0 none, up to 100).",
             low=0, high=100, default=0)
SHARPEN = Param("sharpen", ParamKind.NUMBER, "Unsharp-mask sigma in pixels (0 none, up to "
                "10).", low=0, high=10, default=0)
BRIGHTNESS = Param("brightness", ParamKind.NUMBER, "Multiplies brightness: 1 unchanged, 0.5 "
                   "half, 2 double (0-10).", low=0, high=10, default=1)
CONTRAST = Param("contrast", ParamKind.NUMBER, "Multiplies contrast around mid-grey: 1 "
                 "unchanged, 0 flat grey (0-10).", low=0, high=10, default=1)
SATURATION = Param("saturation", ParamKind.NUMBER, "Multiplies colourfulness: 1 unchanged, "
                   "0 greyscale (0-10).", low=0, high=10, default=1)
FORMAT = Param("format", ParamKind.CHOICE, "The output image format: jpg, png, webp, avif, "
               "gif or tiff (jpeg and tif accepted). Default: the source's when it is one of "
               "these, else png for images with transparency and jpg otherwise.",
               aliases=("f",),
               choices=IMAGE_FORMATS, synonyms=(("jpeg", "jpg"), ("tif", "tiff")))
QUALITY = Param("quality", ParamKind.INTEGER, "Encoder quality 1-100, or very_low, low, "
                "medium, high, very_high (each encoder maps the names onto its own scale). "
                "Default: the encoder's usual.",
                aliases=("q",), low=1, high=100, choices=QUALITY_NAMES)

GEOMETRY: tuple[Param, ...] = (WIDTH, HEIGHT, FIT, POSITION, FOCAL_POINT, BACKGROUND)
OUTPUT: tuple[Param, ...] = (FORMAT, QUALITY)
IMAGE: tuple[Param, ...] = (
    *GEOMETRY, ROTATE, FLIP, FLOP, TRIM, PAD, BORDER, BORDER_COLOUR, RADIUS, BLUR, SHARPEN,
    BRIGHTNESS, CONTRAST, SATURATION, *OUTPUT,
)


# -- media: the clip, its frame rate, codec and bitrates (transforms/media.py applies them) --

START = Param(
    "start", ParamKind.SECONDS, "Where the clip begins: seconds (2.5) or a timestamp (0:01:02.5).",
    aliases=("startTime", "so", "ss"), low=0, default=0.0,
)  # fmt: skip
END = Param(
    "end", ParamKind.SECONDS, "Where the clip ends (after start); the source's end when absent.",
    aliases=("endTime", "eo", "to"), low=0,
)  # fmt: skip
DURATION = Param(
    "duration", ParamKind.SECONDS, "How long the clip lasts from start (instead of end).",
    aliases=("du", "t"), low=0.05,
)  # fmt: skip
FPS = Param("fps", ParamKind.NUMBER, "Frames per second of the output, 1-60 (never more than "
            "the source has).", aliases=("frameRate",), low=1, high=60)  # fmt: skip
CODEC = Param(
    "codec", ParamKind.CHOICE, "The video encoder: h264 (mp4, mov), h265 (mp4, mov), vp9 (webm, "
    "mp4) or av1 (webm, mp4); hevc and avc accepted. Default: h264 for mp4 and mov, vp9 for "
    "webm.",
    aliases=("videoCodec", "vcodec"), choices=("h264", "h265", "vp9", "av1"),
    synonyms=(("avc", "h264"), ("x264", "h264"), ("hevc", "h265"), ("x265", "h265"),
              ("vp09", "vp9"), ("av01", "av1")),
)  # fmt: skip
VIDEO_BITRATE = Param(
    "videoBitrate", ParamKind.INTEGER, "Average video bitrate in kb/s, 50-100000 (instead of "
    "quality).",
    aliases=("vb",), low=50, high=100_000,
)  # fmt: skip
AUDIO_BITRATE = Param(
    "audioBitrate", ParamKind.INTEGER, "Audio bitrate in kb/s, 8-512 (lossy formats; "
    "otherwise from quality).",
    aliases=("ab", "bitrate"), low=8, high=512,
)  # fmt: skip

CLIP: tuple[Param, ...] = (START, END, DURATION)
ENCODING: tuple[Param, ...] = (CODEC, QUALITY, VIDEO_BITRATE, AUDIO_BITRATE, FPS)
MEDIA: tuple[Param, ...] = (*CLIP, FPS, CODEC, VIDEO_BITRATE, AUDIO_BITRATE)  # quality: above
