"""The report as one self-contained HTML file, per task: the first screen (what to deploy, what
distillation bought, the compact table, caveats), then three plotly figures (accuracy vs latency with its
Pareto front, latency distributions, throughput vs batch size), then every detail table; plotly.js inlined."""
from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd

from harness.report.content import Report
from harness.report.display import SECTIONS, human_table, note_word, sources_lines, table_notes
from harness.report.screen import source_line, table_rows
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
.scroll{overflow-x:auto;max-width:100%}.warn{overflow-wrap:anywhere}
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


LABEL_POSITIONS = ("top center", "bottom center", "middle right", "middle left", "top right", "bottom left",
                   "top left", "bottom right")


# Pixel geometry of the accuracy-latency plot's drawing area at its narrowest usual width (the HTML is one
# column, up to 1400 px wide; narrower is conservative: labels take more of it) and of its labels.
PLOT_AREA_PX = (1000.0, 340.0)
LABEL_CHAR_PX, LABEL_HEIGHT_PX, MARKER_RADIUS_PX = 7.0, 16.0, 7.0


def _label_box(position: str, x: float, y: float, width: float) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in pixels of a label at a plotly text position around point (x, y)."""
    r, h = MARKER_RADIUS_PX, LABEL_HEIGHT_PX
    vertical, horizontal = position.split()
    lo_y = {"top": y + r, "bottom": y - r - h, "middle": y - h / 2}[vertical]
    if horizontal == "center":
        lo_x = x - width / 2
    elif horizontal == "right":
        lo_x = x + (r if vertical == "middle" else 0)
    else:
        lo_x = x - width - (r if vertical == "middle" else 0)
    return lo_x, lo_y, lo_x + width, lo_y + h


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def label_positions(points: list[tuple[float, float]], names: list[str] | None = None) -> list[str]:
    """A text position per point of the accuracy-latency plot (log latency across, accuracy up) such that
    no label covers another label or a marker where any position avoids it (a variant beside its fp32
    model, student_kd@int8 on student_kd, gets the other side). Greedy, in pixels of a plot area of
    PLOT_AREA_PX with labels about LABEL_CHAR_PX per character; where every side is taken, the position
    that overlaps least."""
    if not points:
        return []
    names = names or ["x" * 12] * len(points)
    xs = [math.log10(max(x, 1e-12)) for x, _ in points]
    ys = [y for _, y in points]
    (w, h), pad = PLOT_AREA_PX, 0.05
    sx, sy = (max(xs) - min(xs)), (max(ys) - min(ys))
    px = [w * (pad + (1 - 2 * pad) * ((x - min(xs)) / sx if sx else 0.5)) for x in xs]
    py = [h * (pad + (1 - 2 * pad) * ((y - min(ys)) / sy if sy else 0.5)) for y in ys]
    markers = [(x - MARKER_RADIUS_PX, y - MARKER_RADIUS_PX, x + MARKER_RADIUS_PX, y + MARKER_RADIUS_PX)
               for x, y in zip(px, py)]
    placed: list[tuple[float, float, float, float]] = []
    out: list[str] = []
    for i, name in enumerate(names):
        width = LABEL_CHAR_PX * len(str(name))
        best, best_cost = LABEL_POSITIONS[0], float("inf")
        for pos in LABEL_POSITIONS:
            box = _label_box(pos, px[i], py[i], width)
            cost = sum(_overlap(box, other) for other in placed)
            cost += sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
            if cost < best_cost:
                best, best_cost = pos, cost
            if cost == 0:
                break
        out.append(best)
        placed.append(_label_box(best, px[i], py[i], width))
    return out


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
    traces: list[dict] = []
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
        traces.append(dict(xs=xs, ys=ys, ex=(ex_lo, ex_hi), ey=(ey_lo, ey_hi), names=names, syms=syms, name=name,
                           color=PALETTE[ci % len(PALETTE)]))
        ci += 1
    positions = label_positions([(x, y) for t in traces for x, y in zip(t["xs"], t["ys"])],
                                [n for t in traces for n in t["names"]])
    at = 0
    for t in traces:
        n = len(t["xs"])
        fig.add_trace(go.Scatter(
            x=t["xs"], y=t["ys"], mode="markers+text", name=t["name"], text=t["names"],
            textposition=positions[at:at + n],
            marker={"size": 12, "symbol": t["syms"], "color": t["color"]},
            error_x={"type": "data", "symmetric": False, "array": t["ex"][1], "arrayminus": t["ex"][0], "thickness": 1},
            error_y={"type": "data", "symmetric": False, "array": t["ey"][1], "arrayminus": t["ey"][0], "thickness": 1},
            hovertemplate="%{text}<br>p50 %{x:.3g} ms<br>accuracy %{y:.2f}%<extra>" + html.escape(t["name"])
                          + "</extra>",
        ))
        at += n
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


def _knee_fig(report: Report, task: str):
    """p99 latency against offered QPS per model (the Server scenario's runs): where each curve bends up
    through the bound is the model's capacity under load."""
    import plotly.graph_objects as go

    from harness.report.serving import knee_curves

    fig = go.Figure()
    bounds = set()
    ys: list[float] = []
    roles: dict[str, int] = {}
    for si, (res, label) in enumerate(zip(report.results, report.labels)):
        if task not in task_names(res):
            continue
        for c in knee_curves(res, task):
            ri = roles.setdefault(c["model"], len(roles))
            pts = c["points"]
            name = f"{c['model']} / {c['backend']} / batching {'on' if c['batching'] else 'off'}" + (
                f" [{label}]" if report.multi_source else "")
            ys += [p[1] for p in pts]
            fig.add_trace(go.Scatter(  # several searches' points on one curve would zigzag: markers only
                x=[p[0] for p in pts], y=[p[1] for p in pts], name=name,
                mode="lines+markers" if c.get("searches", 1) == 1 else "markers",
                line={"dash": "solid" if c["batching"] else "dot", "color": PALETTE[(ri + 3 * si) % len(PALETTE)]},
                # batching on: filled marks, off: open ones (the colour is the model's)
                marker={"symbol": [("circle" if p[2] else "x") + ("" if c["batching"] else "-open") for p in pts],
                        "size": 9},
                hovertemplate="%{x:.0f} QPS: p99 %{y:.3g} ms<extra>" + name + "</extra>"))
            if c.get("bound_ms"):
                bounds.add(c["bound_ms"])
    if not fig.data:
        return None
    for b in sorted(bounds):
        fig.add_hline(y=b, line_dash="dash", line_color="#888", annotation_text=f"p99 bound {b:.3g} ms",
                      annotation_position="top left")
    lo, hi = min(ys + list(bounds)), max(ys + list(bounds))
    fig.update_layout(title=f"{task}: p99 latency vs offered QPS under LoadGen (o VALID, x INVALID; open: no batching)",
                      xaxis_title="offered QPS (Server scenario target)", yaxis_title="p99 latency, ms (log)",
                      yaxis={"type": "log", "range": [math.log10(lo / 1.5), math.log10(hi * 1.5)]})
    return fig


def _fig_html(fig, div_id: str) -> str:
    fig.update_layout(template="plotly_white", height=460, margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      legend={"orientation": "h", "y": -0.2})
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _html_table(df: pd.DataFrame, report: Report) -> str:
    """A detail table in a box of its own that scrolls sideways: a wide table never widens the page."""
    disp, _ = human_table(df, report)
    return "<div class='scroll'>" + disp.to_html(index=False, escape=True, classes="tbl", border=0, na_rep="") \
        + "</div>"


def render_html(report: Report) -> str:
    import plotly.offline

    e = html.escape
    body = ["<h1>kd-harness report</h1>", "<ul class='muted'>"]
    body += [f"<li>{e(source_line(r))}</li>" for _, r in report.sources.iterrows()]
    body.append("</ul>")
    for tr in report.tasks:
        slug = _slug(tr.task or "task")
        body.append(f"<h2>Task {e(tr.task or '(unnamed)')}</h2>")
        for label, summ in tr.summaries.items():
            prefix = f"<b>[{e(label)}]</b> " if report.multi_source else ""
            body.append(f"<div class='verdict'>{prefix}{e(summ.deploy)}</div>")
            if summ.distillation:
                body.append(f"<div class='verdict'>{prefix}{e(summ.distillation)}</div>")
            if summ.serving:
                body.append(f"<div class='verdict'>{prefix}{e(summ.serving)}</div>")
            rows = table_rows(summ)
            if rows:
                body.append(pd.DataFrame(rows).to_html(index=False, escape=True, classes="tbl", border=0))
            if summ.caveats:
                body.append("<div class='warn'>" + "".join(f"<p>{e(c)}</p>" for c in summ.caveats) + "</div>")
        plots = []
        for kind, maker in (("scatter", _scatter_fig), ("latency", _box_fig), ("throughput", _throughput_fig),
                            ("knee", _knee_fig)):
            fig = maker(report, tr.task)
            if fig is not None:
                plots.append(f"<div class='plot'>{_fig_html(fig, f'plot-{slug}-{kind}')}</div>")
        if plots:
            body.append("<div class='plots'>" + "".join(plots) + "</div>")
        else:
            body.append("<p class='muted'>No latency or throughput measurements to plot.</p>")
        body.append("<h3>Detail</h3>")
        for label, sentence in tr.verdicts.items():
            prefix = f"<b>[{e(label)}]</b> " if report.multi_source else ""
            body.append(f"<div class='verdict'>{prefix}{e(sentence)}</div>")
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
    body.append("<h2>Sources</h2><ul class='muted'>" + "".join(f"<li>{e(s)}</li>" for s in sources_lines(report))
                + "</ul>")
    body.append("<h2>Warnings</h2>")
    if report.warnings.empty:
        body.append("<p>None.</p>")
    else:
        disp = report.warnings.fillna("")
        if not report.multi_source:
            disp = disp.drop(columns=["source"])
        body.append("<div class='warn scroll'>" + disp.to_html(index=False, escape=True, classes="tbl", border=0)
                    + "</div>")
    js = plotly.offline.get_plotlyjs()
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<title>kd-harness report</title>\n"
        f"<style>{CSS}</style>\n"
        "<script type='text/javascript'>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script type='text/javascript'>{js}</script>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )

