"""How the report's tables look to a reader, for every human format (terminal, markdown, HTML):
section headings, column labels, values with their units, CI pairs merged, several sources side
by side, and the sources' lines (machine, GEMM peaks)."""
from __future__ import annotations

import re
from typing import Any, Callable

import pandas as pd

from harness.report.content import Report, TaskReport

KEY_COLS = ("source", "task", "model", "reference", "backend", "batch_size", "threads", "options", "basis")

SECTIONS = (
    ("accuracy", "Accuracy (training seeds and measured per backend)"),
    ("size", "Size, compute and training cost"),
    ("performance", "Latency, throughput and memory per backend and batch size"),
    ("validity", "Validity: the A/A control (the reference against a second session of itself, same rounds; "
                 "should read 1.00) and each paired p50 beside its isolated latency-suite p50"),
    ("backends", "Best throughput and cold start per backend"),
    ("kd_vs_scratch", "KD vs scratch (accuracy)"),
    ("ort_vs_torch", "Runtimes vs PyTorch eager (p50 latency; variants also vs their fp32 model on ONNX Runtime; "
                     "CIs from the two medians' CIs)"),
    ("variants", "Distill, quantize, or both, per runtime (accuracy: fp32 seed mean where seeds exist, else "
                 "measured; variants measured on their row's runtime from the seed-0 checkpoint, no seed CI; "
                 "speedup: fast-state (p10) where recorded, vs the fp32 teacher on the same runtime, paired where "
                 "'from' says so, else the latency suite's ratio; 'vs ORT teacher': latency medians against the "
                 "fp32 teacher on onnxruntime, not paired; quality target: >= 99% of the fp32 teacher's accuracy)"),
    ("serving", "Under load: MLPerf LoadGen (Server: highest target QPS whose run was VALID, p99 under the bound; "
                "ratio vs the fp32 teacher on the same backend and batching; SingleStream p90; Offline samples/s)"),
)
# sections whose lines under the table are information ("Note: ..."), not warnings
NOTE_SECTIONS = ("variants", "serving")

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
    "gflops": "GFLOP/s", "pct_peak": "% of peak", "peak_kind": "peak of", "pct_theoretical": "% of theoretical", "unstable": "unstable",
    "reference": "vs", "paired_p50_ms": "paired p50 ms", "latency_p50_ms": "latency p50 ms",
    "paired_vs_latency_pct": "paired/latency", "ref_paired_p50_ms": "ref paired p50 ms",
    "ref_latency_p50_ms": "ref latency p50 ms", "ref_paired_vs_latency_pct": "ref paired/latency",
    "paired_vs_latency_p10_pct": "p10 paired/latency", "ref_paired_vs_latency_p10_pct": "ref p10 paired/latency",
    "valid": "valid", "control_ratio": "A/A ratio", "control_ci": "A/A 95% CI", "best_sps": "best samples/s", "best_batch": "at batch",
    "best_sps_ratio": "best vs teacher", "load_s": "load s", "first_inference_ms": "first inference ms",
    "diff_pts": "KD - scratch pts", "ci_pts": "95% CI", "p_value": "p", "test": "test",
    "torch_p50_ms": "torch p50 ms", "onnxruntime_p50_ms": "onnxruntime p50 ms",
    "ort_over_torch": "ORT/torch p50", "ort_speedup": "ORT speedup", "ort_speedup_ci": "ORT 95% CI",
    "torch_compile_p50_ms": "torch-compile p50 ms", "compile_speedup": "compile speedup",
    "compile_speedup_ci": "compile 95% CI", "vs_fp32_ort": "vs own fp32 ORT", "vs_fp32_ort_ci": "own fp32 95% CI",
    "compile_speedup_p10": "compile p10 speedup", "ort_speedup_p10": "ORT p10 speedup",
    # the serving table (harness.report.serving)
    "batching": "batching", "max_batch": "max batch", "max_wait_ms": "max wait ms", "latency_bound_ms": "p99 bound ms",
    "max_qps": "max QPS", "qps_ratio": "QPS vs teacher", "max_qps_p99_ms": "p99 ms at max", "ss_p90_ms":
    "SingleStream p90 ms", "ss_vs_latency_p90": "SS p90 / latency p90", "offline_sps": "Offline samples/s", "runs_valid": "Server runs VALID", "ss_valid":
    "SingleStream VALID", "offline_valid": "Offline VALID", "search_resolution_pct": "search step %", "max_qps_spread_pct": "max QPS spread %",
    "serving_reason": "why no max",
    # the variants table (harness.report.variants)
    "acc_pct": "acc %", "acc_basis": "acc from", "vs_teacher_pts": "pts vs teacher",
    "of_teacher_pct": "% of teacher", "meets_target": ">= 99%", "fp32_acc_pct": "own fp32 acc %",
    "drop_vs_fp32_pts": "drop vs fp32 pts", "agreement_pct": "top-1 agree % w/ fp32",
}
HIDDEN_IN_TEXT = ("speedup_p_value",)
# key columns that the terminal and markdown report state once in a section's heading when they
# hold one value on every row of its table (source and task are never columns there when constant:
# the Sources lines and the task's title name them)
FOLDED_IN_TEXT = ("model", "reference", "backend", "batch_size", "threads", "options", "basis")
HEADER_LABELS = {"reference": "reference"}  # in a heading "vs: teacher" would read as a comparison


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
    if col in ("valid", "ss_valid", "offline_valid"):
        return lambda v: "yes" if v else "NO"
    if col == "ss_vs_latency_p90":
        return f("{:.2f}x")
    if col in ("max_qps", "offline_sps"):
        return f("{:.0f}")
    if col in ("control_ratio", "control_ci"):  # an A/A ratio: 1.000 is the expected reading
        return f("{:.3f}")
    if col == "meets_target":
        return lambda v: "yes" if v else "no"
    if col == "drop_vs_fp32_pts":  # points lost: positive is worse, so no sign
        return f("{:.2f}")
    if re.fullmatch(r"(speedup|vs_ort)_b\d+(_ci)?", col):
        return f("{:.2f}x")
    if col.endswith("_pct"):
        return f("{:.2f}")
    if col.endswith("_pts"):
        return f("{:+.2f}")
    if col.endswith("_ratio") or col in ("speedup", "speedup_ci", "speedup_p10", "speedup_p10_ci", "ort_over_torch",
                                         "ort_speedup", "ort_speedup_ci", "compile_speedup", "compile_speedup_ci",
                                         "vs_fp32_ort", "vs_fp32_ort_ci", "compile_speedup_p10", "ort_speedup_p10"):
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


