"""Run history in SQLite: append, trend queries, bad databases."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import make_results  # noqa: E402

from harness.errors import HarnessError  # noqa: E402
from harness.history import append, format_history, list_metrics, list_runs, query  # noqa: E402
from harness.results import write_results  # noqa: E402


def _runs(n=3):
    out = []
    for i in range(n):
        res = make_results(tasks=("osuleaf",), seed=i, n_samples=50, commit=f"{i}abcdef0123456789",
                           slowdown=1.0 + 0.1 * i)
        res.created = f"2026-11-2{i}T10:00:00+00:00"
        out.append(res)
    return out


def test_append_and_trend(tmp_path):
    db = tmp_path / "hist" / "history.sqlite"
    runs = _runs(3)
    ids = [append(r, db, label=f"run{i}") for i, r in enumerate(runs)]
    assert ids == [1, 2, 3]
    df = query(db, "p50_ms", task="osuleaf", model="student_kd", backend="onnxruntime", batch_size=1, suite="latency")
    assert len(df) == 3
    assert list(df["run_id"]) == ids and list(df["label"]) == ["run0", "run1", "run2"]
    assert list(df["git_commit"]) == [r.environment["git_commit"] for r in runs]
    expected = [next(m.metrics.p50_ms for m in r.measurements if m.suite == "latency" and m.model == "student_kd"
                     and m.backend == "onnxruntime" and m.batch_size == 1) for r in runs]
    assert list(df["value"]) == pytest.approx(expected)
    assert df["value"].is_monotonic_increasing  # the students got slower run by run
    text = format_history(df)
    assert "p50_ms" in text and "vs first" in text and "0abcdef012" in text and "+0.0%" in text
    # CI pairs are split into _lo/_hi, non-numeric metrics are dropped
    assert {"speedup_ci95_lo", "speedup_ci95_hi", "median_ci95_ms_lo", "p50_ms"} <= set(list_metrics(db))
    assert "reference" not in list_metrics(db) and "arena" not in list_metrics(db)
    sp = query(db, "speedup", model="student_kd", backend="torch", batch_size=8)
    assert len(sp) == 3 and sp["value"].is_monotonic_decreasing
    runs_df = list_runs(db)
    assert list(runs_df["host"]) == ["bench-0", "bench-1", "bench-2"] and (runs_df["n_metrics"] > 100).all()
    assert query(db, "no_such_metric").empty
    assert "no history" in format_history(query(db, "no_such_metric"))


def test_append_from_path(tmp_path):
    p = tmp_path / "results.json"
    write_results(p, _runs(1)[0])
    db = tmp_path / "h.sqlite"
    append(p, db)
    runs = list_runs(db)
    assert runs["source"].iloc[0] == str(p) and runs["schema"].iloc[0] == "kd-harness/results/1"


def test_corrupt_and_foreign_db(tmp_path):
    bad = tmp_path / "corrupt.sqlite"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HarnessError) as exc:
        append(_runs(1)[0], bad)
    assert "corrupt" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(HarnessError, match="corrupt"):
        query(bad, "p50_ms")
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(HarnessError, match="not a kd-harness history database"):
        append(_runs(1)[0], other)
    with pytest.raises(HarnessError, match="not found"):
        query(tmp_path / "missing.sqlite", "p50_ms")


def test_append_is_one_transaction(tmp_path):
    db = tmp_path / "h.sqlite"
    res = _runs(1)[0]
    append(res, db)
    res.measurements[5].metrics.p50_ms = 1.0
    res.measurements[5].task = None  # NOT NULL violation half-way through the insert
    with pytest.raises(HarnessError, match="cannot write"):
        append(res, db)
    assert len(list_runs(db)) == 1  # the failed run left nothing behind


def test_cli_history_lists_metrics_and_runs(tmp_path, capsys):
    from harness.cli import main

    db = tmp_path / "h.sqlite"
    for i, r in enumerate(_runs(2)):
        append(r, db, label=f"run{i}")
    assert main(["history", "--db", str(db), "--list", "metrics"]) == 0
    names = capsys.readouterr().out.split()
    assert "p50_ms" in names and "speedup_ci95_lo" in names and names == sorted(names)
    assert main(["history", "--db", str(db), "--list", "runs"]) == 0
    out = capsys.readouterr().out
    assert "run0" in out and "run1" in out and "n_metrics" in out
    assert main(["history", "--db", str(db), "--list", "everything"]) == 2  # argparse: one line, exit 2
