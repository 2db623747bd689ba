"""ONNX variants: an fp32 model turned into another ONNX model that the suites measure like any other.

    sources, failures = build_variants(sources, ("fp32", "int8", "int8-dynamic"), data, settings)

A variant of the model with role `student_kd` has role `student_kd@int8`, its own ONNX file next to
the fp32 one (`student_kd.int8.onnx`, written to a temp file and renamed into place), no checkpoint
(it runs on ONNX Runtime only), and the params/MACs of its base. A variant that cannot be built, or
that ONNX Runtime cannot load and run, is a `VariantFailure(role, variant, reason)`, never a traceback;
the results file lists it with `available: false` and its one-line reason.

Built-in variants (a registry: `register_variant(name)` adds one):
- `fp32`: the base model itself (identity);
- `int8`: ONNX Runtime static quantization, QDQ format, per-channel int8 weights and uint8
  activations (the x86 VNNI recipe of `quantize_static`'s documentation), after `quant_pre_process`
  (shape inference and ORT's basic graph optimisation, which folds BatchNorm into Conv). Calibration
  reads a seeded, class-stratified subset of the TRAINING split only (never X_test);
  method minmax | entropy | percentile;
- `int8-nncf`: NNCF's post-training quantisation (extra `.[openvino]`), same training subset, QDQ ONNX;
- `int8-dynamic`: `quantize_dynamic` (int8 weights, activations quantised at run time). ONNX Runtime
  has no ConvInteger kernel for int8 weights on CPU, so conv models usually fail to load: reported.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.errors import HarnessError

log = logging.getLogger(__name__)

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
CALIBRATION_BATCH = 16  # samples per calibration batch (histogram calibrators hold one batch's activations)


class VariantError(HarnessError):
    """A variant cannot be built or loaded; its message becomes the VariantFailure's reason."""


@dataclass(frozen=True)
class VariantFailure:
    """A requested variant that is not available: listed in results with its one-line reason."""

    task: str
    role: str  # the base model's role
    variant: str
    reason: str

    @property
    def variant_role(self) -> str:
        return f"{self.role}@{self.variant}"


@dataclass(frozen=True)
class VariantSettings:
    calibration: str = "minmax"
    calibration_samples: int = 256
    seed: int = 0


Builder = Callable[[Any, Any, VariantSettings, Path], dict]
VARIANTS: dict[str, Builder | None] = {"fp32": None}  # name -> builder (None: the identity)


def register_variant(name: str) -> Callable[[Builder], Builder]:
    """Decorator: `builder(source, data, settings, out_path) -> calibration info (dict) or {}`; it writes
    the variant's ONNX file to `out_path` (a temp path renamed into place afterwards) or raises VariantError."""
    def deco(fn: Builder) -> Builder:
        VARIANTS[name] = fn
        return fn

    return deco


def variant_names() -> tuple[str, ...]:
    return tuple(VARIANTS)


def variant_path(onnx: Path, variant: str) -> Path:
    """`onnx/student_kd.onnx` -> `onnx/student_kd.int8.onnx`."""
    return onnx.with_name(f"{onnx.stem}.{variant}{onnx.suffix or '.onnx'}")


class _ToDebug(logging.Handler):
    """ONNX Runtime's quantisation tools log through the root logger (and `logging.info()` on an
    unconfigured root installs a handler there for good, doubling every later harness line): while a
    variant is built, the root holds this handler instead, which passes their lines on as our debug lines."""

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("harness"):
            log.debug(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def _root_logging_contained():
    root = logging.getLogger()
    handler, level = _ToDebug(), root.level
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    if not isinstance(exc, HarnessError) and not text.startswith(type(exc).__name__):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


@contextlib.contextmanager
def _step(name: str):
    """Name the step a variant failed in (pre-processing, calibration, quantisation, loading) and keep the
    library's own message; an exception without one (a bare AssertionError) says where it was raised."""
    try:
        yield
    except VariantError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library's own classes; reported, never raised further
        text = _one_line(exc)
        if text == type(exc).__name__ and exc.__traceback__ is not None:
            import traceback

            last = traceback.extract_tb(exc.__traceback__)[-1]
            text += f" raised in {Path(last.filename).name}:{last.lineno} ({last.name}) with no message"
        raise VariantError(f"{name} failed: {text}") from None


# -- calibration data -----------------------------------------------------------------------------
def calibration_indices(y_train: np.ndarray, samples: int, seed: int = 0) -> np.ndarray:
    """A class-stratified, seeded subset of the training indices (sorted), `samples` of them (capped at
    the training size). Each class gets its share of the subset in proportion to its training count
    (largest remainders break the rounding), drawn at random within the class."""
    y = np.asarray(y_train).ravel()
    n = min(int(samples), y.size)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / y.size
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: n - int(quota.sum())]:
        quota[i] += 1
    picked = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64)


