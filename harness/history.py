"""Run history in SQLite: one row per run, one row per numeric measurement metric.

    run_id = append(results, "results/history.sqlite", label="nightly")
    df = query("results/history.sqlite", "p50_ms", task="osuleaf", model="student_kd", backend="onnxruntime")
    print(format_history(df))

Tables: `runs` (id, created, appended, git_commit, dirty, host, source, schema, label) and
`metrics` (run_id, task, model, backend, suite, batch_size, threads, options, metric, value).
CI pairs such as speedup_ci95 are stored as `<metric>_lo` / `<metric>_hi`, as in
harness.results.measurements_frame.
"""
from __future__ import annotations

import datetime as _dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from harness.errors import HarnessError
from harness.results import Results, load_results

DEFAULT_DB = Path("results/history.sqlite")
HISTORY_SCHEMA = "kd-harness/history/1"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT,
    appended TEXT NOT NULL,
    git_commit TEXT,
    dirty INTEGER,
    host TEXT,
    source TEXT,
    schema TEXT,
    label TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    suite TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    threads INTEGER NOT NULL,
    options TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_metric ON metrics (metric, task, model, backend, batch_size);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id);
"""


def _connect(db_path: str | Path, create: bool) -> sqlite3.Connection:
    db_path = Path(db_path)
    if not create and not db_path.exists():
        raise HarnessError(f"history database not found: {db_path}")
    if db_path.is_dir():
        raise HarnessError(f"history path is a directory: {db_path}")
    try:
        if create:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(db_path), timeout=30)
    except (OSError, sqlite3.Error) as exc:
        raise HarnessError(f"cannot open history database {db_path}: {exc}") from None
    try:
        con.execute("PRAGMA foreign_keys = ON")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise HarnessError(f"not a kd-harness history database (has other tables): {db_path}")
        if "meta" in tables:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != HISTORY_SCHEMA:
                found = row[0] if row else "none"
                raise HarnessError(f"history database {db_path} has schema {found!r}, this harness reads "
                                   f"{HISTORY_SCHEMA!r}")
        elif create:
            with con:
                con.executescript(_DDL)
                con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (HISTORY_SCHEMA,))
        else:
            raise HarnessError(f"history database is empty: {db_path}")
    except sqlite3.DatabaseError as exc:
        con.close()
        raise HarnessError(f"history database is corrupt or not SQLite: {db_path} ({exc})") from None
    except HarnessError:
        con.close()
        raise
    return con


def _env(res: Results) -> tuple[str | None, int | None, str | None]:
    env = res.environment or {}
    git = env.get("git") if isinstance(env.get("git"), dict) else {}
    commit = env.get("git_commit") or git.get("commit")
    dirty = env.get("git_dirty", env.get("dirty", git.get("dirty")))
    host = env.get("hostname") or env.get("host") or env.get("node")
    if host is None and isinstance(env.get("machine"), dict):
        host = env["machine"].get("hostname")
    return (str(commit) if commit else None, None if dirty is None else int(bool(dirty)),
            str(host) if host else None)


def _metric_rows(res: Results) -> Iterator[tuple]:
    for m in res.measurements:
        opts = json.dumps(m.options, sort_keys=True, default=str)
        base = (m.task, m.model, m.backend, m.suite, int(m.batch_size), int(m.threads), opts)
        for k, x in m.metrics.numbers().items():
            yield base + (k, x)
        for k, (lo, hi) in m.metrics.intervals().items():
            yield base + (f"{k}_lo", lo)
            yield base + (f"{k}_hi", hi)


def append(results: Results | str | Path, db_path: str | Path = DEFAULT_DB, label: str | None = None) -> int:
    """Store one run and its numeric metrics in one transaction; returns the run id. A file merged from
    several hosts (`harness merge`) is stored as one run per host (host column: "<name> (<fingerprint>)"),
    so no trend mixes two hosts' numbers; the last one's id is returned."""
    from harness.hosts import host_views

    if not isinstance(results, Results):
        results = load_results(results)
    views = host_views(results)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with closing(_connect(db_path, create=True)) as con:
        try:
            with con:  # one transaction: all or nothing
                for fp, view in views:
                    commit, dirty, host = _env(view)
                    if len(views) > 1:
                        host = f"{host or 'unknown'} ({fp})"
                    cur = con.execute(
                        "INSERT INTO runs (created, appended, git_commit, dirty, host, source, schema, label) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (view.created or now, now, commit, dirty, host, view.source, view.schema, label))
                    run_id = int(cur.lastrowid)
                    con.executemany(
                        "INSERT INTO metrics (run_id, task, model, backend, suite, batch_size, threads, options, "
                        "metric, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(run_id,) + r for r in _metric_rows(view)])
        except sqlite3.DatabaseError as exc:
            raise HarnessError(f"cannot write history database {db_path}: {exc}") from None
    return run_id


QUERY_COLS = ["run_id", "created", "label", "git_commit", "dirty", "host", "task", "model", "backend", "suite",
              "batch_size", "threads", "options", "metric", "value"]


def query(db_path: str | Path, metric: str, task: str | None = None, model: str | None = None,
          backend: str | None = None, batch_size: int | None = None, suite: str | None = None,
          threads: int | None = None) -> pd.DataFrame:
    """One metric's values over runs (oldest first), one row per run and measurement key."""
    where = ["m.metric = ?"]
    args: list[Any] = [metric]
    for col, val in (("task", task), ("model", model), ("backend", backend), ("batch_size", batch_size),
                     ("suite", suite), ("threads", threads)):
        if val is not None:
            where.append(f"m.{col} = ?")
            args.append(val)
    sql = ("SELECT r.id AS run_id, r.created, r.label, r.git_commit, r.dirty, r.host, m.task, m.model, m.backend, "
           "m.suite, m.batch_size, m.threads, m.options, m.metric, m.value FROM metrics m JOIN runs r "
           "ON r.id = m.run_id WHERE " + " AND ".join(where) +
           " ORDER BY m.task, m.model, m.backend, m.suite, m.batch_size, m.threads, m.options, r.created, r.id")
    with closing(_connect(db_path, create=False)) as con:
        try:
            rows = con.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise HarnessError(f"cannot read history database {db_path}: {exc}") from None
    return pd.DataFrame(rows, columns=QUERY_COLS)


