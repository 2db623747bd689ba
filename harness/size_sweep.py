"""`harness sweep --student-scale ... | --student-widths ...`: students of several sizes, with and without
KD, as a Pareto table of validation accuracy against parameters, MACs and measured latency.

Selection happens on a validation split only. The split is carved (stratified) from the training data
exactly as the recipe sweep carves it (`harness.sweep.validation_view`). The teacher is trained once on
the fit part; every accuracy in the output, the teacher's included, is measured on the validation part,
and the test split is never read.

Work is split into independent units, one per (size, seed, role), each an executor job
(`harness.train.jobs.role_job`): `--executor local|pool|ray` runs them, finished ones are kept in
OUT/.jobs and a rerun resumes.

Latency: each size's architecture (and the teacher's) is exported to ONNX (`harness.export.export_onnx`)
and timed at batch 1 with ONNX Runtime on one thread by the measuring engine's own timer
(`LocalTimer` -> `time_callable`, the quick timing windows of `harness bench --quick`). Models are
timed one at a time in this process after all training is done. The timed model is a fresh build of the
size's config: the time a dense CNN takes does not depend on its weight values.

Pareto flag (KD student): a size is on the front when no other size's KD student is at least as good
on all three counts (mean validation accuracy up, parameters down, batch-1 p50 latency down) and
strictly better on one. Only students compete; the teacher is the reference.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from harness.errors import OptionError
from harness.fileio import atomic_write_json, atomic_write_text, ensure_writable_dir
from harness.options import parse_list
from harness.tasks.base import Dataset
from harness.train.trainer import TrainConfig

if TYPE_CHECKING:
    from harness.executor import Executor

log = logging.getLogger(__name__)

SIZE_SWEEP_SCHEMA = "kd-harness/size-sweep/1"
ROLES = ("student_scratch", "student_kd")
PARETO_DEFINITION = (
    "KD student of a size is Pareto-optimal when no other size's KD student has mean validation accuracy "
    ">= it, parameters <= it and batch-1 p50 latency <= it, with at least one strictly better; the "
    "teacher is not a competitor")
# The recipe sweep's grid options, as cli.py defaults them: a size sweep trains one recipe, so a
# changed grid option is a mistake the user should hear about.
GRID_DEFAULTS = {"temperatures": "1,2,4,8", "alphas": "0.1,0.5,0.9", "kd_losses": ["hinton"]}


# --------------------------------------------------------------------------- option parsing

def parse_scales(text: str) -> list[float]:
    """`--student-scale 0.25,0.5,1,2`: positive finite multipliers of the default student's widths."""
    vals = parse_list(text, "--student-scale", float, "positive numbers")
    for v in vals:
        if not math.isfinite(v) or v <= 0:
            raise OptionError(f"--student-scale values must be positive numbers, got {text!r}")
    if len(set(vals)) != len(vals):
        raise OptionError(f"--student-scale has duplicates: {text!r}")
    return vals


def parse_widths(text: str) -> list[list[int]]:
    """`--student-widths 6-12,12-24,24-48`: sizes separated by commas (or semicolons), each size's layer
    widths joined by hyphens, every width a positive integer."""
    want = "sizes separated by commas, each a hyphen-joined list of positive integers, e.g. 6-12,12-24"
    raw = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if not raw or any(p == "" for p in raw):
        raise OptionError(f"--student-widths must be {want}; got {text!r}")
    out: list[list[int]] = []
    for part in raw:
        items = [s.strip() for s in part.split("-")]
        if any(not (s.isascii() and s.isdigit()) or int(s) < 1 for s in items):
            raise OptionError(f"--student-widths must be {want}; {part!r} in {text!r} is not")
        out.append([int(s) for s in items])
    if len({tuple(w) for w in out}) != len(out):
        raise OptionError(f"--student-widths has duplicates: {text!r}")
    return out


