"""The remove-background tool: a segmentation model finds the subject, everything else
becomes transparent (or `backgroundColor`).

The model is the operator's: an ONNX file named by CONVERTLY_BACKGROUND_MODEL (U2-Net,
IS-Net, the models rembg ships and alike), run on the CPU with onnxruntime; none is bundled
and nothing is downloaded. Without one the tool answers 501 FEATURE_UNAVAILABLE.

What the model must look like: one input, an RGB image as float32, NCHW (1x3xHxW) or NHWC
(1xHxWx3), of a fixed size (a size the model leaves open is taken as DEFAULT_SIDE); the first
output holds the foreground mask at the model's resolution (1x1xHxW, 1xHxW, HxW or 1xHxWx1),
higher where the subject is. The image is scaled to the input size, its channels divided by
255 and normalised with the ImageNet mean and deviation (U2-Net's training), unless the
model's metadata says otherwise: `mean` and `std`, three comma-separated numbers each (IS-Net
wants 0.5,0.5,0.5 and 1,1,1). The mask is stretched to 0-1 (its minimum to its maximum, as
rembg does), scaled back to the image's size and becomes its alpha (times any alpha the image
had).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyvips

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.image import SOURCES as RASTER_SOURCES
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.converters.tools.raster import read_image, write_image
from convertly.errors import ConversionError, FeatureUnavailableError
from convertly.models import OutputFormat, SourceInfo
from convertly.sniff import Kind
from convertly.transforms.table import BACKGROUND, QUALITY, Param, ParamKind
from convertly.transforms.values import Colour

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_SIDE = 320  # the input size of a model that leaves it open (U2-Net's)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_ALPHA = 16  # alpha (0-255) above which a pixel belongs to the subject when cropping
FLAT_MASK = 1e-6  # a mask whose range is below this is taken as it is, not stretched
CUTOUT_FORMATS = ("png", "webp", "avif", "jpg")
# What onnxruntime raises for a file that is no model, a graph it cannot run, bad input.
_ORT_ERRORS = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile",
               "NotImplemented", "RuntimeException", "EPFail")

CUTOUT_FORMAT = Param("format", ParamKind.CHOICE, "The output format: png (default), webp "
                      "or avif keep the transparency; jpg needs a background (white if none "
                      "is given).", aliases=("f",), choices=CUTOUT_FORMATS,
                      synonyms=(("jpeg", "jpg"),), default="png")
# Named backgroundColor: `background` true or false is the routes' alias of async=true
# (Convertly's SDK sends it); any other value of it comes here.
FILL = Param("backgroundColor", ParamKind.COLOUR, "Fill the removed background with this "
             "colour (hex, alpha allowed) instead of leaving it transparent.",
             aliases=("background", "backgroundColour", "bgColor", *BACKGROUND.aliases))


def _runtime() -> Any:
    """onnxruntime (and numpy), imported when a model is first loaded: most processes never
    run remove-background, and the import costs them a good part of a second."""
    return importlib.import_module("onnxruntime")


def ort_errors(*extra: type[Exception]) -> tuple[type[Exception], ...]:
    """onnxruntime's exceptions (its own classes, not RuntimeError's), and `extra`."""
    state = importlib.import_module("onnxruntime.capi.onnxruntime_pybind11_state")
    return (*(getattr(state, name) for name in _ORT_ERRORS), RuntimeError, *extra)


CROP = Param("crop", ParamKind.BOOLEAN, "Crop the output to the subject.",
             aliases=("cropToSubject", "trim"), default=False)


@dataclass(frozen=True)
class Model:
    """A loaded segmentation model and how to feed it."""

    session: Any  # onnxruntime.InferenceSession
    input_name: str
    channels_first: bool
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def remove_background(
    src: Path,
    source: SourceInfo,
    options: Mapping[str, Any],
    workdir: Path,
    limits: Limits,
    progress: ProgressFn,
) -> ToolOutput:
    """The image with its background transparent (or filled with `backgroundColor`)."""
    model = load_model(limits.background_model)
    image = read_image(src, Kind(source.kind), limits)
    progress(0.2)
    cutout = apply_mask(image, predict(model, image))
    if options["crop"]:
        cutout = _crop(cutout)
    progress(0.8)
    fill: Colour | None = options.get("backgroundColor")
    if fill is not None:
        cutout = _fill(cutout, fill)
    target = OutputFormat(options["format"])
    out = write_image(cutout, target, workdir, "cutout", options.get("quality"))
    return ToolOutput([out], {"width": cutout.width, "height": cutout.height,
                              "format": target.value})


def load_model(path: str) -> Model:
    """The model at `path` (loaded once per process and file version)."""
    if not path:
        raise FeatureUnavailableError(
            "remove-background needs a segmentation model, and none is set up on this server: "
            "the operator sets CONVERTLY_BACKGROUND_MODEL to an ONNX model file (U2-Net, "
            "IS-Net or alike)."
        )
    try:
        stat = Path(path).stat()
    except OSError as exc:
        log.error("CONVERTLY_BACKGROUND_MODEL %s cannot be read: %s", path, exc)
        raise _unloadable() from exc
    return _load(path, stat.st_mtime_ns, stat.st_size)


def _unloadable() -> FeatureUnavailableError:
    return FeatureUnavailableError(
        "remove-background cannot run: the model file CONVERTLY_BACKGROUND_MODEL names cannot "
        "be loaded as a segmentation model (see the server's log); the operator must fix it."
    )


# Loading a model takes a while (a 170 MB U2-Net: about a second): each worker process keeps
# the last one it loaded, keyed by the file's version so that a replaced file is reloaded.
@functools.lru_cache(maxsize=1)
def _load(path: str, mtime_ns: int, size: int) -> Model:
    ort = _runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, pyvips.concurrency_get())
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)":
            raise ValueError(f"inputs {[(i.name, i.type) for i in inputs]} are not one "
                             "float32 image")
        spec = inputs[0]
        shape = list(spec.shape)
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise ValueError(f"input shape {shape} is not one RGB image (NCHW or NHWC)")
        channels_first = shape[1] == 3
        height, width = (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
        metadata = session.get_modelmeta().custom_metadata_map
        return Model(
            session=session,
            input_name=spec.name,
            channels_first=channels_first,
            height=height if isinstance(height, int) and height > 0 else DEFAULT_SIDE,
            width=width if isinstance(width, int) and width > 0 else DEFAULT_SIDE,
            mean=_triple(metadata.get("mean"), IMAGENET_MEAN),
            std=_triple(metadata.get("std"), IMAGENET_STD),
        )
    except ort_errors(ValueError) as exc:  # ValueError: a shape or metadata refused
        log.error("CONVERTLY_BACKGROUND_MODEL %s is not a usable model: %s", path, exc)
        raise _unloadable() from exc


def _triple(text: str | None, default: tuple[float, float, float]) -> tuple[float, float, float]:
    if not text:
        return default
    values = [float(part) for part in text.split(",")]
    if len(values) != 3:
        raise ValueError(f"model metadata {text!r} is not three numbers")
    return values[0], values[1], values[2]


def predict(model: Model, image: pyvips.Image) -> np.ndarray:
    """The model's foreground mask for `image` (sRGB), 0-1, at the model's resolution."""
    import numpy as np

    rgb = image[:3].resize(model.width / image.width, vscale=model.height / image.height)
    pixels = np.ndarray(
        buffer=rgb.write_to_memory(), dtype=np.uint8, shape=(rgb.height, rgb.width, 3)
    )[: model.height, : model.width]
    if pixels.shape[:2] != (model.height, model.width):  # rounding left a row short
        pixels = np.pad(pixels, ((0, model.height - pixels.shape[0]),
                                 (0, model.width - pixels.shape[1]), (0, 0)), mode="edge")
    mean = np.asarray(model.mean, dtype=np.float32)
    std = np.asarray(model.std, dtype=np.float32)
    tensor = (pixels.astype(np.float32) / np.float32(255) - mean) / std
    tensor = tensor.transpose(2, 0, 1) if model.channels_first else tensor
    try:
        outputs: Sequence[Any] = model.session.run(None, {model.input_name: tensor[None]})
    except ort_errors() as exc:
        raise ConversionError("The segmentation model failed on this image.") from exc
    mask = np.asarray(outputs[0], dtype=np.float32).squeeze()
    if mask.ndim != 2:
        raise ConversionError(f"The segmentation model gave a mask of shape {mask.shape}, not "
                              "one 2-D mask.")
    low, high = float(mask.min()), float(mask.max())
    if high - low >= FLAT_MASK:
        mask = (mask - low) / (high - low)
    return np.clip(mask, 0, 1)


def apply_mask(image: pyvips.Image, mask: np.ndarray) -> pyvips.Image:
    """`image` with `mask` (0-1, any size) scaled to it as its alpha."""
    import numpy as np

    height, width = mask.shape
    grey = pyvips.Image.new_from_memory(
        np.ascontiguousarray(mask * 255).astype(np.uint8).tobytes(), width, height, 1, "uchar"
    )
    alpha = grey.resize(image.width / width, vscale=image.height / height, kernel="linear")
    alpha = alpha.crop(0, 0, min(alpha.width, image.width), min(alpha.height, image.height))
    alpha = alpha.embed(0, 0, image.width, image.height, extend="copy")
    if image.hasalpha():
        alpha = (alpha * (image[3] / 255)).cast("uchar")
    return image[:3].bandjoin(alpha.cast("uchar")).copy(interpretation="srgb")


def _crop(cutout: pyvips.Image) -> pyvips.Image:
    """The cutout cropped to its subject (what is more than faintly opaque); all of it when
    nothing is."""
    left, top, width, height = cutout[3].find_trim(background=[0], threshold=CROP_ALPHA)
    return cutout.crop(left, top, width, height) if width and height else cutout


def _fill(cutout: pyvips.Image, colour: Colour) -> pyvips.Image:
    """The cutout over a canvas of `colour` (which may itself be partly transparent)."""
    canvas = cutout.new_from_image(colour.rgba).cast("uchar").copy(interpretation="srgb")
    return canvas.composite2(cutout, "over").cast("uchar")


REMOVE_BACKGROUND = Tool(
    name="remove-background",
    summary="Make an image's background transparent (or a colour) with the operator's "
    "segmentation model (CONVERTLY_BACKGROUND_MODEL).",
    sources=frozenset(RASTER_SOURCES),
    params=(CUTOUT_FORMAT, FILL, CROP, QUALITY),
    run=remove_background,
)
