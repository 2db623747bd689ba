"""harness panel: one row per dataset, published accuracies beside teachers, honest conclusions, resume."""
import json

import pytest

from harness.cli import main
from harness.errors import OptionError
from harness.executor import ExecutorConfig, LocalExecutor
from harness.panel import (DEFAULT_PANEL, PanelEntry, conclusion, panel_summary, parse_entries, run_panel)
from harness.published import PUBLISHED_ACCURACY, published
from tests.conftest import make_npz


def test_default_panel_is_the_published_sets():
    entries = parse_entries(None, None)
    assert [e.name for e in entries] == list(DEFAULT_PANEL)
    assert set(DEFAULT_PANEL) <= set(PUBLISHED_ACCURACY)
    assert published("OSULeaf") == 98.0 and published("Italy_Power_Demand") == 96.2
    assert published("my-own-set") is None


def test_entries_from_files_and_bad_entries(tmp_path):
    a = make_npz(tmp_path / "a.npz")
    entries = parse_entries(["gunpoint"], [str(a), f"other={a}"])
    assert [(e.name, e.task, e.npz) for e in entries] == [("gunpoint", "gunpoint", None), ("a", None, str(a)),
                                                          ("other", None, str(a))]
    assert [e.name for e in parse_entries(None, [str(a)])] == ["a"]  # --data alone: no default tasks
    with pytest.raises(OptionError, match="repeated: a"):
        parse_entries([], [str(a), str(a)])
    with pytest.raises(OptionError, match="not found"):
        parse_entries([], [str(tmp_path / "missing.npz")])
    with pytest.raises(Exception, match="nosuchtask"):
        parse_entries(["nosuchtask"], None)
    with pytest.raises(OptionError, match="empty"):
        parse_entries([], None)


@pytest.mark.parametrize("ci, n, says", [
    ([-1.0, 0.5], 3, "within 3 pts"),
    ([-9.0, -4.0], 3, "loses > 3 pts"),
    ([-12.0, 6.0], 3, "CI too wide"),
    ([-4.1, -2.1], 3, "about 3 pts"),  # narrow, straddling the bound: not "too wide"
    ([-2.0, -2.0], 1, "one seed"),
])
def test_conclusion_follows_the_ci_not_the_mean(ci, n, says):
    assert says in conclusion({"diff_pts": sum(ci) / 2, "ci95": ci, "n": n}, 3.0)


def _row(name, kd_vs_teacher, kd_vs_scratch, p, teacher_vs_pub, per_pair=(1.0, 2.0, 3.0)):
    return {"dataset": name, "kd_vs_teacher": {"diff_pts": kd_vs_teacher, "ci95": [kd_vs_teacher - 1] * 2, "n": 3},
            "kd_vs_scratch": {"diff_pts": kd_vs_scratch, "p_value": p, "per_pair": list(per_pair)},
            "kd_vs_teacher_conclusion": "CI too wide to conclude" if name == "c" else "within 3 pts",
            "published_resnet": None if teacher_vs_pub is None else 90.0, "teacher_vs_published_pts": teacher_vs_pub}


def test_panel_summary_counts():
    rows = [_row("a", -1.0, 2.0, 0.01, -2.0), _row("b", -2.0, 2.0, 0.2, -6.0), _row("c", -5.0, -1.0, 0.01, None),
            _row("d", -9.0, 1.0, 0.0, None, per_pair=(1.0, 1.0, 1.0))]  # zero spread: p = 0 is no evidence
    s = panel_summary(rows)
    assert s["kd_within_pts_of_teacher"] == {"1.5": 1, "3": 2}
    assert s["kd_beats_scratch_significantly"] == ["a"]  # b: p too high; c: worse; d: degenerate test
    assert s["inconclusive"] == ["c"]
    assert s["kd_within_3_pts_by_ci"] == 3  # a, b and d say "within 3 pts" by their CI; c is too wide
    assert (s["teachers_within_5_pts_of_published"], s["teachers_with_published"]) == (1, 2)
    assert "within 3 pts on 2/4 (by the 95% CI: 3/4)" in s["text"]


class _MustNotRun(LocalExecutor):
    def _run(self, jobs, shared, finish, failed):
        raise AssertionError(f"should have resumed, but ran {[j.name for j in jobs]}")


@pytest.mark.slow
def test_panel_rows_and_resume(tmp_path):
    files = [make_npz(tmp_path / "one.npz"), make_npz(tmp_path / "two.npz", classes=4, seed=1)]
    entries = [PanelEntry(name=f.stem, npz=str(f)) for f in files]
    out = tmp_path / "panel"
    doc = run_panel(entries, [0, 1], out, train_overrides={"epochs": 1})
    assert [r["dataset"] for r in doc["rows"]] == ["one", "two"]
    assert doc["rows"][1]["classes"] == 4 and doc["rows"][0]["published_resnet"] is None
    for r in doc["rows"]:
        lo, hi = r["teacher"]["ci95"]
        assert lo <= r["teacher"]["mean"] <= hi and r["kd_vs_teacher"]["n"] == 2
    assert json.loads((out / "panel.json").read_text())["rows"] == json.loads(json.dumps(doc["rows"]))
    # Interrupted after the first dataset's summary, before the second's: nothing trains again,
    # finished datasets are reused and the second's finished jobs come back from its job store.
    (out / "two" / "summary.json").unlink()
    again = run_panel(entries, [0, 1], out, train_overrides={"epochs": 1}, executor=_MustNotRun(ExecutorConfig()))
    keep = ("teacher", "student_scratch", "student_kd", "kd_vs_scratch")
    assert [{k: r[k] for k in keep} for r in again["rows"]] == [{k: r[k] for k in keep} for r in doc["rows"]]
    assert again["rows"][0]["seconds"] is None  # reused, not retrained
    # The same name over changed data is not the same run: it trains again.
    make_npz(files[1], classes=4, seed=2)
    with pytest.raises(AssertionError, match="two teacher"):
        run_panel(entries, [0, 1], out, train_overrides={"epochs": 1}, executor=_MustNotRun(ExecutorConfig()))


@pytest.mark.slow
def test_panel_cli_prints_table(tmp_path, capsys):
    f = make_npz(tmp_path / "tiny.npz")
    assert main(["panel", "--data", f"gunpoint={f}", "--seeds", "0,1", "--epochs", "1", "--out",
                 str(tmp_path / "p"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "gunpoint" in out and "99.1" in out  # a file named like a published set gets its reference
    assert "KD student's mean within 1.5 pts" in out


@pytest.mark.parametrize("argv, msg", [
    (["--tasks", "nosuchtask"], "nosuchtask"),
    (["--data", "missing.npz"], "not found"),
    (["--seeds", "0,0"], "duplicates"),
    (["--jobs", "0"], "--jobs"),
])
def test_panel_bad_input_one_line_exit_2(tmp_path, capsys, argv, msg):
    assert main(["panel", "--out", str(tmp_path / "p"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
