"""The report as one self-contained HTML file: the tables, and per task three plotly figures
(accuracy vs latency with its Pareto front, latency distributions, throughput vs batch size)
with plotly.js inlined."""
from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd

from harness.report.content import Report
from harness.report.display import SECTIONS, human_table, note_word, sources_lines, table_notes
from harness.report.lookup import (
    backend_order, find, measured_accuracy, role_order, split_role, summary_accuracy, task_measurements, task_names,
    task_roles,
)

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


def role_symbol(role: str) -> str:
    """A marker per role; a variant (student_kd@int8) gets its fp32 model's shape, open."""
    base, variant = split_role(role)
    symbol = ROLE_SYMBOL.get(base, "triangle-up")
    return f"{symbol}-open" if variant else symbol


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


def _latency_by_backend(report: Report, task: str):
    """(results, source label, backend, the task's latency measurements) per source and backend."""
    for res, label in zip(report.results, report.labels):
        if task not in task_names(res):
            continue
        lat = task_measurements(res, task, "latency")
        for backend in backend_order(m.backend for m in lat):
            yield res, label, backend, lat


def _scatter_fig(report: Report, task: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    pts = []
    batch_used = set()
    ci = 0
    for res, label, backend, lat in _latency_by_backend(report, task):
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
            syms.append(role_symbol(role))
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
    for res, label, backend, lat in _latency_by_backend(report, task):
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
                    marker={"symbol": role_symbol(role), "size": 9},
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
    disp, _ = human_table(df, report)
    return disp.to_html(index=False, escape=True, classes="tbl", border=0, na_rep="")


def render_html(report: Report) -> str:
    import plotly.offline

    e = html.escape
    body = ["<h1>kd-harness report</h1>", "<p class='muted'>Sources:</p><ul>"]
    body += [f"<li>{e(s)}</li>" for s in sources_lines(report)]
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
        tables = tr.tables()
        for key, heading in SECTIONS:
            df = tables.get(key)
            if df is None or (df.empty and key not in tr.section_verdicts):
                continue
            body.append(f"<h3>{e(heading)}</h3>")
            for label, sentence in tr.section_verdicts.get(key, {}).items():
                prefix = f"<b>[{e(label)}]</b> " if report.multi_source else ""
                body.append(f"<div class='verdict'>{prefix}{e(sentence)}</div>")
            if not df.empty:
                body.append(_html_table(df, report))
            notes = table_notes(tr, key)
            if notes:
                word = note_word(key)
                style = " style='background:#f3f6fb;border-left-color:#4a6fa5'" if word == "Note" else ""
                body.append(f"<div class='warn'{style}>"
                            + "".join(f"<p>{word}: {e(n)}</p>" for n in notes) + "</div>")
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

