"""PyTorch -> ONNX export with a dynamic batch axis, and a PyTorch-vs-ONNX Runtime parity check.

    path = export_onnx(model, (1, 96), "out/onnx/teacher.onnx")               # one self-contained file
    path = export_onnx(model, (1, 96), "teacher.onnx", external_data=True)    # + teacher.onnx.data
    report = parity_check(model, path, X_test[:256])                          # ParityError if off

Exporter: torch 2.13's default, the torch.export-based ("dynamo") exporter, is tried first with
`dynamic_shapes` (batch = Dim("batch", min=1)); if it raises, or its file fails the checks below,
the legacy TorchScript exporter (`dynamo=False`, `dynamic_axes`) is used. Both fold BatchNorm into
Conv. Either way the file is checked with `onnx.checker` (path-based) and run in ONNX Runtime at
batch 1 and 3 before it replaces anything at `path`. The exporter used is recorded in the model's
metadata_props ("kd_harness.exporter"). The dynamo exporter's per-node debug metadata (stack
traces with absolute source paths) is stripped, so file sizes do not depend on where the code lives.

Writes are atomic: export goes into a temp folder beside `path`, then each file is moved into place
(external data first, graph last).
"""
from __future__ import annotations

import contextlib
import re
import io
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harness.errors import HarnessError, OptionError, ParityError, first_line

