"""`harness merge`: results files from several hosts (or several benches of one host) as one file.

    merged = merge_results([load_results(p) for p in paths])   # -> Results
    write_results(out, merged)

Every measurement gets the fingerprint of the host it was taken on (`host`, harness/hosts.py) and the
merged file keeps `hosts`: fingerprint -> environment. Measurements of different hosts are never
combined: the report and the gate read a merged file host by host (`harness.hosts.host_views`).
Measurements of one key from the same host are pooled the way worker processes are pooled in a bench
(`harness.measure.registry.merge_runs`: the CI resamples the processes of both benches); a timed
measurement that kept no raw samples cannot be pooled, and the first is kept with a warning. Suites
that are not timed per process (accuracy, storage, memory, cold start, roofline) keep the first.

Model entries are joined by key; the same key must be the same model (equal ONNX / checkpoint sha256)
in every input, since a report puts their numbers in one row. Parity is checked on each host, so a
several-host file keeps it per host in `parity_by_host`.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

from harness.errors import SchemaError
from harness.hosts import host_environment, host_ids, host_of, host_warning
from harness.measure.merge import mark_best_throughput
from harness.measure.registry import merge_runs
from harness.results import SCHEMA, Measurement, Results

MODEL_IDENTITY = ("onnx_sha256", "checkpoint_sha256")  # what makes two entries of one key the same model


def _name(res: Results, i: int) -> str:
    return Path(res.source).name if res.source else f"input {i + 1}"


def _benches(res: Results) -> list[tuple]:
    """The benches a results file holds: its own, or for a merged file those it was merged from."""
    inner = [tuple(b) for e in (res.config or {}).get("merged_from") or [] for b in e.get("benches") or []]
    if inner:
        return inner
    env = res.environment or {}
    return [(res.created, env.get("timestamp"), len(res.measurements))]


def _check_not_same_bench(inputs: Sequence[Results]) -> None:
    """One bench given twice (the same file, a copy, or a merged file and one of its inputs) would count
    its samples twice and narrow the CIs."""
    seen: dict[tuple, int] = {}
    for i, res in enumerate(inputs):
        for stamp in _benches(res):
            if stamp in seen and seen[stamp] != i:
                j = seen[stamp]
                raise SchemaError(f"{_name(inputs[j], j)} and {_name(res, i)} hold the same bench (created "
                                  f"{stamp[0]}): merging it twice would count its samples twice")
            seen[stamp] = i


def _merge_models(inputs: Sequence[Results], several_hosts: bool) -> dict[str, dict]:
    models: dict[str, dict] = {}
    first_in: dict[str, str] = {}
    parity: dict[str, dict[str, dict]] = {}
    for i, res in enumerate(inputs):
        only_host = host_ids(res)[0] if len(host_ids(res)) == 1 else None
        for key, entry in res.models.items():
            if key not in models:
                models[key], first_in[key] = copy.deepcopy(entry), _name(res, i)
            else:
                for field in MODEL_IDENTITY:
                    a, b = models[key].get(field), entry.get(field)
                    if a is not None and b is not None and a != b:
                        raise SchemaError(
                            f"model {key!r} differs between {first_in[key]} and {_name(res, i)} ({field}): merge joins "
                            "benches of the same models; compare different models with `harness report A B`")
            by_host = entry.get("parity_by_host")
            if isinstance(by_host, dict):
                for fp, p in by_host.items():
                    parity.setdefault(key, {}).setdefault(fp, p)
            elif only_host is not None and isinstance(entry.get("parity"), dict):
                parity.setdefault(key, {}).setdefault(only_host, entry["parity"])
    if several_hosts:
        for key, by_host in parity.items():
            models[key]["parity_by_host"] = by_host
    return models


def _pool_same_host(runs_by_key: dict[tuple, list[tuple[str, Measurement]]], fp: str,
                    warnings: list[str], several_hosts: bool) -> list[Measurement]:
    out: list[Measurement] = []
    for runs in runs_by_key.values():
        if len(runs) == 1:
            out.append(runs[0][1])
            continue
        ms = [m for _, m in runs]
        try:
            pooled = merge_runs(ms)
        except (ValueError, TypeError, KeyError) as exc:  # a timed run without raw samples, an odd older file
            pooled = ms[0]
            m = ms[0]
            msg = (f"{m.suite} {m.task}/{m.model}/{m.backend}/batch {m.batch_size}: not pooled ({exc}); "
                   f"kept the one from {runs[0][0]}")
            warnings.append(host_warning(fp, msg) if several_hosts else msg)
        pooled.host = fp
        out.append(pooled)
    mark_best_throughput(out)  # a pooled sweep may have a new best batch; sweeps never span hosts
    return out


def merge_results(inputs: Sequence[Results]) -> Results:
    """One Results from several (see the module docstring). Inputs are not modified."""
    if len(inputs) < 2:
        raise SchemaError("merge needs at least two results files")
    inputs = [copy.deepcopy(r) for r in inputs]  # pooling and host tags must not touch the caller's objects
    _check_not_same_bench(inputs)
    hosts: dict[str, dict] = {}
    by_host: dict[str, dict[tuple, list[tuple[str, Measurement]]]] = {}
    merged_from = []
    for i, res in enumerate(inputs):
        for fp in host_ids(res):
            hosts.setdefault(fp, copy.deepcopy(host_environment(res, fp)))
        for m in res.measurements:
            fp = host_of(res, m)
            m.host = fp
            by_host.setdefault(fp, {}).setdefault(m.key(), []).append((_name(res, i), m))
        merged_from.append({"file": _name(res, i), "hosts": host_ids(res), "created": res.created,
                            "benches": [list(b) for b in _benches(res)], "config": res.config})
    several = len(hosts) > 1
    warnings: list[str] = []
    for i, res in enumerate(inputs):
        ids = host_ids(res)
        for w in res.warnings:  # an input of one host: its warnings are that host's
            warnings.append(host_warning(ids[0], w) if several and len(ids) == 1 else w)
    measurements: list[Measurement] = []
    for fp, runs_by_key in by_host.items():
        measurements += _pool_same_host(runs_by_key, fp, warnings, several)
    tasks: dict = {}
    for res in inputs:
        for task, summary in res.tasks.items():
            tasks.setdefault(task, summary)
    config = {**inputs[0].config, "merged_from": merged_from}
    return Results(schema=SCHEMA, environment={} if several else next(iter(hosts.values())), config=config,
                   tasks=tasks, models=_merge_models(inputs, several), measurements=measurements,
                   warnings=list(dict.fromkeys(warnings)), hosts=hosts)


__all__ = ["MODEL_IDENTITY", "merge_results"]
