"""`harness panel`: the default recipe over many datasets and seeds, in one table against published
accuracies — does distillation hold on data the defaults were never tuned on?

Each dataset is an ordinary training run (OUT/<name>, the same as `harness train`), so a panel
resumes: a finished dataset is reused, and an interrupted one restarts from its finished jobs.
With a parallel executor every dataset's teacher is trained up front, side by side, then each
dataset's students. Nothing is selected here: the panel reports test accuracy of fixed recipes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness.errors import OptionError
from harness.fileio import atomic_write_json, ensure_writable_dir
from harness.published import SOURCE, published

if TYPE_CHECKING:
    from harness.executor import Executor
    from harness.tasks.base import Dataset

log = logging.getLogger(__name__)

PANEL_SCHEMA = "kd-harness/panel/1"
DEFAULT_PANEL = ("osuleaf", "gunpoint", "arrowhead", "acsf1", "italypowerdemand", "basicmotions",
                 "japanesevowels", "plaid")
WITHIN_PTS = (1.5, 3.0)  # the panel's two bars: "almost nothing lost" and the published 0-4 point range


@dataclass(frozen=True)
class PanelEntry:
    """One dataset of the panel: a built-in task or an npz file under a name."""

    name: str
    task: str | None = None
    npz: str | None = None

    def load(self) -> "Dataset":
        from harness.tasks import load_dataset

        data = load_dataset(self.task, self.npz)
        if self.npz:
            data.name = self.name
        return data

    def data_ref(self) -> dict[str, Any]:
        return {"npz": str(Path(self.npz).resolve())} if self.npz else {"task": self.task, "data_seed": 0}


def parse_entries(tasks: list[str] | None, data_files: list[str] | None) -> list[PanelEntry]:
    """--tasks a,b and --data [NAME=]FILE.npz (repeatable); the default panel when neither is given."""
    from harness.tasks import get_task

    entries = []
    for t in (tasks if tasks is not None else ([] if data_files else list(DEFAULT_PANEL))):
        get_task(t)  # an unknown name fails before any training
        entries.append(PanelEntry(name=t, task=t))
    for item in data_files or []:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).stem, item
        if not name or not path:
            raise OptionError(f"--data must be FILE.npz or NAME=FILE.npz, got {item!r}")
        if not Path(path).is_file():
            raise OptionError(f"--data file not found: {path}")
        entries.append(PanelEntry(name=name, npz=path))
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise OptionError(f"panel datasets must have distinct names; repeated: {', '.join(dupes)}")
    if not entries:
        raise OptionError("the panel is empty: give --tasks and/or --data")
    return entries


def _wilson(acc: float, n: int) -> list[float]:
    """95% Wilson interval of a test accuracy (one trained teacher: the test set's sampling error)."""
    from scipy.stats import binomtest

    k = int(round(acc * n))
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def conclusion(diff: dict[str, Any], bound: float) -> str:
    """What the KD-vs-teacher CI lets one say about losing at most `bound` points."""
    lo, hi = diff["ci95"]
    if diff.get("n", 0) < 2:
        return "one seed: no CI"
    if lo >= -bound:
        return f"within {bound:g} pts (95% CI)"
    if hi < -bound:
        return f"loses > {bound:g} pts (95% CI)"
    if hi - lo <= 2 * bound:  # narrow, but -bound lies inside it: the loss is about the bound itself
        return f"about {bound:g} pts: CI [{lo:+.1f}, {hi:+.1f}] holds -{bound:g}"
    return f"CI too wide to conclude ([{lo:+.1f}, {hi:+.1f}] pts)"


def panel_row(name: str, summary: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """One dataset's line, read from its training summary."""
    models = summary["models"]
    cmp = summary["comparison"]
    teacher = models["teacher"]["accuracy"]["mean"]
    n_test = int(summary["dataset"]["n_test"])
    ref = published(name) if published(name) is not None else published(summary.get("task", ""))
    kd_vs_teacher = cmp["student_kd_vs_teacher"]
    return {
        "dataset": name,
        "classes": summary["dataset"]["classes"],
        "n_train": summary["dataset"]["n_train"],
        "n_test": n_test,
        "normalize": summary.get("normalize", {}).get("mode"),
        "teacher": {"mean": teacher, "ci95": _wilson(teacher, n_test), "ci_kind": "test-set Wilson (one teacher)"},
        "published_resnet": ref,
        "teacher_vs_published_pts": None if ref is None else 100 * teacher - ref,
        "student_scratch": models["student_scratch"]["accuracy"],
        "student_kd": models["student_kd"]["accuracy"],
        "kd_vs_teacher": kd_vs_teacher,
        "kd_vs_scratch": cmp["kd_vs_scratch"],
        "kd_vs_teacher_conclusion": conclusion(kd_vs_teacher, WITHIN_PTS[1]),
        "params": {"teacher": models["teacher"]["params"], "student": models["student_kd"]["params"],
                   "ratio": models["teacher"]["params"] / max(1, models["student_kd"]["params"])},
        "seeds": summary["seeds"],
        "seconds": seconds,
    }


def panel_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    within = {f"{b:g}": sum(r["kd_vs_teacher"]["diff_pts"] >= -b for r in rows) for b in WITHIN_PTS}
    beats = [r["dataset"] for r in rows if _significant(r["kd_vs_scratch"])]
    confirmed = sum(r["kd_vs_teacher_conclusion"].startswith("within") for r in rows)
    near = [r for r in rows if r["published_resnet"] is not None]
    return {
        "datasets": n,
        "kd_within_pts_of_teacher": within,  # by the mean over seeds
        "kd_within_3_pts_by_ci": confirmed,
        "kd_beats_scratch_significantly": beats,
        "inconclusive": [r["dataset"] for r in rows if r["kd_vs_teacher_conclusion"].startswith("CI too wide")],
        "teachers_within_5_pts_of_published": sum(r["teacher_vs_published_pts"] >= -5 for r in near),
        "teachers_with_published": len(near),
        "text": (f"KD student's mean within 1.5 pts of its teacher on {within['1.5']}/{n}, within 3 pts on "
                 f"{within['3']}/{n} (by the 95% CI: {confirmed}/{n}); KD beats scratch significantly "
                 f"(paired t, p < 0.05) on {len(beats)}/{n}"
                 + (f"; teacher within 5 pts of the published ResNet on "
                    f"{sum(r['teacher_vs_published_pts'] >= -5 for r in near)}/{len(near)}" if near else "")),
    }


def _prefetch_independent(pending, seeds, executor: "Executor") -> None:
    """Every pending dataset's teacher and scratch students in one batch of jobs, each result kept in its
    dataset's job store (where train_trio then finds it): with a parallel executor they train side by side."""
    from harness.train.trio import TrioTraining, map_across

    trios = [TrioTraining(data, cfg, seeds, run_dir, executor=executor, data_ref=entry.data_ref())
             for entry, data, cfg, run_dir in pending]
    log.info(f"training {len(trios)} teachers and their scratch students side by side ({executor.config.kind}, "
             f"{executor.config.workers() or 'cluster'} jobs at once)")
    map_across(executor, trios, TrioTraining.independent_jobs)


def _same_data(run_dir: Path, data: "Dataset") -> bool:
    """A finished run is reused only if it was trained on these very arrays (an npz may have changed)."""
    from harness.fileio import read_json

    try:
        return read_json(run_dir / "summary.json", what="training summary").get("data_fingerprint") == data.fingerprint()
    except Exception:  # noqa: BLE001 - unreadable: train again
        return False


def _significant(d: dict[str, Any]) -> bool:
    """KD beats scratch: a positive paired gain with p < 0.05 from seeds that did not all gain exactly the
    same (zero spread makes the t-test degenerate, p = 0, which is no evidence)."""
    p = d.get("p_value")
    return d["diff_pts"] > 0 and p is not None and p < 0.05 and len(set(d.get("per_pair", []))) > 1


def run_panel(entries: list[PanelEntry], seeds: list[int], out_dir: str | Path, *,
              executor: "Executor | None" = None, train_overrides: dict[str, Any] | None = None,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    from harness.artifacts import run_is_complete
    from harness.executor import ExecutorConfig, LocalExecutor
    from harness.fileio import read_json
    from harness.train.normalize import choose_normalization
    from harness.train.recipes import default_recipe
    from harness.train.trio import train_trio

    out_dir = ensure_writable_dir(out_dir)
    executor = executor or LocalExecutor(ExecutorConfig())
    t0 = time.perf_counter()
    loaded, pending = [], []
    for entry in entries:
        data = entry.load()
        cfg = default_recipe(data.kind, data.name).with_overrides(**(train_overrides or {}))
        run_dir = out_dir / entry.name
        item = (entry, data, cfg, run_dir)
        loaded.append(item)
        norm = choose_normalization(data.X_train, cfg.normalize)["mode"]
        if not run_is_complete(run_dir, cfg.to_dict(), seeds, normalize=norm) or not _same_data(run_dir, data):
            pending.append(item)
    if executor.config.kind != "local" and len(pending) > 1:
        _prefetch_independent(pending, seeds, executor)

    rows = []
    doc: dict[str, Any] = {"schema": PANEL_SCHEMA, "seeds": seeds, "published_source": SOURCE,
                           "executor": executor.config.describe(), "rows": rows}
    for i, (entry, data, cfg, run_dir) in enumerate(loaded, 1):
        started = time.perf_counter()
        if entry.name in {p[0].name for p in pending}:
            log.info(f"[{i}/{len(loaded)}] {entry.name}: training teacher + {len(seeds)} scratch + "
                     f"{len(seeds)} KD students")
            summary = train_trio(data, cfg, seeds, run_dir, data_ref=entry.data_ref(), executor=executor)
            seconds = time.perf_counter() - started
        else:
            log.info(f"[{i}/{len(loaded)}] {entry.name}: reusing the finished run in {run_dir}")
            summary = read_json(run_dir / "summary.json", what="training summary")
            seconds = None
        row = panel_row(entry.name, summary, seconds)
        rows.append(row)
        doc["summary"] = panel_summary(rows)
        doc["seconds"] = time.perf_counter() - t0
        atomic_write_json(out_dir / "panel.json", doc)  # progress survives an interruption
        if on_row:
            on_row(row)
    return doc


def _pct(acc: dict[str, Any]) -> str:
    lo, hi = acc["ci95"]
    return f"{100 * acc['mean']:.2f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _diff(d: dict[str, Any]) -> str:
    p = d.get("p_value")
    return f"{d['diff_pts']:+.2f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]" + (f" p={p:.2g}" if p is not None else "")


def format_panel(doc: dict[str, Any], fmt: str = "simple") -> str:
    from tabulate import tabulate

    head = ["dataset", "classes", "train/test", "teacher % [test CI]", "published ResNet", "scratch % [seed CI]",
            "KD % [seed CI]", "KD vs teacher pts", "KD vs scratch pts (paired)", "teacher/student params",
            "within 3 pts?"]
    body = []
    for r in doc["rows"]:
        ref = r["published_resnet"]
        body.append([
            r["dataset"], r["classes"], f"{r['n_train']}/{r['n_test']}", _pct(r["teacher"]),
            "-" if ref is None else f"{ref:.1f} ({r['teacher_vs_published_pts']:+.1f})",
            _pct(r["student_scratch"]), _pct(r["student_kd"]), _diff(r["kd_vs_teacher"]), _diff(r["kd_vs_scratch"]),
            f"{r['params']['teacher']:,}/{r['params']['student']:,} ({r['params']['ratio']:.1f}x)",
            r["kd_vs_teacher_conclusion"],
        ])
    text = tabulate(body, headers=head, tablefmt=fmt, disable_numparse=True)
    s = doc.get("summary")
    if s:
        text += f"\n\n{s['text']}."
        if s["inconclusive"]:
            text += f"\nCI too wide to conclude (more seeds or a bigger test set needed): {', '.join(s['inconclusive'])}."
    text += (f"\nSeeds {','.join(map(str, doc['seeds']))}; teacher CI: test-set Wilson (one teacher per dataset); "
             f"student CIs: t over seeds; KD vs teacher: t over the KD seeds against the one teacher's accuracy "
             f"(the teacher's own test-set error, its Wilson CI, is not added). "
             f"Published: {doc['published_source']}.")
    return text