EXPORTERS = ("auto", "dynamo", "torchscript")
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _stdout_fd_silenced():
    """File descriptor 1 to /dev/null: the TorchScript exporter prints its whole graph there from C++ when an
    operator has no conversion, past Python's sys.stdout (the CLI's output would get hundreds of lines)."""
    import sys

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (an embedded interpreter): nothing to protect
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def _silenced():
    """Silence exporter progress prints, python warnings and torch.onnx log lines."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _stdout_fd_silenced():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _export_dynamo(model, example, opset: int | None):
    import torch

    batch = torch.export.Dim("batch", min=1)
    with _silenced():
        program = torch.onnx.export(
            model,
            (example,),
            None,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            optimize=True,
            verbose=False,
        )
        proto = program.model_proto
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    return proto


def _export_torchscript(model, example, opset: int | None):
    import onnx
    import torch

    buf = io.BytesIO()
    with _silenced():
        torch.onnx.export(
            model,
            (example,),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buf.getvalue())


def _save(proto, target: Path, external_data: bool) -> None:
    """Save `proto`; with `external_data`, every floating-point initializer goes to "<name>.onnx.data".

    Integer initializers (shapes, axes) stay in the graph: ONNX Runtime cannot read shape-inference
    inputs from external data ("Cannot parse data from external tensors"), which is what
    onnx.save_model(..., size_threshold=0) would produce.
    """
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import set_external_data

    float_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)
    for t in proto.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise HarnessError("exporter produced tensors stored outside the model in memory; cannot save them")
        if external_data and t.data_type in float_types:
            if not t.HasField("raw_data"):
                t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t), t.name))
            set_external_data(t, target.name + ".data")
    try:
        # path-based save writes tensors marked external to the side file and clears their raw_data
        onnx.save_model(proto, str(target))
    except ValueError as exc:  # protobuf's 2 GB limit
        raise HarnessError(f"cannot save ONNX model {target.name}: {first_line(exc, with_type=True)}; try external_data=True") from None


class ExportError(HarnessError):
    """Neither exporter could turn the model into ONNX (the message names the operator where it can)."""


def _unsupported_ops(exc: BaseException) -> list[str]:
    """ATen operators an exporter's error (its whole text, and its causes') names as not convertible."""
    texts, seen = [], exc
    while seen is not None and len(texts) < 5:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(texts)
    found = re.findall(r"operator '?(aten::\w+)", text) + re.findall(
        r"(?:No decompositions registered|not supported|Unsupported)[^\n]*?(aten[.:]{1,2}\w+)", text)
    return list(dict.fromkeys(op.replace("aten.", "aten::") for op in found))


def _smoke(target: Path, input_shape: tuple[int, ...]) -> None:
    """onnx.checker (path-based) + ORT runs at batch 1 and 3: proves the batch axis is really dynamic."""
    import onnxruntime as ort

    from harness.onnx_tools import validate_onnx

    validate_onnx(target)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(target), sess_options=so, providers=["CPUExecutionProvider"])
    for b in (1, 3):
        out = sess.run(None, {INPUT_NAME: np.zeros((b, *input_shape), np.float32)})[0]
        if out.shape[0] != b:
            raise HarnessError(f"exported model returns batch {out.shape[0]} for an input batch of {b}")


def export_onnx(
    model,
    input_shape: Sequence[int],
    path: str | os.PathLike,
    *,
    external_data: bool = False,
    opset: int | None = None,
    exporter: str = "auto",
) -> Path:
    """Export `model` (input shape without batch axis) to `path` with a dynamic batch axis.

    Input is named "input", output "logits". `exporter`: "auto" (dynamo, falling back to
    torchscript), "dynamo" or "torchscript". Raises HarnessError when export fails.
    """
    import torch

    if exporter not in EXPORTERS:
        raise OptionError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise OptionError(f"input_shape must be positive sizes without the batch axis, got {tuple(input_shape)}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.export-"))
    except OSError as exc:
        raise HarnessError(f"cannot write ONNX file {path}: {exc.strerror or exc}") from None

    was_training = model.training
    model.eval()
    try:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        gen = torch.Generator().manual_seed(0)
        example = torch.randn((2, *shape), generator=gen).to(device)  # batch 2: avoids 0/1 specialisation
        methods = {"auto": ("dynamo", "torchscript"), "dynamo": ("dynamo",), "torchscript": ("torchscript",)}[exporter]
        failures, ops = [], []
        target = tmpdir / path.name
        for method in methods:
            for f in tmpdir.iterdir():
                f.unlink()
            try:
                fn = _export_dynamo if method == "dynamo" else _export_torchscript
                proto = fn(model, example, opset)
                meta = proto.metadata_props.add()
                meta.key, meta.value = "kd_harness.exporter", method
                _save(proto, target, external_data)
                del proto
                _smoke(target, shape)
                log.debug(f"{path.name}: exported with the {method} exporter")
                break
            except Exception as exc:  # exporters raise anything; keep one line per attempt
                failures.append(f"{method}: {first_line(exc, with_type=True)}")
                ops += [op for op in _unsupported_ops(exc) if op not in ops]
                log.debug(f"{path.name}: {method} exporter failed: {first_line(exc, with_type=True)}")
        else:
            failures = [re.sub(r"\x1b\[[0-9;]*m", "", f) for f in failures]  # the exporter's colour codes
            named = f": operator {', '.join(ops[:3])} has no ONNX conversion" if ops else ""
            raise ExportError(f"ONNX export of {path.name} failed{named} ({'; '.join(failures)})")

        files = sorted(tmpdir.iterdir(), key=lambda p: p == target)  # graph file last
        mode = target.stat().st_mode & 0o777  # onnx creates the data file 0600; match the graph's
        for f in files:
            os.chmod(f, mode)
            os.replace(f, path.parent / f.name)
        stale = path.parent / (path.name + ".data")
        if not external_data and stale.exists():
            stale.unlink()  # a side file from an earlier external-data export of the same name
        return path
    except OSError as exc:
        raise HarnessError(f"cannot write ONNX file {path}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
        model.train(was_training)


def parity_check(
    model,
    onnx_path: str | os.PathLike,
    inputs: np.ndarray,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    batch_size: int = 64,
    strict: bool = True,
) -> dict[str, Any]:
    """Run `inputs` through PyTorch (inference_mode) and ONNX Runtime (CPU, all graph optimisations).

    Passed means every logit satisfies |ort - torch| <= atol + rtol * |torch| (np.allclose, torch as
    reference, NaN never equal). Returns {"max_abs_err", "max_rel_err", "top1_agreement", "n", "atol",
    "rtol", "passed"}; with `strict`, a failure raises ParityError.
    """
    import torch

    from harness.backends.base import Artifact, BackendOptions
    from harness.backends.onnxruntime_backend import OnnxRuntimeBackend

    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    if inputs.ndim < 2 or len(inputs) == 0:
        raise OptionError(f"parity check needs a non-empty batch of samples, got shape {inputs.shape}")
    if batch_size < 1:
        raise OptionError(f"batch_size must be positive, got {batch_size}")
    onnx_path = Path(onnx_path)
    session = OnnxRuntimeBackend().open(
        Artifact(role="parity", onnx=str(onnx_path)), BackendOptions(threads=1, graph_optimization="all")
    )
    try:
        session.check_shape(inputs.shape)  # before torch sees it: one clear message, not a conv error
    except OptionError:
        session.close()
        raise
    was_training = model.training
    model.eval()
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    refs, outs = [], []
    try:
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            with torch.inference_mode():
                refs.append(model(torch.from_numpy(chunk).to(device)).float().cpu().numpy())
            outs.append(session.run(chunk))
    finally:
        session.close()
        model.train(was_training)
    ref, out = np.concatenate(refs), np.concatenate(outs)
    if ref.shape != out.shape:
        raise ParityError(f"ONNX output shape {out.shape} differs from PyTorch's {ref.shape} for {onnx_path.name}")
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    finite = bool(np.isfinite(diff).all())
    # None (not inf/nan) where undefined: results files are strict JSON
    max_abs = float(diff.max()) if finite else None
    max_rel = float((diff / np.maximum(np.abs(ref.astype(np.float64)), 1e-12)).max()) if finite else None
    top1 = float(np.mean(ref.argmax(axis=1) == out.argmax(axis=1))) if ref.ndim == 2 else None
    passed = finite and bool(np.allclose(out, ref, atol=atol, rtol=rtol, equal_nan=False))
    report = {
        "max_abs_err": max_abs,
        "max_rel_err": max_rel,
        "top1_agreement": top1,
        "n": int(len(inputs)),
        "atol": float(atol),
        "rtol": float(rtol),
        "passed": passed,
    }
    if strict and not passed:
        def fmt(v, spec):
            return "non-finite" if v is None else format(v, spec)

        raise ParityError(
            f"ONNX Runtime disagrees with PyTorch on {onnx_path.name}: max_abs_err={fmt(max_abs, '.3g')}, "
            f"max_rel_err={fmt(max_rel, '.3g')}, top1_agreement={fmt(top1, '.4f')} over n={len(inputs)} "
            f"(atol={atol:g}, rtol={rtol:g}); re-export the model or loosen the tolerances"
        )
    return report
