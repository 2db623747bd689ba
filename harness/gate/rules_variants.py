"""Rules on a model's variants (`student_kd@int8`, `teacher@int8-dynamic`, ...): `int8_accuracy_drop`,
the accuracy a variant lost against its own fp32 model. (The other rules cover variants as they cover
any non-teacher model: `speedup` and `size_ratio` compare each variant against the fp32 teacher.)"""
from __future__ import annotations

from harness.gate.config import string
from harness.gate.rules import Option, Rule, RuleResult, mark_missing
from harness.report.derived import VARIANT_BACKEND, drop_vs_fp32
from harness.report.lookup import is_variant, split_role, task_names, variant_failure
from harness.results import Results


class Int8AccuracyDrop(Rule):
    """Every variant both files have: the current file's measured accuracy drop against the variant's own
    fp32 model (points, same test set and backend; harness.report.derived.drop_vs_fp32) may not exceed
    `max_drop_pts`. Deterministic: the variant and its fp32 model are measured on the same test samples
    in the same run. The baseline's drop is shown beside it; files without variants give no rows."""

    name = "int8_accuracy_drop"
    threshold_key, default_threshold = "max_drop_pts", 1.0
    higher_is_better = False  # a drop above the threshold fails
    unit = "pts"
    students_only = False  # teacher@int8 is a variant like any other
    compares_baseline = False  # judges the current file's drop; the baseline only says which variants to expect
    options = {"backend": Option(VARIANT_BACKEND, string)}  # the backend whose accuracies are compared

    def roles(self, baseline: Results, current: Results, task: str) -> list[str]:
        return [r for r in super().roles(baseline, current, task) if is_variant(r)]

    def drop(self, res: Results, task: str, role: str) -> float | None:
        if task not in task_names(res):
            return None
        return drop_vs_fp32(res, task, role, self.option("backend")).get("drop_pts")

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        rows = []
        backend = self.option("backend")
        for task, role in self.pairs(baseline, current):
            b, c = self.drop(baseline, task, role), self.drop(current, task, role)
            r = self.row(task, role, backend, None, b, c)
            base_role = split_role(role)[0]
            if c is not None:  # judged on the current file alone, so a variant new in current is gated too
                r.verdict = "fail" if c > self.spec.threshold else "pass"
                r.note = f"{backend} accuracy of {base_role} minus {role}, same test set; deterministic"
                if b is not None:
                    r.change = c - b
            if b is None:
                why = variant_failure(baseline, task, role) if task in task_names(baseline) else None
                r.note = "; ".join(filter(None, (
                    f"{role} not available in baseline: {why}" if why else
                    f"no accuracy of {role} and {base_role} on {backend} in baseline (new in current)", r.note)))
            elif c is None:
                mark_missing(r, f"accuracy of {role} and {base_role} on {backend}")
                why = variant_failure(current, task, role) if task in task_names(current) else None
                if why:
                    r.note += f" ({role} not available: {why})"
            rows.append(r)
        return rows

    @classmethod
    def format_value(cls, v: float) -> str:
        return f"{v:.2f} pts"

    @classmethod
    def format_threshold(cls, r: RuleResult) -> str:
        return "-" if r.threshold is None else f"drop <= {r.threshold:.2f} pts"
