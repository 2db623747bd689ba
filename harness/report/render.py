"""Render a report model as terminal table, markdown, CSV, JSON or one self-contained HTML file."""
from __future__ import annotations

import html
import json
import math
import re
from typing import Any, Callable

import numpy as np
import pandas as pd
from tabulate import tabulate

from harness.errors import OptionError
from harness.report.model import (
    Report, backend_order, find, measured_accuracy, num, role_order, summary_accuracy, task_measurements,
    task_names, task_roles,
)

FORMATS = ("table", "md", "csv", "html", "json")
REPORT_SCHEMA = "kd-harness/report/1"

KEY_COLS = ("source", "task", "model", "reference", "backend", "batch_size", "threads", "options", "basis")

SECTIONS = (
    ("accuracy", "Accuracy (training seeds and measured per backend)"),
    ("size", "Size, compute and training cost"),
    ("performance", "Latency, throughput and memory per backend and batch size"),
    ("validity", "Validity: paired-suite p50 vs isolated latency-suite p50 (same model, backend, batch, threads)"),
    ("backends", "Best throughput and cold start per backend"),
    ("kd_vs_scratch", "KD vs scratch (accuracy)"),
    ("ort_vs_torch", "ONNX Runtime vs PyTorch (p50 latency)"),
)

LABELS = {
    "source": "source", "task": "task", "model": "model", "backend": "backend", "batch_size": "batch",
    "threads": "threads", "options": "options", "basis": "basis",
    "acc_mean_pct": "acc % (mean)", "acc_ci_pct": "acc 95% CI", "n_seeds": "seeds",
    "delta_pts": "pts vs teacher", "delta_ci_pts": "pts 95% CI",
    "params": "params", "params_ratio": "params/teacher", "macs": "MACs", "macs_ratio": "MACs/teacher",
    "onnx_bytes": "ONNX size", "onnx_ratio": "ONNX/teacher", "onnx_gzip_bytes": "ONNX gzip",
    "checkpoint_bytes": "checkpoint", "train_s": "train s", "parity": "parity",
    "p50_ms": "p50 ms", "p99_ms": "p99 ms", "speedup": "speedup vs teacher", "speedup_ci": "speedup 95% CI",
    "speedup_p10": "fast-state speedup (p10)", "speedup_p10_ci": "p10 speedup 95% CI",
    "speedup_basis": "speedup from", "speedup_p_value": "speedup p", "throughput_sps": "samples/s",
    "throughput_ratio": "samples/s vs teacher", "peak_mem_mb": "peak MB", "mem_ratio": "mem/teacher",
    "gflops": "GFLOP/s", "pct_peak": "% of peak", "pct_theoretical": "% of theoretical", "unstable": "unstable",
    "reference": "vs", "paired_p50_ms": "paired p50 ms", "latency_p50_ms": "latency p50 ms",
    "paired_vs_latency_pct": "paired/latency", "ref_paired_p50_ms": "ref paired p50 ms",
    "ref_latency_p50_ms": "ref latency p50 ms", "ref_paired_vs_latency_pct": "ref paired/latency",
    "paired_vs_latency_p10_pct": "p10 paired/latency", "ref_paired_vs_latency_p10_pct": "ref p10 paired/latency",
    "valid": "within 5%", "best_sps": "best samples/s", "best_batch": "at batch",
    "best_sps_ratio": "best vs teacher", "load_s": "load s", "first_inference_ms": "first inference ms",
    "diff_pts": "KD - scratch pts", "ci_pts": "95% CI", "p_value": "p", "test": "test",
    "torch_p50_ms": "torch p50 ms", "onnxruntime_p50_ms": "onnxruntime p50 ms",
    "ort_over_torch": "ORT/torch p50", "ort_speedup": "ORT speedup",
}
HIDDEN_IN_TEXT = ("speedup_p_value",)


# -- value formatting --------------------------------------------------------------------------

def _human(v: float, units: tuple[str, ...], base: float, fmt: str = "{:.3g}") -> str:
    for unit in units:
        if abs(v) < base or unit == units[-1]:
            return fmt.format(v) + unit
        v /= base
    return str(v)


