"""Regression gate: compare a current results file against a baseline, rule by rule.

Default rules are ratios measured within one run (student vs teacher on the same machine at
the same time) or deterministic facts (file sizes, accuracy on a fixed test set, parity), so a
baseline recorded on one machine gates a run on another. A rule fails only when its change is
past the threshold AND significantly past it (the evidence is held against the baseline moved
by the threshold); see docs/gate-rules.md. A baseline row with no counterpart in the current file
(renamed task or model, dropped backend or batch size) is "missing" and fails the gate unless
`allow_missing`; a gate that compared nothing fails too.

    rules = load_rules("gate.json")          # or default_rules()
    results = evaluate_gate(baseline, current, rules)
    notes = [n for n in [environment_note(baseline, current)] if n]
    print(format_gate(results, notes=notes)); sys.exit(gate_exit_code(results))   # 0 pass, 1 regression
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from harness.report.derived import delta_vs_teacher, has_fast_speedup, speedups
from harness.measure.stats import mannwhitney
from harness.errors import HarnessError, OptionError, SchemaError
from harness.fileio import atomic_write_bytes
from harness.report.lookup import (
    REFERENCE, measured_accuracy, model_value, num, opts_key, parity,
    summary_accuracy, task_measurements, task_names, task_roles,
)
from harness.results import Results, load_results

VERDICTS = ("pass", "fail", "missing", "not significant", "skip")
COMPARED = ("pass", "fail", "not significant")  # verdicts of a row that compared baseline and current
DEFAULT_ALPHA = 0.01
DEFAULT_SINGLE_SEED_MAX_DROP_PTS = 20.0

# metric -> (threshold key, default threshold, enabled by default, extra keys it accepts)
RULE_METRICS: dict[str, tuple[str | None, float | None, bool, tuple[str, ...]]] = {
    "speedup": ("max_drop", 0.10, True, ()),
    "size_ratio": ("max_growth", 0.05, True, ()),
    "accuracy_delta": ("max_drop_pts", 1.0, True, ("backend", "single_seed_max_drop_pts")),
    "parity": (None, None, True, ()),
    "latency_p50": ("max_growth", 0.10, False, ()),
}
COMMON_RULE_KEYS = ("enabled", "tasks", "roles", "backends", "batch_sizes", "alpha")
TOP_KEYS = ("alpha", "batch_sizes", "rules")


@dataclass
class RuleSpec:
    metric: str
    threshold: float | None
    enabled: bool = True
    tasks: list[str] | None = None
    roles: list[str] | None = None
    backends: list[str] | None = None
    batch_sizes: str | list[int] = "common"
    alpha: float = DEFAULT_ALPHA
    backend: str = "onnxruntime"  # accuracy_delta: which measured backend to prefer ("summary" = seeds only)
    # accuracy_delta with one seed on a side: only a drop past this many points fails (cross-machine rounding)
    single_seed_max_drop_pts: float = DEFAULT_SINGLE_SEED_MAX_DROP_PTS


@dataclass
class GateRules:
    rules: list[RuleSpec]
    alpha: float = DEFAULT_ALPHA
    batch_sizes: str | list[int] = "common"

    def enabled(self) -> list[RuleSpec]:
        return [r for r in self.rules if r.enabled]


@dataclass
class RuleResult:
    rule: str
    task: str
    model: str
    backend: str
    batch: int | None
    baseline: float | None
    current: float | None
    change: float | None  # relative (0.12 = +12%) or points, per `unit`
    threshold: float | None  # signed: the change past which the rule fails (-0.10, +0.05, -1.0 pts)
    verdict: str
    unit: str = "rel"  # "rel" | "pts" | ""
    p_value: float | None = None
    ci: str | None = None
    threads: int | None = None
    note: str = ""
    missing: str = ""  # what the current file lacks ("task osuleaf", ...) when a baseline row has no counterpart

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- rules --------------------------------------------------------------------------------------

def default_rules() -> GateRules:
    return GateRules(rules=[RuleSpec(metric=m, threshold=t, enabled=on) for m, (_, t, on, _) in RULE_METRICS.items()])


def _valid_keys(metric: str) -> list[str]:
    tkey, _, _, extra = RULE_METRICS[metric]
    return ([tkey] if tkey else []) + list(COMMON_RULE_KEYS) + list(extra)


def _str_list(value: Any, what: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise OptionError(f"{where}: {what} must be a string or a list of strings, not {value!r}")


def _batch_sizes(value: Any, where: str) -> str | list[int]:
    if value == "common":
        return "common"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                 for v in value):
        return sorted(set(value))
    raise OptionError(f"{where}: batch_sizes must be \"common\" or a list of positive integers, not {value!r}")


def _alpha(value: Any, where: str) -> float:
    v = num(value)
    if v is None or not 0 < v < 1:
        raise OptionError(f"{where}: alpha must be a number between 0 and 1, not {value!r}")
    return v


def _rule(metric: Any, body: Any, defaults: GateRules, where: str) -> RuleSpec:
    if metric not in RULE_METRICS:
        raise OptionError(f"{where}: unknown gate metric {metric!r}; valid metrics: {', '.join(RULE_METRICS)}")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise OptionError(f"{where}: rule {metric!r} must be an object, not {body!r}")
    valid = _valid_keys(metric)
    unknown = [k for k in body if k not in valid and k != "metric"]
    if unknown:
        raise OptionError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in rule {metric!r}; "
                          f"valid keys: {', '.join(valid)}")
    tkey, tdefault, on, _ = RULE_METRICS[metric]
    spec = RuleSpec(metric=metric, threshold=tdefault, enabled=on, batch_sizes=defaults.batch_sizes,
                    alpha=defaults.alpha)
    w = f"{where}: rule {metric!r}"
    if tkey and tkey in body:
        t = num(body[tkey])
        if t is None or t < 0:
            raise OptionError(f"{w}: {tkey} must be a non-negative number, not {body[tkey]!r}")
        spec.threshold = t
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise OptionError(f"{w}: enabled must be true or false, not {body['enabled']!r}")
        spec.enabled = body["enabled"]
    for key in ("tasks", "roles", "backends"):
        if key in body:
            setattr(spec, key, _str_list(body[key], key, w))
    if "batch_sizes" in body:
        spec.batch_sizes = _batch_sizes(body["batch_sizes"], w)
    if "alpha" in body:
        spec.alpha = _alpha(body["alpha"], w)
    if "backend" in body:
        if not isinstance(body["backend"], str):
            raise OptionError(f"{w}: backend must be a string, not {body['backend']!r}")
        spec.backend = body["backend"]
    if "single_seed_max_drop_pts" in body:
        t = num(body["single_seed_max_drop_pts"])
        if t is None or t < 0:
            raise OptionError(f"{w}: single_seed_max_drop_pts must be a non-negative number, "
                              f"not {body['single_seed_max_drop_pts']!r}")
        spec.single_seed_max_drop_pts = t
    return spec


def parse_rules(doc: Any, where: str = "gate rules") -> GateRules:
    """Rules from a mapping: {"alpha", "batch_sizes", "rules": {metric: {...}} or [{"metric": ...}, ...]}.

    Metrics the document does not name keep their defaults (disable one with "enabled": false).
    """
    if not isinstance(doc, dict):
        raise OptionError(f"{where}: must be an object with a 'rules' field")
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise OptionError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(TOP_KEYS)}")
    out = default_rules()
    if "alpha" in doc:
        out.alpha = _alpha(doc["alpha"], where)
    if "batch_sizes" in doc:
        out.batch_sizes = _batch_sizes(doc["batch_sizes"], where)
    raw = doc.get("rules", {})
    items: list[tuple[Any, Any]]
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for i, body in enumerate(raw):
            if not isinstance(body, dict) or "metric" not in body:
                raise OptionError(f"{where}: rules[{i}] must be an object with a 'metric' field")
            items.append((body["metric"], body))
    else:
        raise OptionError(f"{where}: 'rules' must be an object keyed by metric or a list of rules")
    parsed = [_rule(metric, body, out, where) for metric, body in items]
    named = {r.metric for r in parsed}
    for r in out.rules:  # unnamed metrics take the file's global alpha / batch_sizes
        r.alpha, r.batch_sizes = out.alpha, out.batch_sizes
    out.rules = [r for r in out.rules if r.metric not in named] + parsed
    order = list(RULE_METRICS)
    out.rules.sort(key=lambda r: order.index(r.metric))
    return out


def load_rules(path: str | Path) -> GateRules:
    """Rules from a JSON or TOML file (by suffix; .toml is TOML, anything else JSON)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            tomllib = None  # type: ignore[assignment]
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise OptionError(f"gate rules file not found: {path}") from None
    except OSError as exc:
        raise OptionError(f"cannot read gate rules file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            if tomllib is None:
                raise OptionError(f"reading TOML gate rules needs Python 3.11+ or the tomli package: {path}")
            doc = tomllib.loads(raw.decode("utf-8"))
        else:
            doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise OptionError(f"gate rules file is not UTF-8 text: {path}") from None
    except json.JSONDecodeError as exc:
        raise OptionError(f"gate rules file is not valid JSON: {path} ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise OptionError(f"gate rules file is not valid TOML: {path} ({exc})") from None
    return parse_rules(doc, where=str(path))


# -- evaluation ---------------------------------------------------------------------------------

def _as_results(x: Results | str | Path, what: str) -> Results:
    if isinstance(x, Results):
        return x
    if isinstance(x, (str, Path)):
        return load_results(x)
    raise SchemaError(f"{what}: expected results or a path, not {type(x).__name__}")


def _allowed(value: str, allowed: list[str] | None) -> bool:
    return allowed is None or value in allowed


def _tasks(baseline: Results, current: Results, spec: RuleSpec) -> list[str]:
    names = list(dict.fromkeys(task_names(baseline) + task_names(current)))
    return [t for t in names if _allowed(t, spec.tasks)]


def _roles(baseline: Results, current: Results, task: str, spec: RuleSpec, students: bool) -> list[str]:
    roles: list[str] = []
    for res in (baseline, current):
        if task in task_names(res):
            roles += task_roles(res, task)
    roles = list(dict.fromkeys(roles))
    if students:
        roles = [r for r in roles if r != REFERENCE]
    return [r for r in roles if _allowed(r, spec.roles)]


def _fmt_ci(ci: tuple[float, float] | None, unit: str = "") -> str:
    return "-" if ci is None else f"[{ci[0]:.3g}, {ci[1]:.3g}]{unit}"


def _batches(spec: RuleSpec, base: Iterable[int]) -> list[int]:
    """Batch sizes a timed rule compares: "common" = every one the baseline measured (one the current run
    lacks is a missing row; one only the current run has is new and not compared), else the listed ones."""
    if spec.batch_sizes == "common":
        return sorted(set(base))
    return list(spec.batch_sizes)


def _missing(r: RuleResult, what: str) -> RuleResult:
    """Mark a baseline row that has no counterpart in the current file (labelled in evaluate_gate)."""
    r.verdict = "missing"
    r.note += f"no {what} in current"
    return r


@dataclass
class _Obs:
    value: float
    ci: tuple[float, float] | None = None
    ratios: np.ndarray | None = None  # per-round teacher/student ratios
    samples: list[int] | None = None
    basis: str = ""


def _speedup_obs(res: Results, task: str, fast: bool = False) -> dict[tuple, _Obs]:
    """(role, backend, batch, threads, opts) -> speedup teacher/student (harness.derived.speedups)."""
    return {k: _Obs(sp.value, sp.ci, sp.round_ratios(), basis=sp.basis) for k, sp in speedups(res, task, fast).items()}


def _latency_obs(res: Results, task: str) -> dict[tuple, _Obs]:
    out = {}
    for m in task_measurements(res, task, "latency"):
        p50 = m.metrics.p50_ms
        if p50 is not None:
            out[(m.model, m.backend, m.batch_size, m.threads, opts_key(m))] = _Obs(
                p50, m.metrics.median_ci95_ms, samples=m.samples_ns, basis="latency")
    return out


def _compare_timed(spec: RuleSpec, baseline: Results, current: Results, obs_fn, students: bool,
                   higher_is_better: bool) -> list[RuleResult]:
    """Shared logic of speedup (higher better) and latency_p50 (lower better)."""
    results = []
    for task in _tasks(baseline, current, spec):
        base = _obs_or_empty(baseline, task, obs_fn)
        cur = _obs_or_empty(current, task, obs_fn)
        groups = list(dict.fromkeys((k[0], k[1], k[3], k[4]) for k in list(base) + list(cur)))
        roles = _roles(baseline, current, task, spec, students)
        for role in roles:
            if not any(g[0] == role for g in groups):
                results.append(RuleResult(spec.metric, task, role, "-", None, None, None, None,
                                          _signed_threshold(spec), "skip", note="no measurement in either run"))
        for role, backend, threads, opts in groups:
            if role not in roles or not _allowed(backend, spec.backends):
                continue
            bb = [k[2] for k in base if (k[0], k[1], k[3], k[4]) == (role, backend, threads, opts)]
            batches = _batches(spec, bb)
            if not batches:  # measured only in the current run: new, nothing to compare it with
                results.append(RuleResult(spec.metric, task, role, backend, None, None, None, None,
                                          _signed_threshold(spec), "skip", threads=threads,
                                          note="no measurement in baseline (new in current)"))
                continue
            for batch in batches:
                b = base.get((role, backend, batch, threads, opts))
                c = cur.get((role, backend, batch, threads, opts))
                r = RuleResult(spec.metric, task, role, backend, batch, b.value if b else None,
                               c.value if c else None, None, _signed_threshold(spec), "skip", threads=threads)
                if opts:
                    r.note = f"options {opts}; "
                if b is None:
                    r.note += f"no measurement in baseline at batch {batch}"
                elif c is None:
                    _missing(r, f"measurement at batch {batch}, {threads} thread(s)")
                else:
                    _judge_timed(r, spec, b, c, higher_is_better)
                results.append(r)
    return results


def _obs_or_empty(res: Results, task: str, fn) -> dict[tuple, _Obs]:
    return fn(res, task) if task in task_names(res) else {}


def _signed_threshold(spec: RuleSpec) -> float | None:
    if spec.threshold is None:
        return None
    return -spec.threshold if spec.metric in ("speedup", "accuracy_delta") else spec.threshold


def _judge_timed(r: RuleResult, spec: RuleSpec, b: _Obs, c: _Obs, higher_is_better: bool) -> None:
    """Fail only when the change is past the threshold and it is significant that it is past it.

    The evidence is held against the baseline moved by the threshold (x0.9 for a 10% drop, x1.1 for
    10% growth): the current CI must clear the baseline CI by the threshold, or a one-sided
    Mann-Whitney test of current vs threshold-shifted baseline must give p < alpha. Two runs of
    the same models differ a little even when their CIs are tight (the machine is never the
    same twice); only a change beyond the threshold, established beyond noise, fails.
    """
    if b.value == 0:
        r.note += "baseline value is zero"
        return
    r.change = c.value / b.value - 1
    crossed = r.change < r.threshold if higher_is_better else r.change > r.threshold
    f = 1 + r.threshold  # the baseline moved to the threshold
    alt = "less" if higher_is_better else "greater"
    if b.ci and c.ci:
        r.ci = f"base {_fmt_ci(b.ci)} cur {_fmt_ci(c.ci)}"
    if b.ratios is not None and c.ratios is not None:
        r.p_value = mannwhitney(list(c.ratios), list(np.asarray(b.ratios) * f), alternative=alt, cap=5000)
    elif b.samples and c.samples:
        r.p_value = mannwhitney(c.samples, list(np.asarray(b.samples, dtype=float) * f), alternative=alt, cap=5000)
    if b.ci and c.ci:
        if higher_is_better:
            disjoint, significant = c.ci[1] < b.ci[0], c.ci[1] < b.ci[0] * f
        else:
            disjoint, significant = c.ci[0] > b.ci[1], c.ci[0] > b.ci[1] * f
        how = ("CIs apart by more than the threshold" if significant else
               "CIs disjoint, not apart by the threshold" if disjoint else "CIs overlap")
    elif r.p_value is not None:
        significant = r.p_value < spec.alpha
        how = f"Mann-Whitney vs threshold-shifted baseline p {'<' if significant else '>='} {spec.alpha:g}"
    else:
        significant = True
        how = "no CI or samples: threshold only"
    basis = c.basis if c.basis == b.basis else f"{b.basis} vs {c.basis}"
    r.note += f"{basis}; {how}" if basis else how
    if not crossed:
        r.verdict = "pass"
    else:
        r.verdict = "fail" if significant else "not significant"


def _rule_speedup(spec: RuleSpec, baseline: Results, current: Results) -> list[RuleResult]:
    fast = has_fast_speedup(baseline) and has_fast_speedup(current)
    return _compare_timed(spec, baseline, current, lambda res, task: _speedup_obs(res, task, fast),
                          students=True, higher_is_better=True)


def _rule_latency(spec: RuleSpec, baseline: Results, current: Results) -> list[RuleResult]:
    return _compare_timed(spec, baseline, current, _latency_obs, students=False, higher_is_better=False)


def _rule_size(spec: RuleSpec, baseline: Results, current: Results) -> list[RuleResult]:
    results = []
    for task in _tasks(baseline, current, spec):
        for role in _roles(baseline, current, task, spec, students=True):
            vals = []
            for res in (baseline, current):
                s = model_value(res, task, role, "onnx_bytes") if task in task_names(res) else None
                t = model_value(res, task, REFERENCE, "onnx_bytes") if task in task_names(res) else None
                vals.append(s / t if s is not None and t else None)
            b, c = vals
            r = RuleResult("size_ratio", task, role, "any", None, b, c, None, spec.threshold, "skip")
            if b is None:
                r.note = f"no ONNX size of {role} or teacher in baseline"
            elif c is None:
                _missing(r, f"ONNX size of {role} or teacher")
            else:
                r.change = c / b - 1 if b else None
                if r.change is None:
                    r.note = "baseline ratio is zero"
                else:
                    r.verdict = "fail" if r.change > spec.threshold else "pass"
                    r.note = "onnx_bytes student/teacher; deterministic"
            results.append(r)
    return results


def _accuracy_delta(res: Results, task: str, role: str, pref: str) -> tuple[float | None, str]:
    if task not in task_names(res):
        return None, ""
    if pref != "summary":
        a, t = measured_accuracy(res, task, role, pref), measured_accuracy(res, task, REFERENCE, pref)
        if a is not None and t is not None:
            return a - t, pref
    sa, st = summary_accuracy(res, task, role), summary_accuracy(res, task, REFERENCE)
    if sa and st:
        return sa["mean"] - st["mean"], "summary"
    return None, ""


def _seed_delta(res: Results, task: str, role: str) -> dict[str, Any]:
    """The training seeds' view of student - teacher accuracy (diff, ci, per_seed); {} with one seed or none."""
    if task not in task_names(res):
        return {}
    d = delta_vs_teacher(res, task, role)
    ci = d.get("ci")
    if ci is None or (ci[0] == ci[1] and len(d.get("per_seed") or []) < 2):  # one seed: no spread to judge by
        return {}
    return d


def _rule_accuracy(spec: RuleSpec, baseline: Results, current: Results) -> list[RuleResult]:
    from scipy import stats

    results = []
    for task in _tasks(baseline, current, spec):
        for role in _roles(baseline, current, task, spec, students=True):
            b, bsrc = _accuracy_delta(baseline, task, role, spec.backend)
            c, csrc = _accuracy_delta(current, task, role, spec.backend)
            if b is not None and c is not None and bsrc != csrc:  # compare like with like
                b, bsrc = _accuracy_delta(baseline, task, role, "summary")
                c, csrc = _accuracy_delta(current, task, role, "summary")
            src = csrc or bsrc or "-"
            r = RuleResult("accuracy_delta", task, role, src, None, b, c, None, -spec.threshold, "skip", unit="pts")
            if b is None or c is None:
                if b is None:
                    r.note = f"no accuracy of {role} and teacher in baseline"
                else:
                    _missing(r, f"accuracy of {role} and teacher")
                results.append(r)
                continue
            r.change = c - b
            crossed = r.change < -spec.threshold
            bd, cd = _seed_delta(baseline, task, role), _seed_delta(current, task, role)
            if bd.get("ci") and cd.get("ci"):
                r.ci = f"base {_fmt_ci(bd['ci'], ' pts')} cur {_fmt_ci(cd['ci'], ' pts')}"
                # the current CI must lie below the baseline CI moved down by the threshold
                significant = cd["ci"][1] < bd["ci"][0] - spec.threshold
                disjoint = cd["ci"][1] < bd["ci"][0]
                how = ("seed CIs apart by more than the threshold" if significant else
                       "seed CIs disjoint, not apart by the threshold" if disjoint else "seed CIs overlap")
                bs, cs = bd.get("per_seed") or [], cd.get("per_seed") or []
                if len(bs) >= 2 and len(cs) >= 2 and (np.std(bs) > 0 or np.std(cs) > 0):
                    shifted = list(np.asarray(bs) - spec.threshold)
                    r.p_value = float(stats.ttest_ind(cs, shifted, equal_var=False, alternative="less").pvalue)
                r.verdict = "pass" if not crossed else ("fail" if significant else "not significant")
            else:
                # One training run per side. Training is deterministic on one machine but not across CPU
                # types (AVX2 and AVX-512 kernels round differently, and epochs amplify it), so a single
                # run's difference cannot separate a regression from rounding: only a drop too large to
                # be rounding fails.
                one = "baseline and current" if not bd and not cd else "baseline" if not bd else "current"
                limit = max(spec.single_seed_max_drop_pts, spec.threshold)
                if not crossed:
                    r.verdict, how = "pass", f"one seed in {one}"
                elif r.change < -limit:
                    r.verdict = "fail"
                    how = (f"one seed in {one}, but the drop is past single_seed_max_drop_pts -{limit:g} pts: "
                           "too large to be cross-machine rounding")
                else:
                    r.verdict = "not significant"
                    how = (f"one seed in {one} cannot separate a regression from cross-machine rounding; "
                           f"train with --seeds 0,1,2 for seed CIs (one seed fails only past -{limit:g} pts)")
            r.note = f"{src} accuracy; {how}"
            results.append(r)
    return results


def _rule_parity(spec: RuleSpec, baseline: Results, current: Results) -> list[RuleResult]:
    results = []
    for task in _tasks(baseline, current, spec):
        for role in _roles(baseline, current, task, spec, students=False):
            bp = parity(baseline, task, role) if task in task_names(baseline) else None
            cp = parity(current, task, role) if task in task_names(current) else None
            bv = None if bp is None or "passed" not in bp else float(bool(bp["passed"]))
            cv = None if cp is None or "passed" not in cp else float(bool(cp["passed"]))
            r = RuleResult("parity", task, role, "onnxruntime", None, bv, cv, None, None, "skip", unit="")
            if cv is None and bv is not None:
                _missing(r, "parity check")
            elif cv is None:
                r.note = "no parity check in current"
            elif cv:
                r.verdict, r.note = "pass", "ONNX Runtime matches PyTorch"
            else:
                bits = [f"{k}={cp[k]:.3g}" for k in ("max_abs_err", "max_rel_err", "top1_agreement")
                        if num(cp.get(k)) is not None]
                r.verdict, r.note = "fail", "parity failed: " + ", ".join(bits)
            results.append(r)
    return results


EVALUATORS = {
    "speedup": _rule_speedup,
    "size_ratio": _rule_size,
    "accuracy_delta": _rule_accuracy,
    "parity": _rule_parity,
    "latency_p50": _rule_latency,
}


def _missing_label(r: RuleResult, current: Results) -> str:
    """The coarsest thing the current file lacks for a missing row: its task, its model, any timing, a
    backend, a thread count or a batch size it timed nowhere, else the rule's data for that task."""
    if r.task not in task_names(current):
        return f"task {r.task}"
    if r.model not in task_roles(current, r.task):
        return f"model {r.model} of task {r.task}"
    if r.rule in ("speedup", "latency_p50"):
        ms = task_measurements(current, r.task)
        timed = [m for m in ms if m.suite in ("paired", "latency")]
        if not timed:
            return f"paired/latency timings of task {r.task}"
        if r.backend not in {m.backend for m in ms}:
            return f"backend {r.backend} of task {r.task}"
        if r.threads is not None and r.threads not in {m.threads for m in timed}:
            return f"{r.threads}-thread timings of task {r.task}"
        if r.batch is not None and r.batch not in {m.batch_size for m in timed}:
            return f"batch size {r.batch} of task {r.task}"
    return f"{r.rule} data of task {r.task}"


def evaluate_gate(baseline: Results | str | Path, current: Results | str | Path,
                  rules: GateRules | dict | None = None, allow_missing: bool = False) -> list[RuleResult]:
    """Every enabled rule for every task/model/backend/batch it covers.

    Data absent from the baseline (or from both) -> "skip". A baseline row that the current file has no
    counterpart for (renamed task or model, dropped backend, thread count or batch size) -> "missing",
    which fails the gate; with `allow_missing` it is a "skip" whose note says what is missing. Rows only
    the current file has (a new model) are not compared.
    """
    baseline = _as_results(baseline, "baseline")
    current = _as_results(current, "current")
    if rules is None:
        rules = default_rules()
    elif isinstance(rules, dict):
        rules = parse_rules(copy.deepcopy(rules))
    elif not isinstance(rules, GateRules):
        raise OptionError(f"gate rules must be GateRules or a mapping, not {type(rules).__name__}")
    out: list[RuleResult] = []
    for spec in rules.enabled():
        out += EVALUATORS[spec.metric](spec, baseline, current)
    for r in out:
        if r.verdict == "missing":
            r.missing = _missing_label(r, current)
            if allow_missing:
                r.verdict = "skip"
                r.note += f" (missing in current: {r.missing}; allowed)"
    return out


def nothing_compared(results: list[RuleResult]) -> bool:
    """True when no rule compared a baseline value with a current one. `parity` checks the current file
    alone, so it counts only when no comparing rule produced a row at all."""
    pool = [r for r in results if r.rule != "parity"] or results
    return not any(r.verdict in COMPARED for r in pool)


def gate_exit_code(results: list[RuleResult]) -> int:
    """0 when no rule failed, 1 on a regression, on baseline rows missing from the current file, or when
    nothing was compared. (Bad input raises HarnessError: exit 2 in the CLI.)"""
    if any(r.verdict in ("fail", "missing") for r in results) or nothing_compared(results):
        return 1
    return 0


def gate_summary(results: list[RuleResult]) -> str:
    counts = {v: sum(1 for r in results if r.verdict == v) for v in VERDICTS}
    status = "FAIL" if gate_exit_code(results) else "PASS"
    parts = [f"{counts['fail']} failed", f"{counts['missing']} missing", f"{counts['not significant']} not significant",
             f"{counts['pass']} passed", f"{counts['skip']} skipped"]
    text = f"gate {status}: " + ", ".join(parts)
    if not results:
        text += " (no rules enabled: nothing was compared)"
    elif nothing_compared(results):
        text += " (nothing was compared: do the two files measure the same tasks and models?)"
    return text


def missing_lines(results: list[RuleResult]) -> list[str]:
    """One line per thing the current file lacks (a task, a model, a backend, ...), naming the rules it
    starves; missing rows that were allowed say so."""
    groups: dict[tuple[str, bool], list[RuleResult]] = {}
    for r in results:
        if r.missing:
            groups.setdefault((r.missing, r.verdict == "missing"), []).append(r)
    order = ("task ", "model ", "paired/latency ", "backend ", "batch size ")  # coarsest first

    def rank(key: tuple[str, bool]) -> int:
        label = key[0]
        hit = [i for i, p in enumerate(order) if label.startswith(p)]
        return hit[0] if hit else (len(order) if "-thread" in label else len(order) + 1)

    lines = []
    for (label, failing), rows in sorted(groups.items(), key=lambda kv: rank(kv[0])):
        rules = ", ".join(dict.fromkeys(r.rule for r in rows))
        head = "MISSING in current" if failing else "missing in current, skipped (allowed)"
        if label.startswith(tuple(f"{m} data of" for m in RULE_METRICS)):  # no coarser cause: list the rows
            items = []
            for r in rows:
                bits = [r.model] + ([r.backend] if r.backend not in ("-", "any", "") else []) + \
                       ([f"batch {r.batch}"] if r.batch is not None else [])
                items.append(" ".join(bits))
            detail = ", ".join(dict.fromkeys(items))
            lines.append(f"{head}: {label}: {detail}")
        else:
            n = len(rows)
            lines.append(f"{head}: {label} (baseline rows of {rules}: {n})")
    return lines


def _fmt_val(v: float | None, rule: str) -> str:
    if v is None:
        return "-"
    if rule == "parity":
        return "pass" if v else "FAIL"
    if rule == "accuracy_delta":
        return f"{v:+.2f} pts"
    if rule == "latency_p50":
        return f"{v:.3g} ms"
    return f"{v:.3g}x" if rule in ("speedup", "size_ratio") else f"{v:.4g}"


def _fmt_change(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:+.2f} pts" if unit == "pts" else f"{v * 100:+.1f}%"


def format_gate(results: list[RuleResult], tablefmt: str = "simple", notes: Iterable[str] = ()) -> str:
    """One row per rule evaluation that is not about missing data; then one line per thing missing from
    the current file (grouped, see `missing_lines`), the `notes` (e.g. `environment_note`), and a
    summary line."""
    from tabulate import tabulate

    rows = []
    for r in results:
        if r.missing:
            continue
        p = "" if r.p_value is None else ("<0.001" if r.p_value < 0.001 else f"{r.p_value:.2g}")
        rows.append([r.rule, r.task, r.model, r.backend, "-" if r.batch is None else r.batch,
                     _fmt_val(r.baseline, r.rule), _fmt_val(r.current, r.rule), _fmt_change(r.change, r.unit),
                     "must pass" if r.rule == "parity" else _fmt_change(r.threshold, r.unit), p, r.ci or "",
                     r.verdict.upper() if r.verdict == "fail" else r.verdict, r.note])
    headers = ["rule", "task", "model", "backend", "batch", "baseline", "current", "change", "threshold", "p",
               "CI", "verdict", "note"]
    table = tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True) if rows else ""
    extra = missing_lines(results) + [n for n in notes if n]
    return (table + "\n\n" if table else "") + "".join(f"{ln}\n" for ln in extra) + gate_summary(results) + "\n"


# -- environment --------------------------------------------------------------------------------

def _env(res: Results) -> dict[str, Any]:
    return res.environment if isinstance(res.environment, dict) else {}


def _isa(env: dict[str, Any]) -> list[str] | None:
    v = env.get("cpu_isa")
    if isinstance(v, str):
        v = v.replace(",", " ").split()
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return sorted(set(v))
    return None


def _versions(env: dict[str, Any]) -> dict[str, str]:
    v = env.get("versions")
    out = {str(k): str(x) for k, x in v.items() if x is not None} if isinstance(v, dict) else {}
    if env.get("python") is not None:
        out.setdefault("python", str(env["python"]))
    return out


def environment_differences(baseline: Results | str | Path, current: Results | str | Path
                            ) -> tuple[list[str], list[str]]:
    """(differences, not recorded) between the two files' environments: CPU model, CPU vector ISA flags,
    machine architecture, library versions. Keys an older file lacks are listed as not recorded, never
    compared."""
    be, ce = _env(_as_results(baseline, "baseline")), _env(_as_results(current, "current"))
    diffs: list[str] = []
    unrecorded: list[str] = []

    def side_missing(key: str, b: Any, c: Any) -> None:
        if (b is None) != (c is None):
            unrecorded.append(f"{key} not recorded in {'baseline' if b is None else 'current'}")

    for key, b, c in (("cpu_model", be.get("cpu_model") or be.get("cpu"), ce.get("cpu_model") or ce.get("cpu")),
                      ("machine", be.get("machine"), ce.get("machine"))):
        if b is not None and c is not None and str(b) != str(c):
            diffs.append(f"{key} {b} -> {c}")
        elif key == "cpu_model":
            side_missing(key, b, c)
    bi, ci = _isa(be), _isa(ce)
    if bi is not None and ci is not None and bi != ci:
        if len(bi) + len(ci) <= 12:
            diffs.append(f"cpu_isa baseline {','.join(bi) or '-'} current {','.join(ci) or '-'}")
        else:
            only_b, only_c = [x for x in bi if x not in ci], [x for x in ci if x not in bi]
            diffs.append(f"cpu_isa only in baseline {','.join(only_b) or '-'}, only in current {','.join(only_c) or '-'}")
    else:
        side_missing("cpu_isa", bi, ci)
    bv, cv = _versions(be), _versions(ce)
    for lib in dict.fromkeys(list(bv) + list(cv)):
        if lib in bv and lib in cv and bv[lib] != cv[lib]:
            diffs.append(f"{lib} {bv[lib]} -> {cv[lib]}")
    has_b, has_c = isinstance(be.get("versions"), dict), isinstance(ce.get("versions"), dict)
    if has_b != has_c:
        unrecorded.append(f"library versions not recorded in {'baseline' if not has_b else 'current'}")
    return diffs, unrecorded


def environment_note(baseline: Results | str | Path, current: Results | str | Path) -> str:
    """One line naming every environment difference between baseline and current, "" when none."""
    diffs, unrecorded = environment_differences(baseline, current)
    if diffs:
        return ("environment differs: " + "; ".join(diffs + unrecorded) + ": timing rules compare ratios within "
                "each run and still apply; accuracy rules judge by seed CIs (one seed fails only past "
                "single_seed_max_drop_pts)")
    if unrecorded:
        return "environment: " + "; ".join(unrecorded) + " (older file: cannot tell whether the machines match)"
    return ""


def update_baseline(current_path: str | Path, baseline_path: str | Path) -> Path:
    """Copy a current results file over the baseline, atomically, after checking it loads."""
    current_path = Path(current_path)
    load_results(current_path)  # raises SchemaError on a bad or foreign file
    try:
        data = current_path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"cannot read {current_path}: {exc.strerror or exc}") from None
    return atomic_write_bytes(baseline_path, data)


__all__ = ["GateRules", "RuleResult", "RuleSpec", "RULE_METRICS", "default_rules", "environment_differences",
           "environment_note", "evaluate_gate", "format_gate", "gate_exit_code", "gate_summary", "load_rules",
           "missing_lines", "nothing_compared", "parse_rules", "update_baseline"]