def is_missing(v: Any) -> bool:
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
                    "" if is_missing(lo) or is_missing(h) else f"[{fmt(lo)}, {fmt(h)}]"
                    for lo, h in zip(df[c], df[hi])
                ]
                continue
        fmt = _formatter(c)
        vals = []
        for v in df[c]:
            if is_missing(v):
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
    m = re.fullmatch(r"speedup_b(\d+)(_ci|_from)?", c)
    if m:
        return {"_ci": f"b{m.group(1)} 95% CI", "_from": f"b{m.group(1)} from"}.get(m.group(2) or "",
                                                                                    f"speedup b{m.group(1)}")
    m = re.fullmatch(r"vs_ort_b(\d+)(_ci)?", c)
    if m:
        return f"b{m.group(1)} vs ORT teacher" + (" 95% CI" if m.group(2) else "")
    m = re.fullmatch(r"peak_mem_b(\d+)_mb", c)
    if m:
        return f"peak MB b{m.group(1)}"
    return c.replace("_", " ")


def labelled(disp: pd.DataFrame) -> pd.DataFrame:
    return disp.rename(columns={c: column_label(c) for c in disp.columns})


def constant_columns(disp: pd.DataFrame, candidates: tuple[str, ...]) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The `candidates` that hold one and the same (non-empty) value on every row: the table
    without them, and [(column, value)] to state once above it."""
    const = [c for c in disp.columns if c in candidates and len(disp) and disp[c].nunique() == 1
             and disp[c].iloc[0] != ""]
    return disp.drop(columns=const), [(c, str(disp[c].iloc[0])) for c in const]


def human_table(df: pd.DataFrame, report: Report, hide_extra: tuple[str, ...] = (),
                fold: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The table for a reader, and the columns of `fold` that were constant (taken out of the table)
    as [(label, value)]."""
    hide = ("task",) + hide_extra + (() if report.multi_source else ("source",))
    disp, const = constant_columns(display_frame(df, hide=hide), fold)
    if report.multi_source:
        disp = side_by_side(disp, report.labels)
    return labelled(disp), [(HEADER_LABELS.get(c, column_label(c)), v) for c, v in const]


def present(r: Any, key: str) -> bool:
    return key in r and not is_missing(r[key]) and r[key] != ""


def sources_lines(report: Report) -> list[str]:
    """Per input: when, where, the machine (CPU model, clock, vector ISA) and the GEMM peaks."""
    lines = []
    for _, r in report.sources.iterrows():
        bits = [f"created {r['created']}"] if present(r, "created") else []
        if present(r, "host"):
            bits.append(f"host {r['host']}")
        if present(r, "cpu"):
            cpu = str(r["cpu"])
            if present(r, "cpu_mhz"):
                cpu += f" ({float(r['cpu_mhz']):.0f} MHz)"
            bits.append(cpu)
        if present(r, "cpu_isa"):
            bits.append(f"ISA {r['cpu_isa']}")
        if present(r, "fingerprint"):
            bits.append(f"host fingerprint {r['fingerprint']}")
        bits.append(f"{r['measurements']} measurements")
        lines.append(f"{r['source']}: " + ", ".join(bits))
        if present(r, "peak_gflops"):
            peak = f"measured GEMM peak {float(r['peak_gflops']):.1f} GFLOP/s"
            detail = [f"from {r['peak_source']}"] if present(r, "peak_source") else []
            if present(r, "peak_by_source"):
                detail = [f"by source: {r['peak_by_source']}"]
            if present(r, "peak_threads"):
                detail.append(f"{int(r['peak_threads'])} thread(s)")
            if detail:
                peak += f" ({'; '.join(detail)})"
            if present(r, "theoretical_peak_gflops"):
                peak += f"; theoretical peak {float(r['theoretical_peak_gflops']):.1f} GFLOP/s"
                if present(r, "theoretical_peak_method"):
                    peak += f" = {str(r['theoretical_peak_method']).split(';')[0]}"
            else:
                peak += "; theoretical peak unknown (CPU flags or clock not recorded)"
            if present(r, "int8_peak_gops"):
                peak += f"; int8 peak {float(r['int8_peak_gops']):.1f} GOP/s"
                if present(r, "int8_peak_source"):
                    peak += f" ({r['int8_peak_source']})"
            lines.append(f"{r['source']}: {peak}")
    return lines


def table_notes(tr: TaskReport, key: str) -> list[str]:
    """The warnings (or, for NOTE_SECTIONS, notes) shown under table `key` of a task."""
    return list(tr.notes.get(key) or [])


def note_word(key: str) -> str:
    """How a line under table `key` starts: "Note" for information, "Warning" otherwise."""
    return "Note" if key in NOTE_SECTIONS else "Warning"
