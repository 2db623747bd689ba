"""`harness bench --onnx LABEL=FILE.onnx`: ONNX files a user exported, as ModelSources for `bench_models`."""
from __future__ import annotations

import logging
from pathlib import Path

from harness.errors import OptionError
from harness.options import parse_list

log = logging.getLogger(__name__)


def parse_onnx_specs(specs: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in specs:
        if "=" not in spec:
            raise OptionError(f"--onnx takes LABEL=FILE.onnx (e.g. teacher=t.onnx), got {spec!r}")
        label, path = spec.split("=", 1)
        label = label.strip()
        if not label or not path:
            raise OptionError(f"--onnx takes LABEL=FILE.onnx, got {spec!r}")
        if label in out:
            raise OptionError(f"--onnx label {label!r} given twice")
        out[label] = Path(path)
    if len(out) < 1:
        raise OptionError("give at least one --onnx LABEL=FILE.onnx")
    return out


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    dims = tuple(parse_list(text.replace("x", ","), "--input-shape", int,
                            "sizes like 1,427 or 1x16x32x32 (no batch axis)"))
    if any(d < 1 for d in dims):
        raise OptionError(f"--input-shape needs positive sizes, got {text!r}")
    return dims


def onnx_sources(specs: dict[str, Path], input_shape: tuple[int, ...] | None, data, task: str) -> list:
    from harness.bench import ModelSource
    from harness.onnx_tools import onnx_input_shape, onnx_macs, onnx_params, validate_onnx

    sources = []
    for label, path in specs.items():
        validate_onnx(path)
        dims, _ = onnx_input_shape(path)
        model_shape = tuple(dims[1:])
        if input_shape is not None:
            shape = input_shape
            if len(shape) != len(model_shape) or any(m is not None and m != s for m, s in zip(model_shape, shape)):
                raise OptionError(f"--input-shape {shape} does not fit {path.name}, whose input is "
                                  f"(N, {', '.join('?' if d is None else str(d) for d in model_shape)})")
        elif data is not None:
            shape = data.input_shape
        elif all(d is not None for d in model_shape) and model_shape:
            shape = tuple(int(d) for d in model_shape)
        else:
            raise OptionError(f"{path.name} has a dynamic input shape "
                              f"(N, {', '.join('?' if d is None else str(d) for d in model_shape)}); "
                              "give --input-shape C,L or C,D,H,W")
        if len(shape) != len(model_shape) or any(m is not None and m != s for m, s in zip(model_shape, shape)):
            raise OptionError(f"input shape {shape} does not fit {path.name}, whose input is "
                              f"(N, {', '.join('?' if d is None else str(d) for d in model_shape)})")
        sources.append(ModelSource(task=task, role=label, onnx=path, input_shape=tuple(shape),
                                   params=onnx_params(path), macs=onnx_macs(path, shape), fixed_batch=dims[0]))
    shapes = {s.input_shape for s in sources}
    if len(shapes) > 1:
        detail = ", ".join(f"{s.role}: {s.input_shape}" for s in sources)
        raise OptionError(f"the models take different inputs ({detail}); a comparison needs the same input")
    return sources


def fit_fixed_batch(cfg, sources: list, *, explicit_batch: bool, explicit_throughput: bool):
    """Batch sizes that the models can run: an ONNX input with a fixed batch axis B (a model exported
    without a dynamic batch) runs at B only. Without --batch-sizes the bench measures at B and says so;
    sizes the user asked for that such a model cannot take are refused before any work."""
    from dataclasses import replace

    fixed = {s.role: s.fixed_batch for s in sources if s.fixed_batch is not None}
    if not fixed:
        return cfg
    if len(set(fixed.values())) > 1:
        detail = ", ".join(f"{label}: {b}" for label, b in fixed.items())
        raise OptionError(f"the models take different fixed batch sizes ({detail}); a paired comparison needs one "
                          f"batch size: export them with a dynamic batch axis")
    b = next(iter(fixed.values()))
    names = ", ".join(fixed)
    for flag, given, sizes in (("--batch-sizes", explicit_batch, cfg.batch_sizes),
                               ("--throughput-batch-sizes", explicit_throughput, cfg.throughput_batch_sizes)):
        if given and set(sizes) != {b}:
            raise OptionError(f"{names} take(s) a fixed batch of {b} (ONNX input axis 0), so {flag} "
                              f"{','.join(map(str, sizes))} cannot run; use {flag} {b}")
    if set(cfg.batch_sizes) != {b} or set(cfg.throughput_batch_sizes) != {b}:
        log.warning(f"{names} take(s) a fixed batch of {b} (ONNX input axis 0): measuring at batch {b} only "
                    f"(export with a dynamic batch axis to compare batch sizes)")
    return replace(cfg, batch_sizes=[b], throughput_batch_sizes=[b], fixed_batch=b)