def _formatter(col: str) -> Callable[[Any], str]:
    def f(spec: str) -> Callable[[Any], str]:
        return lambda v: spec.format(v)

    if col in ("batch_size", "threads", "n_seeds", "best_batch"):
        return lambda v: str(int(v))
    if col.endswith("paired_vs_latency_pct") or col.endswith("paired_vs_latency_p10_pct"):
        return f("{:+.1f}%")
    if col == "pct_peak":  # above 100% a warning under the table names the cause
        return lambda v: f"{float(v):.1f}" + (" (!)" if float(v) > 100 else "")
    if col == "valid":
        return lambda v: "yes" if v else "NO"
    if col.endswith("_pct"):
        return f("{:.2f}")
    if col.endswith("_pts"):
        return f("{:+.2f}")
    if col.endswith("_ratio") or col in ("speedup", "speedup_ci", "speedup_p10", "speedup_p10_ci", "ort_over_torch",
                                         "ort_speedup"):
        return f("{:.2f}x")
    if col.endswith("_bytes"):
        return lambda v: _human(float(v), ("B", " kB", " MB", " GB"), 1000.0)
    if col in ("params", "macs"):
        return lambda v: _human(float(v), ("", "k", "M", "G"), 1000.0)
    if col.endswith("_ms") or col.endswith("_s"):
        return f("{:.3g}")
    if col.endswith("_sps"):
        return f("{:,.0f}")
    if col.endswith("_mb") or col in ("gflops", "pct_theoretical"):
        return f("{:.1f}")
    if col.endswith("p_value"):
        return lambda v: "<0.001" if float(v) < 0.001 else f"{float(v):.2g}"
    if col == "unstable":
        return lambda v: "yes" if v else ""
    return str


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def display_frame(df: pd.DataFrame, hide: tuple[str, ...] = ("task",)) -> pd.DataFrame:
    """Strings for humans: CI pairs merged into "[lo, hi]", units applied, empty cells blank."""
    cols = [c for c in df.columns if c not in hide]
    out: dict[str, list[str]] = {}
    skip = set()
    for c in cols:
        if c in skip:
            continue
        m = re.fullmatch(r"(.*)ci_lo(_?.*)", c)
        if m:
            hi = f"{m.group(1)}ci_hi{m.group(2)}"
            name = f"{m.group(1)}ci{m.group(2)}".replace("__", "_")
            if hi in df.columns:
                skip.add(hi)
                fmt = _formatter(name)
                out[name] = [
                    "" if _is_missing(lo) or _is_missing(h) else f"[{fmt(lo)}, {fmt(h)}]"
                    for lo, h in zip(df[c], df[hi])
                ]
                continue
        fmt = _formatter(c)
        vals = []
        for v in df[c]:
            if _is_missing(v):
                vals.append("")
                continue
            try:
                vals.append(fmt(v))
            except (TypeError, ValueError):
                vals.append(str(v))
        out[c] = vals
    return pd.DataFrame(out, columns=list(out))