def list_metrics(db_path: str | Path) -> list[str]:
    """Metric names stored in the database (for "unknown metric" messages)."""
    with closing(_connect(db_path, create=False)) as con:
        try:
            return [r[0] for r in con.execute("SELECT DISTINCT metric FROM metrics ORDER BY metric")]
        except sqlite3.DatabaseError as exc:
            raise HarnessError(f"cannot read history database {db_path}: {exc}") from None


def list_runs(db_path: str | Path) -> pd.DataFrame:
    with closing(_connect(db_path, create=False)) as con:
        try:
            rows = con.execute("SELECT id, created, appended, git_commit, dirty, host, source, schema, label, "
                               "(SELECT COUNT(*) FROM metrics WHERE run_id = runs.id) FROM runs ORDER BY id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise HarnessError(f"cannot read history database {db_path}: {exc}") from None
    return pd.DataFrame(rows, columns=["run_id", "created", "appended", "git_commit", "dirty", "host", "source",
                                       "schema", "label", "n_metrics"])


def format_history(df: pd.DataFrame, tablefmt: str = "simple") -> str:
    """A trend table: one row per run and series, with the change against the series' first run."""
    from tabulate import tabulate

    if df.empty:
        return "no history for this metric and filter\n"
    rows = []
    keys = ["task", "model", "backend", "suite", "batch_size", "threads", "options"]
    for _, group in df.groupby(keys, sort=False, dropna=False):
        first = group["value"].iloc[0]
        for _, r in group.iterrows():
            change = "" if not first else f"{(r['value'] / first - 1) * 100:+.1f}%"
            commit = (r["git_commit"] or "")[:10] + ("+dirty" if r["dirty"] == 1 else "")
            rows.append([r["run_id"], r["created"], commit, r["label"] or "", r["task"], r["model"], r["backend"],
                         r["batch_size"], f"{r['value']:.6g}", change])
    metric = df["metric"].iloc[0]
    headers = ["run", "created", "commit", "label", "task", "model", "backend", "batch", metric, "vs first"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True) + "\n"


__all__ = ["DEFAULT_DB", "HISTORY_SCHEMA", "append", "format_history", "list_metrics", "list_runs", "query"]
