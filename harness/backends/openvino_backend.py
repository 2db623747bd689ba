"""OpenVINO backend (optional extra `.[openvino]`): the exported .onnx file, compiled by OpenVINO for the CPU.

    session = get_backend("openvino").open(Artifact("student_kd", onnx="student_kd.onnx"), BackendOptions(threads=2))
    session.compile_s                    # {batch size: seconds to reshape and compile for that batch}
    session.settings                     # every setting that decides its speed, as OpenVINO reports them back

Settings, the latency-serving configuration OpenVINO documents: `PERFORMANCE_HINT=LATENCY`, one stream
(`NUM_STREAMS=1`), `INFERENCE_NUM_THREADS = --threads`, and `INFERENCE_PRECISION_HINT=f32`: on CPUs with
bf16 or AMX, OpenVINO would otherwise run an fp32 model in bf16, which changes its accuracy and makes the
comparison with ONNX Runtime and PyTorch unfair. The model is reshaped to each batch size and compiled for
that static shape when a batch is prepared (outside every timed region, as torch-compile); `compile_s`
records how long that took, and cold start reports it. A quantized (QDQ) ONNX variant is read as it is:
OpenVINO's low-precision transformations turn its QuantizeLinear/DequantizeLinear pairs into int8 kernels.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend, BackendOptions, Session, register_backend
from harness.errors import MissingPackageError, ModelFileError, OptionError, first_line
from harness.onnx_tools import validate_onnx



def _openvino():
    """The openvino module, imported when a session opens (never by merely listing backends: a worker
    process that times ONNX Runtime should not carry OpenVINO's libraries in its memory)."""
    try:
        import openvino
    except ImportError:  # the optional extra is not installed
        raise MissingPackageError("the openvino backend needs the openvino package: pip install -e '.[openvino]'") from None
    return openvino

SPEED_KEYS = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
              "ENABLE_HYPER_THREADING", "ENABLE_CPU_PINNING", "SCHEDULING_CORE_TYPE")


def compile_config(options: BackendOptions) -> dict[str, str]:
    return {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(options.threads),
            "INFERENCE_PRECISION_HINT": "f32"}


class _Prepared:
    __slots__ = ("request", "tensor", "batch")

    def __init__(self, request, tensor, batch):
        self.request, self.tensor, self.batch = request, tensor, batch


class OpenVinoSession(Session):
    backend = "openvino"

    def __init__(self, ov, core, model, options: BackendOptions, path: Path):
        self.ov, self.core, self.model, self.options, self.path = ov, core, model, options, path
        shape = model.inputs[0].get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape]
        self.full_input_shape = tuple(dims)
        self.input_shape = tuple(dims[1:])
        self.compiled: dict[tuple[int, ...], Any] = {}
        self.compile_s: dict[int, float] = {}
        self.settings: dict[str, str] = {}

    def _compiled(self, shape: tuple[int, ...]):
        got = self.compiled.get(shape)
        if got is None:
            want = self.full_input_shape
            if len(shape) != len(want) or any(w is not None and w != s for w, s in zip(want, shape)):
                raise OptionError(f"input batch shape {shape} does not fit the model: expected "
                                  f"({', '.join('?' if w is None else str(w) for w in want)})")
            t0 = time.perf_counter()
            model = self.model.clone()
            model.reshape({model.inputs[0]: self.ov.PartialShape(list(shape))})
            try:
                got = self.core.compile_model(model, "CPU", compile_config(self.options))
            except Exception as exc:
                raise ModelFileError(f"OpenVINO cannot compile {self.path.name}: {first_line(exc)}") from None
            self.compile_s[shape[0]] = self.compile_s.get(shape[0], 0.0) + time.perf_counter() - t0
            self.compiled[shape] = got
            if not self.settings:
                self.settings = {k: str(got.get_property(k)) for k in SPEED_KEYS if _has(got, k)}
        return got

    def prepare(self, batch: np.ndarray) -> Any:
        arr = np.ascontiguousarray(batch, dtype=np.float32)
        compiled = self._compiled(tuple(int(d) for d in arr.shape))
        request = compiled.create_infer_request()
        tensor = self.ov.Tensor(arr)  # shares the array's memory: the batch stays alive in _Prepared
        request.set_input_tensor(tensor)
        return _Prepared(request, tensor, arr)

    def run_prepared(self, prepared: Any) -> Any:
        prepared.request.infer()
        return prepared.request.get_output_tensor(0)

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.array(out.data, dtype=np.float32, copy=True)

    def close(self) -> None:
        self.compiled.clear()
        self.model = None


def _has(compiled, key: str) -> bool:
    try:
        compiled.get_property(key)
        return True
    except Exception:
        return False


@register_backend
class OpenVinoBackend(Backend):
    name = "openvino"

    def open(self, artifact: Artifact, options: BackendOptions) -> OpenVinoSession:
        ov = _openvino()
        if options.device != "cpu":
            raise OptionError(f"the openvino backend runs on cpu here, not {options.device!r}")
        if not artifact.onnx:
            raise OptionError(f"the openvino backend needs an .onnx file for model {artifact.role!r}")
        path = Path(artifact.onnx)
        validate_onnx(path)
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:
            raise ModelFileError(f"OpenVINO cannot read {path}: {first_line(exc)}") from None
        if not model.inputs or not model.outputs:
            raise ModelFileError(f"ONNX model {path} has no inputs or outputs")
        return OpenVinoSession(ov, core, model, options, path)


    def settings(self, options: BackendOptions) -> dict[str, Any]:
        """What OpenVINO reports back for a model compiled with this configuration (a one-operation model:
        the properties are the device's and the configuration's, not the model's)."""
        ov = _openvino()
        from openvino import opset13 as ops

        param = ops.parameter([1, 4], ov.Type.f32)
        compiled = ov.Core().compile_model(ov.Model([ops.relu(param)], [param]), "CPU", compile_config(options))
        out = {k: str(compiled.get_property(k)) for k in SPEED_KEYS if _has(compiled, k)}
        return {"version": ov.get_version(), **out}


def openvino_version() -> str | None:
    try:
        return _openvino().get_version()
    except OptionError:
        return None
