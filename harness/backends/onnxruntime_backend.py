"""ONNX Runtime backend: an .onnx file (plus any external data beside it) in, float32 logits out.

Thread settings: `intra_op_num_threads = options.threads` (1 = no intra-op pool at all; ORT's own
default 0 would mean "one per physical core", which we never use), `inter_op_num_threads =
options.inter_op_threads` (only used by ORT in parallel execution mode; we run sequential mode, the
default, so it rarely matters). Spinning is left at ORT's default (on).

The file is validated with `harness.onnx_tools.validate_onnx` before ORT sees it, so corrupt,
truncated or non-ONNX files, and missing external data, give a one-line ModelFileError instead of
ORT's multi-line exceptions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from harness.backends.base import Artifact, Backend, BackendOptions, Session, register_backend
from harness.errors import ModelFileError, OptionError, first_line
from harness.onnx_tools import validate_onnx

GRAPH_OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(options: BackendOptions) -> ort.SessionOptions:
    """ORT SessionOptions for `options`; OptionError on bad values."""
    level = GRAPH_OPTIMIZATION.get(str(options.graph_optimization).lower())
    if level is None:
        raise OptionError(
            f"unknown graph optimization {options.graph_optimization!r}; choose one of {', '.join(GRAPH_OPTIMIZATION)}"
        )
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.threads
    so.inter_op_num_threads = options.inter_op_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = level
    so.enable_cpu_mem_arena = bool(options.arena)
    so.log_severity_level = 3  # errors only: ORT's warnings go straight to stderr otherwise
    return so


def _providers(device: str) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise OptionError(
                "device 'cuda' requested but this onnxruntime has no CUDAExecutionProvider "
                "(install onnxruntime-gpu, or use --device cpu)"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise OptionError(f"unknown device {device!r}; choose cpu or cuda")


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("N" if i == 0 and d is None else ("?" if d is None else str(d)) for i, d in enumerate(shape)) + ")"


class OnnxRuntimeSession(Session):
    backend = "onnxruntime"

    def __init__(self, sess: ort.InferenceSession, options: BackendOptions, artifact: Artifact | None = None):
        self.sess = sess
        self.options = options
        self.artifact = artifact
        inp = sess.get_inputs()[0]
        self.input_name = inp.name
        full = tuple(d if isinstance(d, int) and d > 0 else None for d in inp.shape)
        self.full_input_shape = full  # with batch axis
        self.input_shape = full[1:]
        self.output_names = [sess.get_outputs()[0].name]
        self.device = options.device
        self._run = sess.run

    # -- outside timing -----------------------------------------------------------------------
    def check_shape(self, shape: tuple[int, ...]) -> None:
        want = self.full_input_shape
        if len(shape) != len(want) or any(w is not None and w != s for w, s in zip(want, shape)):
            raise OptionError(
                f"input batch shape {tuple(shape)} does not fit the model: expected {_fmt_shape(want)} "
                f"(N = batch size)"
            )

    def prepare(self, batch: np.ndarray) -> Any:
        arr = np.ascontiguousarray(batch, dtype=np.float32)
        self.check_shape(arr.shape)
        if self.device == "cuda":
            binding = self.sess.io_binding()
            value = ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
            binding.bind_ortvalue_input(self.input_name, value)
            binding.bind_output(self.output_names[0], "cuda")
            return _CudaFeed(binding, value)
        return {self.input_name: arr}

    # -- the timed call -----------------------------------------------------------------------
    def run_prepared(self, prepared: Any) -> Any:
        if self.device == "cuda":
            self.sess.run_with_iobinding(prepared.binding)  # ORT synchronises the stream at the end of Run
            return prepared.binding
        return self._run(self.output_names, prepared)[0]

    def to_numpy(self, out: Any) -> np.ndarray:
        if isinstance(out, np.ndarray):
            return out
        return np.asarray(out.copy_outputs_to_cpu()[0])

    def close(self) -> None:
        self.sess = None  # type: ignore[assignment]
        self._run = None  # type: ignore[assignment]


class _CudaFeed:
    __slots__ = ("binding", "value")

    def __init__(self, binding, value):
        self.binding = binding
        self.value = value  # keep the device buffer alive


@register_backend
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, validate: bool = True):
        self.validate = validate

    def open(self, artifact: Artifact, options: BackendOptions) -> OnnxRuntimeSession:
        if not artifact.onnx:
            raise OptionError(f"the onnxruntime backend needs an .onnx file for model {artifact.role!r}")
        path = Path(artifact.onnx)
        so = session_options(options)
        providers = _providers(options.device)
        if self.validate:
            validate_onnx(path)
        try:
            sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # ORT's pybind exceptions: Fail, InvalidGraph, NoSuchFile, ...
            raise ModelFileError(f"ONNX Runtime cannot load {path}: {first_line(exc)}") from None
        if not sess.get_inputs() or not sess.get_outputs():
            raise ModelFileError(f"ONNX model {path} has no inputs or outputs")
        return OnnxRuntimeSession(sess, options, artifact)

    def available_devices(self) -> list[str]:
        providers = ort.get_available_providers()
        return ["cpu"] + (["cuda"] if "CUDAExecutionProvider" in providers else [])
