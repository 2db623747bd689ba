"""The table `harness train` prints: the trio side by side, from summary.json alone."""
from __future__ import annotations

from typing import Any

from tabulate import tabulate


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def format_summary(summary: dict[str, Any]) -> str:
    models = summary["models"]
    teacher = models["teacher"]
    rows = []
    for role in ("teacher", "student_scratch", "student_kd"):
        m = models.get(role)
        if not m:
            continue
        acc = m["accuracy"]
        lo, hi = acc["ci95"]
        delta = 100 * (acc["mean"] - teacher["accuracy"]["mean"])
        rows.append([
            role, f"{m['params']:,}", f"{teacher['params'] / m['params']:.1f}x", f"{m['macs']:,}",
            f"{teacher['macs'] / m['macs']:.1f}x", _pct(acc["mean"]), f"[{_pct(lo)}, {_pct(hi)}]",
            "-" if role == "teacher" else f"{delta:+.2f}", len(acc["per_seed"]),
            f"{m['train_seconds']['mean']:.1f}",
        ])
    head = (f"task {summary['task']} ({summary['kind']}), seeds {summary['seeds']}, "
            f"KD {models['student_kd'].get('kd_loss', 'hinton')} {models['student_kd'].get('kd_params', {})}, "
            f"logits {models['student_kd'].get('kd_logits', '?')}")
    table = tabulate(rows, headers=["model", "params", "smaller", "MACs", "fewer MACs", "acc %", "95% CI",
                                    "vs teacher (pts)", "seeds", "train s"], disable_numparse=True)
    lines = [head, table]
    comp = summary.get("comparison", {}).get("kd_vs_scratch")
    if comp:
        p = comp.get("p_value")
        lines.append(f"KD vs scratch: {comp['diff_pts']:+.2f} pts "
                     f"[{comp['ci95'][0]:+.2f}, {comp['ci95'][1]:+.2f}]"
                     + (f", p={p:.3g} ({comp['test']})" if p is not None else " (one seed: no test)"))
    check = summary.get("teacher_fit_check") or {}
    if check.get("why"):
        after = check.get("without_augment")
        lines.append(f"teacher fit check: {check['why']}"
                     + ("" if after is None else f"; without augmentation it fits {100 * after:.1f}%"
                        + (" (no better: augmentation kept)" if check.get("kept_augment") else "")))
    return "\n".join(lines)
