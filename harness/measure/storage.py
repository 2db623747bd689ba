"""Storage suite: what a model costs on disk, raw and gzip-compressed.

    storage_metrics(checkpoint="teacher.pt", onnx="teacher.onnx", params=..., macs=...)
    -> {"checkpoint_bytes", "checkpoint_gzip_bytes", "onnx_bytes", "onnx_graph_bytes",
        "onnx_external_bytes", "onnx_external_files", "onnx_gzip_bytes", "onnx_params", "params", "macs"}

`onnx_bytes` is the graph file plus ALL external data files it refers to (each counted once);
`onnx_gzip_bytes` is gzip level 9 of the graph followed by its external data files, streamed.
Figures that do not apply (no checkpoint, no ONNX file) are None.
The storage suite (harness/measure/builtin_suites.py) reports these figures from each model's entry.
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any, Iterable

from harness.errors import CheckpointError, ModelFileError

_CHUNK = 1 << 20


def gzip_size(paths: Iterable[str | os.PathLike], level: int = 9) -> int:
    """Size of a gzip stream (level `level`) of the files concatenated, computed without writing it."""
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 16+15: gzip container
    total = 0
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                total += len(comp.compress(chunk))
    return total + len(comp.flush())


def onnx_files(onnx: str | os.PathLike) -> tuple[Path, list[Path]]:
    """(graph file, external data files); ModelFileError when any of them is missing."""
    from harness.onnx_tools import external_data_files

    graph = Path(onnx)
    extra = external_data_files(graph)  # ModelFileError for missing/corrupt graph
    for f in extra:
        if not f.is_file():
            raise ModelFileError(f"ONNX external data file missing: {f} (needed by {graph.name})")
    return graph, extra


def storage_metrics(
    checkpoint: str | os.PathLike | None = None,
    onnx: str | os.PathLike | None = None,
    params: int | None = None,
    macs: int | None = None,
    *,
    gzip: bool = True,
    gzip_level: int = 9,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "checkpoint_bytes": None,
        "checkpoint_gzip_bytes": None,
        "onnx_bytes": None,
        "onnx_graph_bytes": None,
        "onnx_external_bytes": None,
        "onnx_external_files": None,
        "onnx_gzip_bytes": None,
        "onnx_params": None,
        "params": int(params) if params is not None else None,
        "macs": int(macs) if macs is not None else None,
    }
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        if not ckpt.is_file():
            raise CheckpointError(f"checkpoint not found: {ckpt}")
        out["checkpoint_bytes"] = ckpt.stat().st_size
        if gzip:
            out["checkpoint_gzip_bytes"] = gzip_size([ckpt], gzip_level)
    if onnx is not None:
        from harness.onnx_tools import onnx_params

        graph, extra = onnx_files(onnx)
        graph_bytes = graph.stat().st_size
        ext_bytes = sum(f.stat().st_size for f in extra)
        out["onnx_graph_bytes"] = graph_bytes
        out["onnx_external_bytes"] = ext_bytes
        out["onnx_external_files"] = len(extra)
        out["onnx_bytes"] = graph_bytes + ext_bytes
        out["onnx_params"] = onnx_params(graph)
        if gzip:
            out["onnx_gzip_bytes"] = gzip_size([graph, *extra], gzip_level)
    return out