def calibration_data(data: Any, settings: VariantSettings) -> np.ndarray:
    """The calibration inputs: rows of data.X_train only (the test split is never read)."""
    if data is None:
        raise VariantError("needs --data for calibration (static int8 calibrates on the training split)")
    idx = calibration_indices(data.y_train, settings.calibration_samples, settings.seed)
    if idx.size == 0:
        raise VariantError("the training split is empty: nothing to calibrate on")
    X = np.ascontiguousarray(data.X_train[idx], dtype=np.float32)
    if not np.isfinite(X).all():
        raise VariantError("the calibration samples hold NaN or inf")
    return X


def _input_name(path: Path) -> str:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return next(i.name for i in model.graph.input if i.name not in inits)


def _calibration_batches(src: Any, data: Any, settings: VariantSettings) -> tuple[np.ndarray, list[np.ndarray]]:
    """The calibration rows (training split) and the batches a calibrator feeds the model."""
    from harness.measure.base import wrap_rows

    with _step("reading the calibration data (training split)"):
        X = calibration_data(data, settings)
    fixed = getattr(src, "fixed_batch", None)
    step = fixed or CALIBRATION_BATCH
    batches = [X[i:i + step] for i in range(0, len(X), step)]
    if fixed and len(batches[-1]) < fixed:  # a model with a fixed batch axis takes exactly that many
        batches[-1] = wrap_rows(batches[-1], fixed)
    return X, batches


