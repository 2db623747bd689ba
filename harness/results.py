"""The results file: the one contract between measuring and reporting.

A results document (schema `kd-harness/results/1`, documented in docs/results-schema.md):

    {
      "schema": "kd-harness/results/1",
      "created": "2026-11-27T20:00:00+00:00",
      "environment": {...},              # harness.measure.environment.collect()
      "config": {...},                   # how the bench was run (suites, batch sizes, threads, ...)
      "tasks": {"osuleaf": {...}},       # per task: the training summary.json (accuracy over seeds) if any
      "models": {"teacher": {...}, ...}, # by model id: role when one task, "task:role" when several
      "measurements": [ {"task", "model", "backend", "suite", "batch_size", "threads",
                         "options", "metrics", "samples_ns", "warnings"}, ... ],
      "warnings": [...],
      "hosts": {"<fingerprint>": {...}}  # only in files from `harness merge` (harness/hosts.py); each
    }                                    # measurement then carries "host": "<fingerprint>"

Each model entry holds at least: task, role, params, macs, checkpoint, checkpoint_sha256,
checkpoint_bytes, onnx, onnx_sha256, onnx_bytes (graph + external data), onnx_gzip_bytes, parity.
A measurement's `model` is the role; (task, model) finds its entry via `Results.model_entry`.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.errors import HarnessError, SchemaError
from harness.fileio import atomic_write_json, read_json
from harness.metrics import Metrics, metrics_for
from harness.roles import TRIO

SCHEMA = "kd-harness/results/1"
SCHEMA_FAMILY = "kd-harness/results/"
ROLES = TRIO  # harness/roles.py: the Role type


@dataclass
class Measurement:
    task: str
    model: str  # role
    backend: str  # "torch" | "onnxruntime"
    suite: str
    batch_size: int
    threads: int
    metrics: Metrics  # typed per suite (harness.metrics); a dict given here is parsed into it
    options: dict[str, Any] = field(default_factory=dict)
    samples_ns: list[int] | None = None  # raw per-call timings, kept for significance tests and plots
    warnings: list[str] = field(default_factory=list)
    host: str | None = None  # host fingerprint (harness.hosts); set in files from `harness merge`

    def __post_init__(self) -> None:
        self.metrics = metrics_for(self.suite, self.metrics)

    def key(self) -> tuple:
        opts = tuple(sorted((k, str(v)) for k, v in self.options.items()))
        return (self.task, self.model, self.backend, self.suite, self.batch_size, self.threads, opts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # recurses into metrics; replaced by its JSON form below
        d["metrics"] = self.metrics.to_dict()
        if self.host is None:  # files of one bench name no host: they stay as they were
            del d["host"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Measurement":
        try:
            return cls(
                task=str(d.get("task", "")),
                model=str(d["model"]),
                backend=str(d["backend"]),
                suite=str(d["suite"]),
                batch_size=int(d["batch_size"]),
                threads=int(d["threads"]),
                metrics=dict(d["metrics"]),  # parsed by suite in __post_init__
                options=dict(d.get("options") or {}),
                samples_ns=list(d["samples_ns"]) if d.get("samples_ns") is not None else None,
                warnings=list(d.get("warnings") or []),
                host=None if d.get("host") is None else str(d["host"]),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # AttributeError: not an object
            raise SchemaError(f"malformed measurement in results file: {exc}") from None


@dataclass
class Results:
    environment: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # host fingerprint -> environment, in files from `harness merge` (harness.hosts); {} for one bench
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: str = SCHEMA
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    source: str | None = None  # path it was read from; not serialised
    host: str | None = None  # the one host a per-host view of a merged file holds (harness.hosts); not serialised

    # -- model lookup -------------------------------------------------------------------------
    def model_entry(self, task: str, role: str) -> dict[str, Any] | None:
        for entry in self.models.values():
            if entry.get("role") == role and (not task or entry.get("task") == task):
                return entry
        return None

    def add_model(self, task: str, role: str, entry: dict[str, Any], multi_task: bool) -> None:
        entry = {"task": task, "role": role, **entry}
        self.models[f"{task}:{role}" if multi_task else role] = entry

    def select(self, **where: Any) -> list[Measurement]:
        return [m for m in self.measurements if all(getattr(m, k) == v for k, v in where.items())]

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema": self.schema,
            "created": self.created,
            "environment": self.environment,
            "config": self.config,
            "tasks": self.tasks,
            "models": self.models,
            "measurements": [m.to_dict() for m in self.measurements],
            "warnings": self.warnings,
        }
        if self.hosts:
            d["hosts"] = self.hosts
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str | None = None) -> "Results":
        where = f" ({source})" if source else ""
        if not isinstance(d, dict) or "schema" not in d:
            raise SchemaError(f"not a kd-harness results file{where}: no 'schema' field")
        schema = str(d["schema"])
        if not schema.startswith(SCHEMA_FAMILY):
            raise SchemaError(f"not a kd-harness results file{where}: schema {schema!r}")
        if schema != SCHEMA:
            raise SchemaError(
                f"results file{where} has schema {schema!r}, this harness reads {SCHEMA!r}; "
                "re-run the bench to produce a current file"
            )
        if not isinstance(d.get("measurements", []), list) or not isinstance(d.get("models", {}), dict):
            raise SchemaError(f"malformed results file{where}: 'measurements' must be a list, 'models' an object")
        hosts = d.get("hosts") or {}
        if not isinstance(hosts, dict) or not all(isinstance(v, dict) for v in hosts.values()):
            raise SchemaError(f"malformed results file{where}: 'hosts' must map fingerprints to environments")
        measurements = [Measurement.from_dict(m) for m in d.get("measurements") or []]
        unknown = sorted({m.host for m in measurements if m.host is not None and m.host not in hosts})
        if unknown:
            raise SchemaError(f"malformed results file{where}: measurements name host {unknown[0]!r}, "
                              "which 'hosts' does not hold")
        return cls(
            schema=schema,
            created=str(d.get("created", "")),
            environment=dict(d.get("environment") or {}),
            config=dict(d.get("config") or {}),
            tasks=dict(d.get("tasks") or {}),
            models={str(k): dict(v) for k, v in (d.get("models") or {}).items()},
            measurements=measurements,
            warnings=list(d.get("warnings") or []),
            hosts={str(k): dict(v) for k, v in hosts.items()},
            source=source,
        )


def write_results(path: str | Path, results: Results) -> Path:
    """Atomic: a crash or a bad value leaves any earlier file at `path` whole."""
    try:
        payload = results.to_dict()
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"results are not serialisable as strict JSON: {exc}") from None
    return atomic_write_json(path, payload)


def read_json_document(path: str | Path) -> Any:
    """The parsed JSON of a results-like file, with one-line SchemaErrors for every way it can fail."""
    return read_json(path, what="results file", error=SchemaError)


def load_results(path: str | Path) -> Results:
    return Results.from_dict(read_json_document(path), source=str(path))


def measurements_frame(results: Results | str | Path | Iterable[Results]):
    """All measurements as one pandas DataFrame: key columns plus one column per metric.

    Several results (machines, commits) stack, with `source` telling them apart; `host` is the
    measurement's host fingerprint in a file from `harness merge` (None in a file of one bench).
    """
    import pandas as pd

    if isinstance(results, (str, Path)):
        results = [load_results(results)]
    elif isinstance(results, Results):
        results = [results]
    rows = []
    for res in results:
        for m in res.measurements:
            row = {
                "source": res.source or res.created,
                "host": m.host,
                "task": m.task,
                "model": m.model,
                "backend": m.backend,
                "suite": m.suite,
                "batch_size": m.batch_size,
                "threads": m.threads,
                "options": json.dumps(m.options, sort_keys=True),
                "n_samples": len(m.samples_ns) if m.samples_ns else 0,
                "warnings": "; ".join(m.warnings),
            }
            for k, v in m.metrics.to_dict().items():
                if isinstance(v, (int, float, str, bool)):
                    row[k] = v
            for k, (lo, hi) in m.metrics.intervals().items():
                row[f"{k}_lo"], row[f"{k}_hi"] = lo, hi
            rows.append(row)
    columns = ["source", "host", "task", "model", "backend", "suite", "batch_size", "threads", "options", "n_samples", "warnings"]
    return pd.DataFrame(rows, columns=None if rows else columns)
