"""ONNX file helpers: validation with one-line errors, input shape, parameter and MAC counts.

Nothing here imports torch, so the ONNX Runtime backend (and its memory child) stays torch-free.

    model = validate_onnx("teacher.onnx")          # ModelFileError on anything unusable
    shape, name = onnx_input_shape("teacher.onnx")  # ((None, 1, 96), "input"); None = symbolic dim
    onnx_params("teacher.onnx")                     # floating-point initializer elements
    onnx_macs("teacher.onnx", (1, 96))              # Conv/ConvTranspose/Gemm/MatMul MACs per sample
    external_data_files("teacher.onnx")             # [Path(".../teacher.onnx.data")]
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

from harness.errors import ModelFileError, OptionError, first_line


def _load_graph(path: str | os.PathLike):
    """Parse the graph file only (no external data); ModelFileError for missing/unparsable files."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"ONNX file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"ONNX path is a directory, not a file: {path}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelFileError(f"cannot read ONNX file {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelFileError(f"ONNX file is empty: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"not a valid ONNX file (cannot parse it; corrupt or truncated?): {path} ({first_line(exc, 120)})"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read ONNX file {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # protobuf raises assorted types for garbage bytes
        raise ModelFileError(f"not a valid ONNX file (cannot parse it): {path} ({type(exc).__name__})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or len(model.graph.node) == 0 or not model.graph.output:
        raise ModelFileError(f"not a valid ONNX model (no IR version or empty graph; corrupt or truncated?): {path}")
    return model


def _external_refs(model) -> list[tuple[str, int, int | None, str]]:
    """(location, offset, length or None, tensor name) for every externally stored tensor."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    refs = []
    for tensor in _all_tensors(model):
        if uses_external_data(tensor):
            info = ExternalDataInfo(tensor)
            refs.append((info.location, int(info.offset or 0), int(info.length) if info.length else None, tensor.name))
    return refs


def _all_tensors(model):
    """Initializers and tensor attributes of the graph and all its subgraphs."""
    from onnx import AttributeProto

    def walk(graph):
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == AttributeProto.TENSORS:
                    yield from attr.tensors
                elif attr.type == AttributeProto.GRAPH:
                    yield from walk(attr.g)
                elif attr.type == AttributeProto.GRAPHS:
                    for g in attr.graphs:
                        yield from walk(g)

    return list(walk(model.graph))


def external_data_files(path: str | os.PathLike) -> list[Path]:
    """Paths of the external data files the model refers to (resolved next to the graph; may not exist)."""
    path = Path(path)
    model = _load_graph(path)
    seen: dict[str, Path] = {}
    for location, _, _, _ in _external_refs(model):
        seen.setdefault(location, path.parent / location)
    return sorted(seen.values())


def validate_onnx(path: str | os.PathLike):
    """Check that `path` is a loadable ONNX model with all its external data; returns the graph proto
    (external tensors not loaded). Raises ModelFileError with a one-line message otherwise."""
    import onnx

    path = Path(path)
    model = _load_graph(path)
    base = path.parent.resolve()
    sizes: dict[str, int] = {}
    for location, offset, length, tensor in _external_refs(model):
        target = (path.parent / location)
        if os.path.isabs(location) or not str(target.resolve()).startswith(str(base)):
            raise ModelFileError(f"ONNX file {path} refers to external data outside its folder: {location!r}")
        if location not in sizes:
            if not target.is_file():
                raise ModelFileError(
                    f"ONNX external data file missing: {target} (needed by {path.name}; keep it next to the .onnx file)"
                )
            sizes[location] = target.stat().st_size
        needed = offset + (length or 0)
        if needed > sizes[location]:
            raise ModelFileError(
                f"ONNX external data file {target} is truncated: tensor {tensor!r} needs bytes up to {needed}, "
                f"file has {sizes[location]}"
            )
    try:
        # Path-based: the checker resolves external data itself and copes with models over 2 GB.
        onnx.checker.check_model(str(path))
    except Exception as exc:  # ValidationError, or C++ errors surfaced as other types
        raise ModelFileError(f"ONNX file {path} fails the ONNX checker: {first_line(exc)}") from None
    return model


def _graph_input(model):
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if not inputs:
        raise ModelFileError("ONNX model has no graph input")
    return inputs[0]


def onnx_input_shape(path: str | os.PathLike) -> tuple[tuple[int | None, ...], str]:
    """(shape including the batch axis, input name); None where a dimension is symbolic/unknown."""
    model = _load_graph(path)
    inp = _graph_input(model)
    dims = tuple(
        int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in inp.type.tensor_type.shape.dim
    )
    return dims, inp.name


def _is_float(data_type: int) -> bool:
    from onnx import TensorProto

    return data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)


def onnx_params(path: str | os.PathLike) -> int:
    """Number of elements in floating-point initializers (weights; integer shape/axes constants are not
    parameters). After BatchNorm folding this is below the PyTorch count of the same model."""
    model = _load_graph(path)
    return int(sum(math.prod(t.dims) for t in model.graph.initializer if _is_float(t.data_type)))


def onnx_macs(path: str | os.PathLike, input_shape: Sequence[int]) -> int | None:
    """Multiply-accumulates per sample. Counts Conv, ConvTranspose, Gemm and MatMul only (top-level
    graph, no subgraphs), after ONNX shape inference with the batch axis fixed to 1. Returns None when a
    counted op's shape cannot be inferred."""
    import onnx

    model = _load_graph(path)
    shape = tuple(int(d) for d in input_shape)
    inp = _graph_input(model)
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != len(shape) + 1:
        raise OptionError(
            f"input shape {shape} (without batch) does not fit the ONNX input {inp.name!r} of rank {len(dims)}"
        )
    for d, want in zip(list(dims)[1:], shape):
        if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != want:
            given = ", ".join(str(s) for s in shape)
            expected = ", ".join(str(x.dim_value) if x.HasField("dim_value") else "?" for x in list(dims)[1:])
            raise OptionError(f"input shape ({given}) does not fit the ONNX model's input ({expected})")
    for d, want in zip(dims, (1, *shape)):
        d.Clear()
        d.dim_value = want
    del model.graph.value_info[:]
    for out in model.graph.output:  # let inference recompute concrete output shapes
        for d in out.type.tensor_type.shape.dim:
            d.Clear()
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise ModelFileError(f"ONNX shape inference failed for {path}: {first_line(exc)}") from None

    shapes: dict[str, tuple[int | None, ...]] = {}
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = tuple(
                int(d.dim_value) if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim
            )
    for t in model.graph.initializer:
        shapes[t.name] = tuple(int(x) for x in t.dims)

    def known(name: str) -> tuple[int, ...] | None:
        s = shapes.get(name)
        return s if s is not None and all(x is not None for x in s) else None  # type: ignore[return-value]

    total = 0
    for node in model.graph.node:
        op = node.op_type
        if op not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            continue
        out = known(node.output[0])
        a = known(node.input[0])
        w = known(node.input[1]) if len(node.input) > 1 else None
        if out is None or w is None or (op != "Conv" and a is None):
            return None
        if op == "Conv":  # W: [Cout, Cin/group, k...]
            total += math.prod(out) * math.prod(w[1:])
        elif op == "ConvTranspose":  # W: [Cin, Cout/group, k...]
            total += math.prod(a) * math.prod(w[1:])
        elif op == "Gemm":
            trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
            k = a[0] if trans_a else a[-1]
            total += math.prod(out) * k
        else:  # MatMul
            total += math.prod(out) * (a[-1] if len(a) >= 1 else 1)
    return int(total)
