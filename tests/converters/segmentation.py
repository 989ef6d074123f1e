"""Tiny ONNX segmentation models built here with the `onnx` package (no weights exist to
download): the mask is high where the pixel is redder than it is blue, which finds a red
subject on a blue background, the way a real model finds a person on a wall."""

from __future__ import annotations

from pathlib import Path

OPSET = 18  # Split with num_outputs
STEEPNESS = 10.0  # of the sigmoid: normalised red minus blue of +-3 gives a mask of ~1 / ~0


def redness_model(path: Path, *, channels_first: bool = True, side: int | None = 64,
                  metadata: dict[str, str] | None = None) -> Path:  # fmt: skip
    """Write a model with one RGB input (NCHW or NHWC, `side` x `side`, or open when None)
    and one mask output sigmoid(STEEPNESS * (red - blue)) to `path`."""
    import onnx  # here: the API tests' conftest imports this module, most runs need no model
    from onnx import TensorProto, helper

    dim: int | str = side if side is not None else "size"
    axis = 1 if channels_first else 3
    shape: list[int | str] = [1, 3, dim, dim] if channels_first else [1, dim, dim, 3]
    out_shape: list[int | str] = [1, 1, dim, dim] if channels_first else [1, dim, dim, 1]
    nodes = [
        helper.make_node("Split", ["image"], ["red", "green", "blue"], axis=axis,
                         num_outputs=3),
        helper.make_node("Sub", ["red", "blue"], ["redness"]),
        helper.make_node("Mul", ["redness", "steepness"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["mask"]),
    ]
    graph = helper.make_graph(
        nodes,
        "redness",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, out_shape)],
        initializer=[helper.make_tensor("steepness", TensorProto.FLOAT, [], [STEEPNESS])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def byte_image_model(path: Path) -> Path:
    """A valid model that takes the image as bytes (uint8), which remove-background refuses."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["mask"])], "bytes",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("mask", TensorProto.UINT8, [1, 3, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