def parse_within(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise OptionError(f"--within-pts must be a number >= 0 (accuracy points), got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- sizes

@dataclass(frozen=True)
class StudentSize:
    """One student architecture of the sweep: a label, its widths, the scales that produced it (none
    for explicit widths), and its full model config."""

    label: str
    widths: tuple[int, ...]
    config: dict = field(hash=False, compare=False)
    scales: tuple[float, ...] = ()
    note: str | None = None


def scaled_widths(widths: Sequence[int], scale: float, num_classes: int) -> list[int]:
    """Each width times `scale`, rounded half up to an int >= 1, then widened so that no layer is
    narrower than the head (`kd_models.registry._fit_head`, the rule every default student follows)."""
    from kd_models.registry import _fit_head

    scaled = [max(1, int(math.floor(w * scale + 0.5))) for w in widths]
    return _fit_head(scaled, num_classes)


def _with_widths(base: dict, widths: list[int]) -> dict:
    """`base` (a default student config) with other widths; per-layer lists follow the new depth."""
    import kd_models

    cfg = dict(base)
    family = cfg["family"]
    n_old, n_new = len(base["widths"]), len(widths)
    if family == "resnet1d":
        # kernels are per conv inside every block (depth-independent); the first block's stride is the
        # length-dependent one, every later block halves the length again (as the defaults do)
        cfg["strides"] = [base["strides"][0]] + [2] * (n_new - 1)
    elif family == "c3d":
        if n_new != n_old:
            raise OptionError(f"--student-widths for a 3D ({family}) student needs exactly {n_old} widths per size "
                              f"(one per stage: convs and pools are per stage), got {n_new}")
    else:  # pragma: no cover - the default students are resnet1d and c3d
        raise OptionError(f"a size sweep cannot resize a {family} student")
    cfg["widths"] = list(widths)
    return kd_models.validate_config(cfg)


def _fmt_scale(s: float) -> str:
    return f"x{s:g}"


def student_sizes(base: dict, num_classes: int, *, scales: list[float] | None = None,
                  widths: list[list[int]] | None = None) -> list[StudentSize]:
    """The sizes to train, smallest parameter count first. Scales that land on the same widths after
    rounding and `_fit_head` are one size (trained once; every such scale is recorded)."""
    if bool(scales) == bool(widths):
        raise OptionError("give one of --student-scale or --student-widths (not both) for a size sweep")
    found: dict[tuple[int, ...], StudentSize] = {}
    if scales:
        for s in scales:
            w = tuple(scaled_widths(base["widths"], s, num_classes))
            prev = found.get(w)
            if prev is not None:
                log.warning(f"student scale {s:g} gives the same widths {list(w)} as {', '.join(map(_fmt_scale, prev.scales))} "
                            f"(rounding, and no layer narrower than the {num_classes}-class head): trained once")
                found[w] = StudentSize(prev.label, w, prev.config, prev.scales + (s,), prev.note)
                continue
            found[w] = StudentSize(_fmt_scale(s), w, _with_widths(base, list(w)), (s,))
    else:
        for w_list in widths or []:
            w = tuple(w_list)
            note = None
            if w[-1] < num_classes:
                note = (f"last width {w[-1]} is narrower than the {num_classes}-class head (taken as given; "
                        f"scaled sizes never are)")
                log.warning(f"student widths {'-'.join(map(str, w))}: {note}")
            found[w] = StudentSize("-".join(map(str, w)), w, _with_widths(base, list(w)), (), note)
    return list(found.values())


# --------------------------------------------------------------------------- independent units

@dataclass(frozen=True)
class StudentUnit:
    """One training job: a student of one size, one seed, one role (scratch or KD)."""

    size: str
    role: str  # student_scratch | student_kd
    seed: int
    model_config: dict = field(hash=False)


def plan_units(sizes: Sequence[StudentSize], seeds: Sequence[int]) -> list[StudentUnit]:
    """Every (size, seed, role); a seed's scratch and KD students share the init (same seed)."""
    return [StudentUnit(s.label, role, seed, s.config) for s in sizes for seed in seeds for role in ROLES]


# --------------------------------------------------------------------------- latency

def quick_timing():
    """`harness bench --quick`'s timing windows."""
    from harness.bench import BenchConfig

    return BenchConfig(quick=True, backends=["onnxruntime"], suites=["latency"], threads=1).timing()


def measure_latency(model_config: dict, input_shape: Sequence[int], onnx_path: str | Path, sample: np.ndarray,
                    timing=None) -> dict[str, Any]:
    """Batch-1 latency of one architecture under ONNX Runtime (1 thread): export, open, time, close."""
    import kd_models
    import torch

    from harness.backends.base import Artifact, BackendOptions, get_backend
    from harness.export import export_onnx
    from harness.measure.stats import summarize_ns
    from harness.measure.timers import LocalTimer

    torch.manual_seed(0)
    model = kd_models.build_model(model_config).eval()
    path = export_onnx(model, tuple(input_shape), onnx_path)
    options = BackendOptions(threads=1)
    timing = timing or quick_timing()
    session = get_backend("onnxruntime").open(Artifact(role=Path(onnx_path).stem, onnx=str(path)), options)
    try:
        batch = np.ascontiguousarray(sample[:1], dtype=np.float32)
        res = LocalTimer(session).time(batch, timing)
    finally:
        session.close()
    s = summarize_ns(res.samples_ns)
    return {"p50_ms": s["p50_ms"], "median_ci95_ms": s["median_ci95_ms"], "p10_ms": s["p10_ms"],
            "p90_ms": s["p90_ms"], "n": s["n"], "onnx": str(path)}


# --------------------------------------------------------------------------- selection

def pareto_flags(rows: Sequence[dict[str, Any]], role: str = "kd") -> list[bool]:
    """Per row: not dominated by another row in (mean val accuracy up, params down, p50 down)."""
    pts = [(r["val_accuracy"][role]["mean"], r["params"], r["latency"]["p50_ms"]) for r in rows]
    flags = []
    for i, (a, p, t) in enumerate(pts):
        dominated = any(
            a2 >= a and p2 <= p and t2 <= t and (a2 > a or p2 < p or t2 < t)
            for j, (a2, p2, t2) in enumerate(pts) if j != i)
        flags.append(not dominated)
    return flags


def smallest_within(rows: Sequence[dict[str, Any]], teacher_acc: float, within_pts: float,
                    role: str = "kd") -> dict[str, Any] | None:
    """The row with the fewest parameters (then the lowest p50) whose mean validation accuracy for
    `role` is at most `within_pts` points below the teacher's validation accuracy; None if no row is."""
    ok = [r for r in rows
          if 100 * (teacher_acc - r["val_accuracy"][role]["mean"]) <= within_pts + 1e-9]
    if not ok:
        return None
    return min(ok, key=lambda r: (r["params"], r["latency"]["p50_ms"]))


def _describe(r: dict[str, Any], role: str, teacher: dict[str, Any]) -> str:
    acc = r["val_accuracy"][role]["mean"]
    loss = 100 * (teacher["val_accuracy"] - acc)
    return (f"{r['label']} (widths {'-'.join(map(str, r['widths']))}, {r['params']:,} params, "
            f"{r['params_ratio']:.1f}x fewer than the teacher, {r['speedup']:.2f}x its batch-1 speed) "
            f"{'with KD' if role == 'kd' else 'from scratch'}: {100 * acc:.2f}% vs the teacher's "
            f"{100 * teacher['val_accuracy']:.2f}% on validation ({0.0 - loss:+.2f} pts)")


def selection_line(rows: Sequence[dict[str, Any]], teacher: dict[str, Any], within_pts: float) -> dict[str, Any]:
    """'the smallest student that loses <= X pt is ...', judged on mean validation accuracy."""
    kd = smallest_within(rows, teacher["val_accuracy"], within_pts, "kd")
    sc = smallest_within(rows, teacher["val_accuracy"], within_pts, "scratch")
    picks = [(r, role) for r, role in ((kd, "kd"), (sc, "scratch")) if r is not None]
    if not picks:
        best_r, best_role = max(((r, role) for r in rows for role in ("kd", "scratch")),
                                key=lambda x: (x[0]["val_accuracy"][x[1]]["mean"], -x[0]["params"]))
        line = (f"no student loses <= {within_pts:g} pt against the teacher: the closest is "
                + _describe(best_r, best_role, teacher))
    else:
        # the smaller of the KD and scratch picks; on a tie KD's (the same size, KD is the subject)
        r, role = min(picks, key=lambda x: (x[0]["params"], x[0]["latency"]["p50_ms"], x[1] != "kd"))
        line = f"the smallest student that loses <= {within_pts:g} pt is " + _describe(r, role, teacher)
        if role == "kd":
            line += ("; without KD no size does" if sc is None else
                     f"; without KD the smallest is {sc['label']}" if sc["label"] != r["label"] else
                     "; that size does it without KD too")
    check = teacher.get("fit_check") or {}
    if check and not check["fits"]:
        # A teacher that learned nothing makes every student "within X pts" of it: say so, in the line itself.
        line += (f". WARNING: the teacher fits only {100 * check['fitted']:.1f}% of its own training data (floor "
                 f"{100 * check['floor']:.1f}%), so this comparison says nothing about the sizes")
    return {"within_pts": within_pts, "judged_on": "mean validation accuracy vs the teacher's validation accuracy",
            "kd": kd["label"] if kd else None, "scratch": sc["label"] if sc else None, "line": line}


# --------------------------------------------------------------------------- the sweep

def _kd_vs_scratch(kd: Sequence[float], scratch: Sequence[float]) -> dict[str, Any]:
    """Paired KD - scratch difference in points (`trio.paired_gain`: gaps rounded to 1e-9 pts)."""
    from harness.train.trio import paired_gain

    return paired_gain(kd, scratch)


def run_size_sweep(data: Dataset, base: TrainConfig, seeds: list[int], out_dir: str | Path, *,
                   scales: list[float] | None = None, widths: list[list[int]] | None = None,
                   val_fraction: float = 0.2, within_pts: float = 1.0, timing=None,
                   executor: "Executor | None" = None) -> dict[str, Any]:
    """Train the teacher once and every (size, seed, role) unit as executor jobs (finished ones kept in
    OUT/.jobs, so a rerun resumes); then, with training over, time each size; write OUT/size_sweep.json
    and OUT/size_sweep.html. Returns the JSON document."""
    from tqdm.auto import tqdm

    from harness.measure.stats import mean_ci
    from harness.sweep import validation_view
    from harness.train.trainer import predict_logits
    from harness.executor import ExecutorConfig, LocalExecutor, ResultStore
    from harness.train.jobs import role_job
    from harness.train.trio import normalized_configs, train_checked_teacher

    within_pts = parse_within(within_pts)
    t0 = time.perf_counter()
    view = validation_view(data, val_fraction, seed=0)  # train -> (fit, validation); test untouched
    t_cfg, s_cfg, norm = normalized_configs(view, base.normalize)
    sizes = student_sizes(s_cfg, data.classes, scales=scales, widths=widths)  # bad sizes fail before any write
    out_dir = ensure_writable_dir(out_dir)
    units = plan_units(sizes, seeds)
    bar = tqdm(total=1 + len(units), desc=f"size sweep {data.name}", unit="model",
               disable=not log.isEnabledFor(logging.INFO), file=sys.stderr,
               mininterval=0.1 if sys.stderr.isatty() else 15.0)
    executor = executor or LocalExecutor(ExecutorConfig())
    cpus = executor.config.cpus()
    store = ResultStore(out_dir / ".jobs")
    shared = {"data": view}
    asked = base
    t_result, t_model, base, fit_check = train_checked_teacher(
        executor, view, base, lambda cfg: role_job(f"{data.name} size-sweep teacher", view, "teacher", t_cfg, cfg,
                                                   seeds[0], cpus=cpus), store=store)
    teacher = t_result["value"]
    bar.update(1)
    log.info(f"teacher: val acc {100 * teacher['accuracy']:.2f}%, {teacher['meta']['params']:,} params")
    kd_inputs = ({"teacher_state": teacher["state"], "teacher_config": t_cfg} if base.kd_logits == "live"
                 else {"teacher_logits": predict_logits(t_model, view.X_train)})
    jobs = {u: role_job(f"{data.name} size {u.size} {u.role} seed {u.seed}", view, u.role, u.model_config, base,
                        u.seed, cpus=cpus, **(kd_inputs if u.role == "student_kd" else {}))
            for u in units}
    done = executor.map(jobs.values(), shared=shared, store=store, on_result=lambda job, result: bar.update(1))
    results: list[dict] = []
    for u, job in jobs.items():
        value = done.results[job.key]["value"]
        results.append({"size": u.size, "role": u.role, "seed": u.seed, "val_accuracy": float(value["accuracy"]),
                        "params": int(value["meta"]["params"]), "macs": int(value["meta"]["macs"]),
                        "train_seconds": float(value["seconds"])})
    bar.close()
    executor.close()  # timing below never shares the machine with training workers (pool, local Ray)
    train_s = time.perf_counter() - t0

    onnx_dir = out_dir / "onnx"
    sample = view.X_train[:1]
    timing = timing or quick_timing()
    t_lat = measure_latency(t_cfg, view.input_shape, onnx_dir / "teacher.onnx", sample, timing)
    teacher_doc = {"model_config": t_cfg, "params": teacher["meta"]["params"], "macs": teacher["meta"]["macs"],
                   "val_accuracy": float(teacher["accuracy"]), "seed": seeds[0], "latency": t_lat}

    rows = []
    for size in sizes:
        mine = [r for r in results if r["size"] == size.label]
        by_role = {role: sorted((r for r in mine if r["role"] == role), key=lambda r: seeds.index(r["seed"]))
                   for role in ROLES}
        lat = measure_latency(size.config, view.input_shape, onnx_dir / f"student-{size.label}.onnx", sample, timing)
        params, macs = mine[0]["params"], mine[0]["macs"]
        acc = {}
        for role, key in (("student_scratch", "scratch"), ("student_kd", "kd")):
            per = [r["val_accuracy"] for r in by_role[role]]
            m, lo, hi = mean_ci(per)
            acc[key] = {"mean": m, "ci95": [max(0.0, lo), min(1.0, hi)], "per_seed": per}
        rows.append({
            "label": size.label, "scales": list(size.scales), "widths": list(size.widths),
            "model_config": size.config, "params": params, "macs": macs,
            "params_ratio": teacher_doc["params"] / params, "macs_ratio": teacher_doc["macs"] / max(1, macs),
            "latency": lat, "speedup": t_lat["p50_ms"] / lat["p50_ms"],
            "val_accuracy": acc,
            "kd_vs_scratch": _kd_vs_scratch(acc["kd"]["per_seed"], acc["scratch"]["per_seed"]),
            "loss_vs_teacher_pts": {k: 100 * (teacher_doc["val_accuracy"] - acc[k]["mean"]) for k in acc},
            "train_seconds": {k: [r["train_seconds"] for r in by_role[role]]
                              for role, k in (("student_scratch", "scratch"), ("student_kd", "kd"))},
            **({"note": size.note} if size.note else {}),
        })
    rows.sort(key=lambda r: (r["params"], r["latency"]["p50_ms"]))
    for r, flag in zip(rows, pareto_flags(rows, "kd")):
        r["pareto"] = flag
    teacher_doc["fit_check"] = fit_check
    selection = selection_line(rows, teacher_doc, within_pts)
    doc = {
        "schema": SIZE_SWEEP_SCHEMA,
        "task": data.name,
        "kind": data.kind,
        "classes": data.classes,
        "seeds": seeds,
        "sizes_from": ({"student_scale": scales} if scales else {"student_widths": widths}),
        "validation": {"fraction": val_fraction, "n_fit": int(len(view.y_train)), "n_val": int(len(view.y_test)),
                       "stratified": True,
                       "selected_on": "validation split of train (test split never used)"},
        "normalize": norm,
        "train_config": asked.to_dict(),
        **({"effective_train_config": base.to_dict()} if base != asked else {}),
        "teacher": teacher_doc,
        "rows": rows,
        "pareto_definition": PARETO_DEFINITION,
        "smallest_within": selection,
        "latency_setup": {"backend": "onnxruntime", "threads": 1, "batch_size": 1, "timing": timing.to_dict(),
                          "model": "a fresh build of each config, timed one at a time in one process"},
        "seconds": {"train": train_s, "total": time.perf_counter() - t0},
    }
    atomic_write_json(out_dir / "size_sweep.json", doc)
    atomic_write_text(out_dir / "size_sweep.html", render_html(doc))
    return doc


# --------------------------------------------------------------------------- output

def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def format_table(doc: dict[str, Any]) -> str:
    from tabulate import tabulate

    t = doc["teacher"]
    table = [["teacher", "-".join(map(str, t["model_config"]["widths"])), f"{t['params']:,}", "1.0x", f"{t['macs']:,}",
              f"{t['latency']['p50_ms']:.3f}", "1.00x", "-", _pct(t["val_accuracy"]), "-", "-", ""]]
    for r in doc["rows"]:
        acc = r["val_accuracy"]
        vs = r["kd_vs_scratch"]
        table.append([
            r["label"], "-".join(map(str, r["widths"])), f"{r['params']:,}", f"{r['params_ratio']:.1f}x",
            f"{r['macs']:,}", f"{r['latency']['p50_ms']:.3f}", f"{r['speedup']:.2f}x",
            _pct(acc["scratch"]["mean"]), _pct(acc["kd"]["mean"]),
            f"{vs['diff_pts']:+.2f}" + (f" (p={vs['p_value']:.2g})" if vs.get("p_value") is not None else ""),
            f"{0.0 - r['loss_vs_teacher_pts']['kd']:+.2f}", "yes" if r["pareto"] else "",
        ])
    head = (f"size sweep {doc['task']} ({doc['classes']} classes), seeds {doc['seeds']}, validation split "
            f"{doc['validation']['n_val']} of {doc['validation']['n_val'] + doc['validation']['n_fit']} training "
            f"samples; latency: onnxruntime, 1 thread, batch 1")
    body = tabulate(table, headers=["size", "widths", "params", "fewer", "MACs", "p50 ms", "speedup",
                                    "scratch val %", "KD val %", "KD-scratch pts", "KD vs teacher pts", "Pareto"],
                    disable_numparse=True)
    return "\n".join([head, body, "Pareto: " + doc["pareto_definition"] + ".", doc["smallest_within"]["line"]])


def render_html(doc: dict[str, Any]) -> str:
    """One self-contained page: accuracy vs parameters (log x), scratch and KD series with seed CIs,
    the teacher's line and the 'within X pt' line."""
    import html

    import plotly.graph_objects as go

    rows = doc["rows"]
    t = doc["teacher"]
    xs = [r["params"] for r in rows]
    fig = go.Figure()
    for key, name, color in (("scratch", "student from scratch", "#888888"), ("kd", "student with KD", "#1f77b4")):
        ys = [100 * r["val_accuracy"][key]["mean"] for r in rows]
        lo = [100 * (r["val_accuracy"][key]["mean"] - r["val_accuracy"][key]["ci95"][0]) for r in rows]
        hi = [100 * (r["val_accuracy"][key]["ci95"][1] - r["val_accuracy"][key]["mean"]) for r in rows]
        text = [f"{r['label']} ({'-'.join(map(str, r['widths']))}), p50 {r['latency']['p50_ms']:.3f} ms"
                + (", Pareto" if key == "kd" and r["pareto"] else "") for r in rows]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=name, text=text, line={"color": color},
            marker={"size": [14 if key == "kd" and r["pareto"] else 9 for r in rows], "color": color},
            error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo, "thickness": 1},
            hovertemplate="%{text}<br>%{x:,} params<br>val acc %{y:.2f}%<extra>" + name + "</extra>"))
    ta = 100 * t["val_accuracy"]
    within = doc["smallest_within"]["within_pts"]
    fig.add_trace(go.Scatter(x=[t["params"]], y=[ta], mode="markers", name="teacher",
                             marker={"symbol": "star", "size": 14, "color": "#d62728"},
                             hovertemplate="teacher<br>%{x:,} params<br>val acc %{y:.2f}%<extra></extra>"))
    fig.add_hline(y=ta, line={"color": "#d62728", "dash": "dot"}, annotation_text="teacher")
    fig.add_hline(y=ta - within, line={"color": "#d62728", "dash": "dash", "width": 1},
                  annotation_text=f"teacher - {within:g} pt")
    fig.update_layout(title=f"{doc['task']}: validation accuracy vs parameters (KD and scratch students)",
                      xaxis_title="parameters (log)", yaxis_title="validation accuracy (%)", xaxis_type="log",
                      template="plotly_white", height=520)
    table = html.escape(format_table(doc))
    return ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<title>size sweep {html.escape(doc['task'])}</title>\n</head>\n<body>\n"
            f"<h1>Student-size sweep: {html.escape(doc['task'])}</h1>\n"
            f"<p><b>{html.escape(doc['smallest_within']['line'])}</b></p>\n"
            + fig.to_html(full_html=False, include_plotlyjs=True, div_id="size-sweep")
            + f"\n<pre>{table}</pre>\n</body>\n</html>\n")