def side_by_side(disp: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Several sources: rows = keys + metric, one column per source."""
    if "source" not in disp.columns:
        return disp
    keys = [c for c in disp.columns if c in KEY_COLS and c != "source"]
    metrics = [c for c in disp.columns if c not in KEY_COLS]
    table: dict[tuple, dict[str, str]] = {}
    for _, row in disp.iterrows():
        for metric in metrics:
            k = tuple(row[c] for c in keys) + (metric,)
            table.setdefault(k, {})[row["source"]] = row[metric]
    rows = []
    for k, by_src in table.items():
        if not any(by_src.get(lab) for lab in labels):
            continue
        rows.append(list(k) + [by_src.get(lab, "") for lab in labels])
    out = pd.DataFrame(rows, columns=keys + ["metric"] + labels)
    out["metric"] = [column_label(m) for m in out["metric"]]
    return out


def column_label(c: str) -> str:
    if c in LABELS:
        return LABELS[c]
    m = re.fullmatch(r"acc_(.+)_pct", c)
    if m:
        return f"acc % {m.group(1)}"
    return c.replace("_", " ")


def labelled(disp: pd.DataFrame) -> pd.DataFrame:
    return disp.rename(columns={c: column_label(c) for c in disp.columns})


def human_table(df: pd.DataFrame, report: Report, hide_extra: tuple[str, ...] = ()) -> pd.DataFrame:
    hide = ("task",) + hide_extra + (() if report.multi_source else ("source",))
    disp = display_frame(df, hide=hide)
    if report.multi_source:
        disp = side_by_side(disp, report.labels)
    return labelled(disp)


# -- text formats ------------------------------------------------------------------------------

def _tab(df: pd.DataFrame, fmt: str) -> str:
    return tabulate(df.values.tolist(), headers=list(df.columns), tablefmt=fmt, disable_numparse=True)


def _present(r: Any, key: str) -> bool:
    return key in r and not _is_missing(r[key]) and r[key] != ""


def _sources_lines(report: Report) -> list[str]:
    """Per input: when, where, the machine (CPU model, clock, vector ISA) and the GEMM peaks."""
    lines = []
    for _, r in report.sources.iterrows():
        bits = [f"created {r['created']}"] if _present(r, "created") else []
        if _present(r, "host"):
            bits.append(f"host {r['host']}")
        if _present(r, "cpu"):
            cpu = str(r["cpu"])
            if _present(r, "cpu_mhz"):
                cpu += f" ({float(r['cpu_mhz']):.0f} MHz)"
            bits.append(cpu)
        if _present(r, "cpu_isa"):
            bits.append(f"ISA {r['cpu_isa']}")
        bits.append(f"{r['measurements']} measurements")
        lines.append(f"{r['source']}: " + ", ".join(bits))
        if _present(r, "peak_gflops"):
            peak = f"measured GEMM peak {float(r['peak_gflops']):.1f} GFLOP/s"
            detail = [f"from {r['peak_source']}"] if _present(r, "peak_source") else []
            if _present(r, "peak_by_source"):
                detail = [f"by source: {r['peak_by_source']}"]
            if _present(r, "peak_threads"):
                detail.append(f"{int(r['peak_threads'])} thread(s)")
            if detail:
                peak += f" ({'; '.join(detail)})"
            if _present(r, "theoretical_peak_gflops"):
                peak += f"; theoretical peak {float(r['theoretical_peak_gflops']):.1f} GFLOP/s"
                if _present(r, "theoretical_peak_method"):
                    peak += f" = {str(r['theoretical_peak_method']).split(';')[0]}"
            else:
                peak += "; theoretical peak unknown (CPU flags or clock not recorded)"
            lines.append(f"{r['source']}: {peak}")
    return lines


def _notes(tr: Any, key: str) -> list[str]:
    return list(getattr(tr, "notes", {}).get(key) or [])


def render_text(report: Report, md: bool) -> str:
    tfmt = "github" if md else "simple"
    out: list[str] = []
    if md:
        out += ["# kd-harness report", ""]
        out += ["Sources:", ""] + [f"- {html.escape(s, quote=False)}" for s in _sources_lines(report)] + [""]
    else:
        out += ["kd-harness report", "=================", ""]
        out += ["Sources:"] + [f"  {s}" for s in _sources_lines(report)] + [""]
    for tr in report.tasks:
        title = f"Task {tr.task or '(unnamed)'}"
        out += [f"## {title}", ""] if md else [title, "-" * len(title)]
        for label, sentence in tr.verdicts.items():
            prefix = f"[{label}] " if report.multi_source else ""
            out.append(f"**Verdict** {prefix}{sentence}" if md else f"Verdict: {prefix}{sentence}")
            if md:
                out.append("")
        out.append("")
        for key, heading in SECTIONS:
            df = tr.tables()[key]
            if df.empty:
                continue
            out += [f"### {heading}" if md else heading, ""]
            out += [_tab(human_table(df, report, HIDDEN_IN_TEXT), tfmt), ""]
            notes = _notes(tr, key)
            if notes:
                out += [(f"- **Warning:** {html.escape(n, quote=False)}" if md else f"Warning: {n}") for n in notes]
                out.append("")
    out += ["## Warnings" if md else "Warnings", ""]
    if report.warnings.empty:
        out += ["None.", ""]
    else:
        disp = report.warnings.copy()
        if not report.multi_source:
            disp = disp.drop(columns=["source"])
        out += [_tab(disp.fillna(""), tfmt), ""]
    return "\n".join(out).rstrip() + "\n"


# -- csv / json --------------------------------------------------------------------------------

def _py(v: Any) -> Any:
    if _is_missing(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _py(v) for k, v in row.items()} for row in df.to_dict("records")]


def render_json(report: Report) -> str:
    doc = {
        "schema": REPORT_SCHEMA,
        "sources": _records(report.sources),
        "tasks": [{"task": tr.task, "verdicts": tr.verdicts,
                   "tables": {k: _records(v) for k, v in tr.tables().items()},
                   "notes": {k: list(v) for k, v in tr.notes.items()}} for tr in report.tasks],
        "warnings": _records(report.warnings),
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


CSV_COLS = ["section", "source", "task", "model", "reference", "backend", "batch_size", "threads", "options",
            "basis", "metric", "value"]


def render_csv(report: Report) -> str:
    """One tidy table: section, keys, metric, value (parses back with pandas.read_csv)."""
    rows: list[dict[str, Any]] = []
    for tr in report.tasks:
        for label, sentence in tr.verdicts.items():
            rows.append({"section": "verdict", "source": label, "task": tr.task, "metric": "verdict",
                         "value": sentence})
        for key, df in tr.tables().items():
            keys = [c for c in df.columns if c in KEY_COLS]
            for rec in _records(df):
                base = {"section": key, **{k: rec[k] for k in keys}}
                for metric, value in rec.items():
                    if metric in keys or value is None:
                        continue
                    rows.append({**base, "metric": metric, "value": value})
        for key, notes in tr.notes.items():
            for note in notes:
                rows.append({"section": f"{key}_warning", "task": tr.task, "metric": "warning", "value": note})
    for rec in _records(report.warnings):
        rows.append({"section": "warning", "source": rec["source"], "task": rec["task"], "model": rec["where"],
                     "metric": "warning", "value": rec["message"]})
    frame = pd.DataFrame(rows, columns=CSV_COLS)
    return frame.to_csv(index=False, lineterminator="\n")


# -- html --------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:2em}
h3{font-size:1.05em;margin-top:1.4em}
table.tbl{border-collapse:collapse;font-size:13px;margin:6px 0 14px}
table.tbl th,table.tbl td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
table.tbl th{background:#f3f3f3}table.tbl td:first-child,table.tbl th:first-child{text-align:left}
.verdict{background:#eef6ee;border-left:4px solid #3a7d44;padding:8px 12px;margin:8px 0}
.warn{background:#fff4e5;border-left:4px solid #e08a00;padding:8px 12px}
.plots{display:block}.plot{width:100%;margin-bottom:8px}
.muted{color:#777;font-size:12px}
"""

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#ad494a"]
ROLE_SYMBOL = {"teacher": "square", "student_scratch": "circle", "student_kd": "diamond"}


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", s).strip("-") or "x"


def _thin(values: list[float], cap: int = 1000) -> list[float]:
    arr = np.sort(np.asarray(values, dtype=float))
    if len(arr) > cap:
        arr = arr[np.linspace(0, len(arr) - 1, cap).round().astype(int)]
    return [float(x) for x in arr]


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated points (lower latency, higher accuracy), sorted by latency."""
    front = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _scatter_fig(report: Report, task: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    pts = []
    batch_used = set()
    ci = 0
    for res, label in zip(report.results, report.labels):
        if task not in task_names(res):
            continue
        lat = task_measurements(res, task, "latency")
        for backend in backend_order(m.backend for m in lat):
            batches = sorted({m.batch_size for m in lat if m.backend == backend})
            batch = 1 if 1 in batches else batches[0]
            xs, ys, ex_lo, ex_hi, ey_lo, ey_hi, names, syms = [], [], [], [], [], [], [], []
            for role in task_roles(res, task):
                m = find(res, task, "latency", role, backend, batch)
                p50 = m.metrics.p50_ms if m else None
                acc = summary_accuracy(res, task, role)
                y, yci = acc.get("mean"), acc.get("ci")
                if y is None:
                    y, yci = measured_accuracy(res, task, role, backend), None
                if p50 is None or y is None:
                    continue
                xci = m.metrics.median_ci95_ms
                xs.append(p50)
                ys.append(y)
                ex_lo.append(p50 - xci[0] if xci else 0)
                ex_hi.append(xci[1] - p50 if xci else 0)
                ey_lo.append(y - yci[0] if yci else 0)
                ey_hi.append(yci[1] - y if yci else 0)
                names.append(role)
                syms.append(ROLE_SYMBOL.get(role, "triangle-up"))
                pts.append((p50, y))
                batch_used.add(batch)
            if not xs:
                continue
            name = f"{backend}" + (f" [{label}]" if report.multi_source else "")
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="markers+text", name=name, text=names, textposition="top center",
                marker={"size": 12, "symbol": syms, "color": PALETTE[ci % len(PALETTE)]},
                error_x={"type": "data", "symmetric": False, "array": ex_hi, "arrayminus": ex_lo, "thickness": 1},
                error_y={"type": "data", "symmetric": False, "array": ey_hi, "arrayminus": ey_lo, "thickness": 1},
                hovertemplate="%{text}<br>p50 %{x:.3g} ms<br>accuracy %{y:.2f}%<extra>" + html.escape(name)
                              + "</extra>",
            ))
            ci += 1
    if not pts:
        return None
    front = pareto_front(pts)
    fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front",
                             line={"dash": "dash", "color": "#444", "shape": "hv"}, hoverinfo="skip"))
    b = ", ".join(str(x) for x in sorted(batch_used))
    fig.update_layout(title=f"{task}: accuracy vs latency (batch {b}) with Pareto front",
                      xaxis_title="p50 latency (ms, log)", yaxis_title="accuracy (%)", xaxis_type="log")
    return fig


def _box_fig(report: Report, task: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    n = 0
    ci = 0
    for res, label in zip(report.results, report.labels):
        if task not in task_names(res):
            continue
        lat = task_measurements(res, task, "latency")
        for backend in backend_order(m.backend for m in lat):
            xs, ys = [], []
            pre = {"x": [], "q1": [], "median": [], "q3": [], "lowerfence": [], "upperfence": []}
            for role in task_roles(res, task):
                for m in sorted((m for m in lat if m.model == role and m.backend == backend),
                                key=lambda m: (m.batch_size, m.threads)):
                    cat = f"{role} b{m.batch_size}"
                    if m.samples_ns:
                        vals = _thin([x / 1e6 for x in m.samples_ns])
                        xs += [cat] * len(vals)
                        ys += vals
                    else:
                        q = [m.metrics.q1_ms, m.metrics.p50_ms, m.metrics.q3_ms, m.metrics.min_ms, m.metrics.max_ms]
                        if all(v is not None for v in q):
                            for key, v in zip(("q1", "median", "q3", "lowerfence", "upperfence"), q):
                                pre[key].append(v)
                            pre["x"].append(cat)
            name = f"{backend}" + (f" [{label}]" if report.multi_source else "")
            color = PALETTE[ci % len(PALETTE)]
            if ys:
                fig.add_trace(go.Box(x=xs, y=ys, name=name, boxpoints=False, marker_color=color,
                                     legendgroup=name))
                n += 1
            if pre["x"]:
                fig.add_trace(go.Box(name=name + " (summary)", marker_color=color, legendgroup=name, **pre))
                n += 1
            ci += 1
    if not n:
        return None
    fig.update_layout(title=f"{task}: latency distribution per call (ms, log)", boxmode="group",
                      yaxis_type="log", yaxis_title="ms per call", xaxis_title="model and batch size")
    return fig


def _throughput_fig(report: Report, task: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    n = 0
    for si, (res, label) in enumerate(zip(report.results, report.labels)):
        if task not in task_names(res):
            continue
        thr = task_measurements(res, task, "throughput")
        for bi, backend in enumerate(backend_order(m.backend for m in thr)):
            for ri, role in enumerate(role_order(m.model for m in thr)):
                ms = sorted((m for m in thr if m.model == role and m.backend == backend
                             and m.metrics.samples_per_s is not None), key=lambda m: m.batch_size)
                if not ms:
                    continue
                name = f"{role} / {backend}" + (f" [{label}]" if report.multi_source else "")
                fig.add_trace(go.Scatter(
                    x=[m.batch_size for m in ms], y=[m.metrics.samples_per_s for m in ms],
                    mode="lines+markers", name=name,
                    line={"dash": "solid" if bi == 0 else "dot",
                          "color": PALETTE[(ri + 3 * si) % len(PALETTE)]},  # one hue per role and source
                    marker={"symbol": ROLE_SYMBOL.get(role, "triangle-up"), "size": 9},
                ))
                n += 1
    if not n:
        return None
    batches = sorted({m.batch_size for res in report.results if task in task_names(res)
                      for m in task_measurements(res, task, "throughput")})
    fig.update_layout(title=f"{task}: throughput vs batch size", xaxis_type="log", xaxis_title="batch size (log)",
                      yaxis_title="samples / s", xaxis={"tickmode": "array", "tickvals": batches,
                                                         "ticktext": [str(b) for b in batches]})
    return fig


def _fig_html(fig, div_id: str) -> str:
    fig.update_layout(template="plotly_white", height=460, margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      legend={"orientation": "h", "y": -0.2})
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _html_table(df: pd.DataFrame, report: Report) -> str:
    disp = human_table(df, report)
    return disp.to_html(index=False, escape=True, classes="tbl", border=0, na_rep="")


def render_html(report: Report) -> str:
    import plotly.offline

    e = html.escape
    body = ["<h1>kd-harness report</h1>", "<p class='muted'>Sources:</p><ul>"]
    body += [f"<li>{e(s)}</li>" for s in _sources_lines(report)]
    body.append("</ul>")
    for tr in report.tasks:
        slug = _slug(tr.task or "task")
        body.append(f"<h2>Task {e(tr.task or '(unnamed)')}</h2>")
        for label, sentence in tr.verdicts.items():
            prefix = f"<b>[{e(label)}]</b> " if report.multi_source else ""
            body.append(f"<div class='verdict'>{prefix}{e(sentence)}</div>")
        plots = []
        for kind, maker in (("scatter", _scatter_fig), ("latency", _box_fig), ("throughput", _throughput_fig)):
            fig = maker(report, tr.task)
            if fig is not None:
                plots.append(f"<div class='plot'>{_fig_html(fig, f'plot-{slug}-{kind}')}</div>")
        if plots:
            body.append("<div class='plots'>" + "".join(plots) + "</div>")
        else:
            body.append("<p class='muted'>No latency or throughput measurements to plot.</p>")
        for key, heading in SECTIONS:
            df = tr.tables()[key]
            if df.empty:
                continue
            body.append(f"<h3>{e(heading)}</h3>")
            body.append(_html_table(df, report))
            notes = _notes(tr, key)
            if notes:
                body.append("<div class='warn'>" + "".join(f"<p>Warning: {e(n)}</p>" for n in notes) + "</div>")
    body.append("<h2>Warnings</h2>")
    if report.warnings.empty:
        body.append("<p>None.</p>")
    else:
        disp = report.warnings.fillna("")
        if not report.multi_source:
            disp = disp.drop(columns=["source"])
        body.append("<div class='warn'>" + disp.to_html(index=False, escape=True, classes="tbl", border=0)
                    + "</div>")
    js = plotly.offline.get_plotlyjs()
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<title>kd-harness report</title>\n"
        f"<style>{CSS}</style>\n"
        "<script type='text/javascript'>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script type='text/javascript'>{js}</script>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )


def render(report: Report, fmt: str) -> str:
    if fmt not in FORMATS:
        raise OptionError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "table":
        return render_text(report, md=False)
    if fmt == "md":
        return render_text(report, md=True)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    return render_html(report)

