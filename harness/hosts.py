"""Which machine a measurement was taken on: the host fingerprint, and a merged file seen host by host.

A host fingerprint is a short hash of the environment fields that decide what a timing (and the
kernels, and so the rounding) can be: CPU model, vector ISA flags, core counts, machine architecture,
Python and the numeric libraries' versions. Timestamps, host names, load, git commit and thread
settings are left out, so two benches on one machine (or two identical machines) share a fingerprint.

A results file from `harness merge` keeps `hosts` (fingerprint -> environment) and a `host` key on
every measurement (docs/results-schema.md). `host_views` splits such a file into one Results per host,
so the report and the gate, which work per Results, never pick or pool numbers across hosts.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from typing import Any

from harness.results import Measurement, Results

FINGERPRINT_CHARS = 12
FINGERPRINT_VERSIONS = ("torch", "onnxruntime", "onnx", "numpy")
HOST_WARNING = re.compile(r"host ([0-9a-f]{%d}): " % FINGERPRINT_CHARS)  # a merged file's warning of one host


def host_identity(env: dict[str, Any] | None) -> dict[str, Any]:
    """The identity-relevant fields of an environment block (`harness.measure.environment.collect()`);
    a field an older file lacks is None (so it cannot match a file that recorded it)."""
    env = env if isinstance(env, dict) else {}
    isa = env.get("cpu_isa")
    versions = env.get("versions") if isinstance(env.get("versions"), dict) else {}
    return {
        "cpu_model": env.get("cpu_model") or env.get("cpu"),  # pytest-benchmark input and older tools: "cpu"
        "cpu_isa": sorted(str(f) for f in isa) if isinstance(isa, list) else None,
        "physical_cores": env.get("physical_cores"),
        "logical_cores": env.get("logical_cores"),
        "machine": env.get("machine"),
        "python": env.get("python"),
        "versions": {p: None if versions.get(p) is None else str(versions[p]) for p in FINGERPRINT_VERSIONS},
    }


def host_fingerprint(env: dict[str, Any] | None) -> str:
    """12 hex digits of the sha256 of `host_identity(env)` as canonical JSON: stable across runs."""
    canonical = json.dumps(host_identity(env), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def host_warning(fingerprint: str, message: str) -> str:
    """A warning of one host in a several-host file; its per-host view shows it without the tag."""
    return f"host {fingerprint}: {message}"


def host_label(env: dict[str, Any] | None, fingerprint: str) -> str:
    """How a reader tells hosts apart: "<CPU model> · <fingerprint>"."""
    cpu = host_identity(env)["cpu_model"] or "unknown CPU"
    return f"{cpu} · {fingerprint}"


def host_of(res: Results, m: Measurement) -> str:
    """The fingerprint of the host `m` was measured on: its own `host`, else the file's environment's."""
    return m.host or host_fingerprint(res.environment)


def host_ids(res: Results) -> list[str]:
    """The fingerprints a file holds, in the order its measurements (then its `hosts` map) name them."""
    seen: dict[str, None] = {}
    for m in res.measurements:
        seen[host_of(res, m)] = None
    for fp in res.hosts:
        seen[fp] = None
    return list(seen) or [host_fingerprint(res.environment)]


def host_environment(res: Results, fingerprint: str) -> dict[str, Any]:
    env = res.hosts.get(fingerprint)
    return env if isinstance(env, dict) else res.environment


def host_views(res: Results) -> list[tuple[str, Results]]:
    """(fingerprint, Results of that host alone) per host. A file of one host is its own view,
    unchanged; each view of a several-host file has that host's environment, measurements, parity
    (`parity_by_host`) and warnings, and its `host` set (labels in the report and the gate)."""
    ids = host_ids(res)
    if len(ids) == 1:
        return [(ids[0], res)]
    return [(fp, _view(res, fp)) for fp in ids]


def _view(res: Results, fp: str) -> Results:
    models = {}
    for key, entry in res.models.items():
        entry = dict(entry)
        by_host = entry.pop("parity_by_host", None)
        if isinstance(by_host, dict):  # parity is checked on each host: show this host's, or none
            entry.pop("parity", None)
            if isinstance(by_host.get(fp), dict):
                entry["parity"] = by_host[fp]
        models[key] = entry
    warnings = []
    for w in res.warnings:
        tag = HOST_WARNING.match(w)
        if tag is None or tag.group(1) == fp:
            warnings.append(w[tag.end():] if tag else w)
    return replace(res, environment=host_environment(res, fp), models=models, warnings=warnings, hosts={},
                   measurements=[m for m in res.measurements if host_of(res, m) == fp], host=fp)


__all__ = ["FINGERPRINT_VERSIONS", "HOST_WARNING", "host_warning", "host_environment", "host_fingerprint", "host_identity",
           "host_ids", "host_label", "host_of", "host_views"]
