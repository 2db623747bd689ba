"""A size sweep's document (`harness.size_sweep.run_size_sweep`) shown to people: the plain-text table
(`harness sweep` prints it) and the self-contained HTML page written next to the JSON.
"""
from __future__ import annotations

from typing import Any


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