# -- builders -------------------------------------------------------------------------------------
@register_variant("int8")
def _int8_static(src: Any, data: Any, settings: VariantSettings, out: Path) -> dict:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    X, batches = _calibration_batches(src, data, settings)
    name = _input_name(src.onnx)

    class Reader(CalibrationDataReader):  # strided: the calibrator collects one batch at a time
        def __init__(self):
            self.start, self.end, self.pos = 0, len(batches), 0

        def __len__(self):
            return len(batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.start, self.end, self.pos = start_index, end_index, start_index

        def get_next(self):
            if self.pos >= min(self.end, len(batches)):
                return None
            self.pos += 1
            return {name: batches[self.pos - 1]}

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[settings.calibration]
    with tempfile.TemporaryDirectory(prefix="kdh-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        with _step("pre-processing (quant_pre_process: shape inference and graph optimisation)"):
            quant_pre_process(str(src.onnx), str(pre))
        with _step("calibration and quantisation (quantize_static)"):
            quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                            extra_options={"CalibStridedMinMax": 1})
    return {"method": settings.calibration, "samples": int(len(X)), "split": "train", "per_channel": True,
            "format": "QDQ", "seed": settings.seed, "activation_type": "uint8", "weight_type": "int8",
            "preprocess": "quant_pre_process"}


@register_variant("int8-nncf")
def _int8_nncf(src: Any, data: Any, settings: VariantSettings, out: Path) -> dict:
    """NNCF's post-training quantisation (OpenVINO's own recipe) of the ONNX file, written back as QDQ
    ONNX, so every ONNX backend runs the same file: OpenVINO reads it through its low-precision
    transformations, ONNX Runtime as QLinear* kernels. Calibrated on the same training subset as `int8`."""
    try:
        import nncf
    except ImportError:
        raise VariantError("the int8-nncf variant needs the nncf package: pip install -e '.[openvino]'") from None
    import onnx

    X, batches = _calibration_batches(src, data, settings)
    name = _input_name(src.onnx)
    logging.getLogger("nncf").setLevel(logging.ERROR)  # its progress bars and notes are not ours to print
    with _step("loading the model for NNCF (onnx.load)"):
        model = onnx.load(str(src.onnx))
    with _step("calibration and quantisation (nncf.quantize)"), contextlib.redirect_stdout(io.StringIO()):
        q = nncf.quantize(model, nncf.Dataset(batches, lambda x: {name: x}), subset_size=len(batches))
    with _step("saving the quantised model"):
        onnx.save(q, str(out))
    return {"method": "nncf.quantize", "nncf_version": nncf.__version__, "samples": int(len(X)), "split": "train",
            "seed": settings.seed, "format": "QDQ", "preset": "performance (symmetric activations)",
            "fast_bias_correction": True}


@register_variant("int8-dynamic")
def _int8_dynamic(src: Any, data: Any, settings: VariantSettings, out: Path) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _step("quantisation (quantize_dynamic)"):
        quantize_dynamic(str(src.onnx), str(out), weight_type=QuantType.QInt8)
    return {"method": "dynamic", "weight_type": "int8"}


# -- building -------------------------------------------------------------------------------------
def _check_loads(path: Path, shape: tuple[int, ...], batch: int = 2) -> None:
    """Open the variant in ONNX Runtime and run one batch of `batch` (a fixed-batch model's own size);
    VariantError with the one-line reason."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own classes; reported, not raised
        raise VariantError(f"loading failed: ONNX Runtime cannot load it: {_one_line(exc)}") from None
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    try:
        out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    except Exception as exc:  # noqa: BLE001
        raise VariantError(f"loading failed: ONNX Runtime cannot run it: {_one_line(exc)}") from None
    if out.shape[0] != batch or not np.isfinite(out).all():
        raise VariantError(f"it returned {'non-finite logits' if out.shape[0] == batch else f'shape {out.shape}'}")


def build_variant(src: Any, variant: str, data: Any, settings: VariantSettings) -> Any:
    """The variant ModelSource of fp32 source `src`, or a VariantFailure."""
    if variant == "fp32":
        return src
    builder = VARIANTS.get(variant)
    if builder is None:
        return VariantFailure(src.task, src.role, variant, f"unknown variant; known: {', '.join(VARIANTS)}")
    path = variant_path(Path(src.onnx), variant)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.onnx")
        os.close(fd)
        with _root_logging_contained():
            info = builder(src, data, settings, Path(tmp))
            _check_loads(Path(tmp), tuple(src.input_shape), getattr(src, "fixed_batch", None) or 2)
        os.replace(tmp, path)
    except Exception as exc:  # noqa: BLE001 - any failure of a variant is reported, never raised
        reason = _one_line(exc)
        log.warning(f"{src.task}: {src.role}@{variant} not available: {reason}")
        return VariantFailure(src.task, src.role, variant, reason)
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    log.info(f"{src.task}: {src.role}@{variant} -> {path}")
    return replace(src, role=f"{src.role}@{variant}", onnx=path, checkpoint=None, parity=None, training=None,
                   base_role=src.role, variant=variant, calibration=info or None)


def build_variants(sources: list, variants: tuple[str, ...] | list[str], data: Any,
                   settings: VariantSettings) -> list:
    """Every fp32 source followed by its requested variants (ModelSources or VariantFailures)."""
    out: list = []
    for src in sources:
        if "fp32" in variants:
            out.append(src)
        for v in variants:
            if v != "fp32":
                out.append(build_variant(src, v, data, settings))
    return out


def record_failures(results: Any, failures: list, multi_task: bool) -> None:
    """Variants that could not be built: a models entry with available false and the reason, one warning
    line each, and their count in config["variant_failures"]; no measurements."""
    for f in failures:
        results.add_model(f.task, f.variant_role, {"base_role": f.role, "variant": f.variant, "available": False,
                                                   "reason": f.reason}, multi_task)
        results.warnings.append(f"{f.task}/{f.variant_role}: variant not available: {f.reason}")
    results.config["variant_failures"] = int(results.config.get("variant_failures") or 0) + len(failures)


__all__ = ["CALIBRATION_METHODS", "VARIANTS", "VariantError", "VariantFailure", "VariantSettings", "build_variant",
           "build_variants", "calibration_data", "calibration_indices", "record_failures", "register_variant", "variant_names",
           "variant_path"]
