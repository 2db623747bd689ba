"""Executors: same weights wherever a job runs, killed workers retried or named, finished jobs resumed."""
import json
import os

import numpy as np
import pytest

from harness.cli import main
from harness.errors import OptionError
from harness.executor import (ExecutorConfig, Job, JobsFailed, LocalExecutor, PoolExecutor, ResultStore,
                              content_key, make_executor)
from harness.tasks import load_npz
from harness.train.trainer import TrainConfig
from harness.train.trio import train_trio
from tests import executor_jobs as jobs


def _job(name, fn, **kwargs):
    return Job(name=name, fn=fn, kwargs=kwargs, key=content_key(name, kwargs))


def _ran(counter_dir):
    return len(os.listdir(counter_dir)) if os.path.isdir(counter_dir) else 0


def test_content_key_follows_content_not_order_or_name():
    a = np.arange(6, dtype=np.float32)
    assert content_key({"x": 1, "y": a}) == content_key({"y": a.copy(), "x": 1})
    b = a.copy()
    b[3] += 1e-6
    assert content_key({"x": 1, "y": a}) != content_key({"x": 1, "y": b})
    assert content_key(TrainConfig(epochs=2)) != content_key(TrainConfig(epochs=3))
    with pytest.raises(TypeError):
        content_key(object())


def test_dataset_fingerprint_changes_with_any_array(npz_1d):
    data = load_npz(npz_1d)
    before = data.fingerprint()
    data.X_test = data.X_test.copy()
    assert data.fingerprint() == before
    data.X_test[0, 0, 0] += 1.0
    assert data.fingerprint() != before


@pytest.mark.parametrize("kw, msg", [
    ({"kind": "cluster"}, "--executor"),
    ({"kind": "pool", "jobs": 0}, "--jobs"),
    ({"kind": "pool", "threads_per_job": 0}, "--threads-per-job"),
    ({"kind": "local", "jobs": 2}, "--jobs > 1"),
    ({"kind": "pool", "ray_address": "h:1"}, "--ray-address needs"),
])
def test_executor_config_rejects(kw, msg):
    with pytest.raises(OptionError, match=msg):
        ExecutorConfig(**kw)


def test_local_runs_in_process_and_sets_threads(tmp_path):
    ex = make_executor(ExecutorConfig(threads_per_job=1))
    out = ex.map([_job("t", jobs.threads_seen)])
    (result,) = out.results.values()
    assert result["value"] == 1 and result["pid"] == os.getpid() and result["executor"] == "local"


def test_pool_sets_threads_per_job():
    with PoolExecutor(ExecutorConfig(kind="pool", jobs=2, threads_per_job=1)) as ex:
        # Two jobs with different keys (the name is part of the key here), one thread each.
        out = ex.map([_job(f"t{i}", jobs.threads_seen) for i in range(2)])
    assert {r["value"] for r in out.results.values()} == {1}
    assert all(r["pid"] != os.getpid() for r in out.results.values())


@pytest.mark.slow
def test_pool_retries_a_worker_killed_mid_job(tmp_path):
    store = ResultStore(tmp_path / "store")
    todo = [_job("dies once", jobs.die_once, marker=str(tmp_path / "marker"), value=7),
            _job("plain", jobs.counted, counter_dir=str(tmp_path / "count"), value=3)]
    with PoolExecutor(ExecutorConfig(kind="pool", jobs=2, threads_per_job=1, retries=2)) as ex:
        out = ex.map(todo, store=store)
    assert (tmp_path / "marker").exists()  # the first attempt really was killed
    assert sorted(r["value"] for r in out.results.values()) == [6, 7]
    assert all(store.get(j.key) is not None for j in todo)


@pytest.mark.slow
def test_pool_names_a_job_that_keeps_dying_and_keeps_finished_ones(tmp_path):
    store = ResultStore(tmp_path / "store")
    counter = str(tmp_path / "count")
    plain = [_job(f"plain {v}", jobs.counted, counter_dir=counter, value=v) for v in (1, 2, 3)]
    doomed = _job("sweep cell T=4 seed 1", jobs.always_die)
    with PoolExecutor(ExecutorConfig(kind="pool", jobs=2, threads_per_job=1, retries=1)) as ex:
        with pytest.raises(JobsFailed, match="sweep cell T=4 seed 1") as err:
            ex.map([doomed, *plain], store=store)
        assert ex._pool is None or not ex._pool._broken  # a broken pool is never kept for the next map
    assert "worker died 2 times running alone" in str(err.value)
    ran = _ran(counter)
    assert all(store.get(j.key)["value"] == 2 * j.kwargs["value"] for j in plain)
    # A rerun skips every finished job: nothing runs again.
    with PoolExecutor(ExecutorConfig(kind="pool", jobs=2, threads_per_job=1)) as ex:
        out = ex.map(plain, store=store)
    assert sorted(out.resumed) == sorted(j.key for j in plain) and _ran(counter) == ran


@pytest.mark.slow
def test_pool_never_charges_a_bystander_for_a_worker_that_died_beside_it(tmp_path, caplog):
    # Without retries, a job in flight beside the killer must still finish: the pool cannot tell which
    # worker died, so both rerun alone and only the killer is charged.
    store = ResultStore(tmp_path / "store")
    counter = str(tmp_path / "count")
    marks = {"started": str(tmp_path / "started"), "killer": str(tmp_path / "killer")}
    slow = [_job(f"slow {v}", jobs.slow_counted, counter_dir=counter, value=v, **marks) for v in (1, 2)]
    doomed = _job("killer", jobs.die_beside, **marks)  # dies while "slow 1" is surely running
    with PoolExecutor(ExecutorConfig(kind="pool", jobs=2, threads_per_job=1, retries=0)) as ex:
        with pytest.raises(JobsFailed, match="killer .worker died 1 times running alone, 1 more beside") as err:
            ex.map([slow[0], doomed, slow[1]], store=store)
        assert ex._pool is None or not ex._pool._broken  # a broken pool is never kept for the next map
    assert "slow" not in str(err.value)
    assert [store.get(j.key)["value"] for j in slow] == [2, 4]
    assert "rerunning them one at a time" in caplog.text


def test_a_jobs_own_error_is_named_not_retried(tmp_path):
    for ex in (LocalExecutor(ExecutorConfig()), PoolExecutor(ExecutorConfig(kind="pool", jobs=1))):
        with ex:
            if isinstance(ex, LocalExecutor):
                with pytest.raises(ValueError, match="boom"):  # in-process: the real traceback
                    ex.map([_job("bad cell", jobs.fails)])
            else:
                with pytest.raises(JobsFailed, match="bad cell .ValueError: boom"):
                    ex.map([_job("bad cell", jobs.fails)])


def test_torn_store_entry_is_recomputed(tmp_path):
    store = ResultStore(tmp_path / "store")
    job = _job("plain", jobs.counted, counter_dir=str(tmp_path / "count"), value=5)
    (tmp_path / "store" / f"{job.key}.pkl").write_bytes(b"\x80\x05torn")
    out = LocalExecutor(ExecutorConfig()).map([job], store=store)
    assert out.results[job.key]["value"] == 10 and not out.resumed


def _weights(summary):
    return {role: [ck["weights_sha256"] for ck in m["checkpoints"]] for role, m in summary["models"].items()}


@pytest.mark.slow
def test_same_weights_serial_and_pool(npz_1d, tmp_path):
    data = load_npz(npz_1d)
    cfg = TrainConfig(epochs=2)
    local = train_trio(data, cfg, [0, 1], tmp_path / "local",
                       executor=make_executor(ExecutorConfig(threads_per_job=1)))
    with make_executor(ExecutorConfig(kind="pool", jobs=2, threads_per_job=1)) as ex:
        pooled = train_trio(data, cfg, [0, 1], tmp_path / "pool", executor=ex)
    assert _weights(local) == _weights(pooled)
    for role in ("teacher", "student_scratch", "student_kd"):
        assert local["models"][role]["accuracy"] == pooled["models"][role]["accuracy"]
    assert pooled["executor"]["kind"] == "pool" and pooled["executor"]["threads_per_job"] == 1


class _CountingPool(PoolExecutor):
    """A pool that records the tasks each batch of jobs spans."""

    def __init__(self, config):
        super().__init__(config)
        self.batches = []

    def _run(self, jobs, shared, finish, failed):
        self.batches.append(sorted({j.name.split()[0] for j in jobs}))
        return super()._run(jobs, shared, finish, failed)


@pytest.mark.slow
def test_train_trios_batches_tasks_together_with_same_weights(npz_1d, npz_3d, tmp_path):
    """The main job trains several tasks on one executor: teachers and scratch students of every task in one
    batch, every KD student in the next. Weights must match each task trained on its own, serially."""
    from harness.train.trio import TrioTraining, train_trios

    datas = [load_npz(npz_1d), load_npz(npz_3d)]
    datas[1].name = "other"
    cfg = TrainConfig(epochs=1)
    alone = [train_trio(d, cfg, [0, 1], tmp_path / f"alone-{d.name}",
                        executor=make_executor(ExecutorConfig(threads_per_job=1))) for d in datas]
    with _CountingPool(ExecutorConfig(kind="pool", jobs=2, threads_per_job=1)) as ex:
        together = train_trios([TrioTraining(d, cfg, [0, 1], tmp_path / f"together-{d.name}", executor=ex)
                                for d in datas])
    assert [_weights(s) for s in together] == [_weights(s) for s in alone]
    names = sorted(d.name for d in datas)
    # batch 1: both teachers + all scratch students; batch 2: all KD students; nothing ran alone
    assert ex.batches == [names, names]
    assert all((tmp_path / f"together-{d.name}" / "summary.json").exists() for d in datas)


class _MustNotRun(LocalExecutor):
    def _run(self, jobs, shared, finish, failed):
        raise AssertionError(f"should have resumed, but ran {[j.name for j in jobs]}")


@pytest.mark.slow
def test_train_resumes_every_finished_job(npz_1d, tmp_path):
    data = load_npz(npz_1d)
    cfg = TrainConfig(epochs=2)
    first = train_trio(data, cfg, [0, 1], tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()  # as if interrupted before the summary was written
    again = train_trio(data, cfg, [0, 1], tmp_path / "run", executor=_MustNotRun(ExecutorConfig()))
    assert _weights(again) == _weights(first)
    # A changed config is new content: it trains (the store is keyed by content, not by names).
    with pytest.raises(AssertionError, match="should have resumed"):
        train_trio(data, TrainConfig(epochs=3), [0], tmp_path / "run", executor=_MustNotRun(ExecutorConfig()))


@pytest.mark.slow
def test_sweep_cli_resumes_and_reports_executor(npz_1d, tmp_path, capsys):
    args = ["sweep", "--data", str(npz_1d), "--epochs", "1", "--seeds", "0", "--temperatures", "1,2",
            "--alphas", "0.5", "--out", str(tmp_path / "sw"), "--threads-per-job", "1"]
    assert main(args) == 0
    first = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "resumed 1 finished job(s)" in err and "resumed 3 finished job(s)" in err
    second = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert second["per_cell_weights_sha256"] == first["per_cell_weights_sha256"]
    assert second["executor"]["jobs_resumed"] == 3 and first["executor"]["jobs_resumed"] == 0


@pytest.mark.parametrize("extra, msg", [
    (["--jobs", "0"], "--jobs"),
    (["--executor", "local", "--jobs", "2"], "--jobs > 1 needs"),
    (["--executor", "pool", "--ray-address", "h:1"], "--ray-address needs --executor ray"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "cannot reach Ray at 127.0.0.1:1"),
    (["--executor", "ray", "--ray-address", "no-port"], "--ray-address must be HOST:PORT"),
])
def test_cli_bad_executor_options_one_line_exit_2(npz_1d, tmp_path, capsys, extra, msg):
    if "ray" in extra:
        pytest.importorskip("ray")
    assert main(["train", "--data", str(npz_1d), "--epochs", "1", "--out", str(tmp_path / "r"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "summary.json").exists()


def test_cli_ray_not_installed_one_line_exit_2(npz_1d, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["train", "--data", str(npz_1d), "--epochs", "1", "--out", str(tmp_path / "r"),
                 "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install -e '.[ray]'" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_pool_charges_a_dead_worker_only_to_jobs_in_flight(tmp_path):
    # One worker, a job that always dies first in the queue: the queued jobs behind it never ran when the
    # pool broke, so they must not use up their retries and fail with it.
    counter = str(tmp_path / "count")
    plain = [_job(f"plain {v}", jobs.counted, counter_dir=counter, value=v) for v in (1, 2, 3)]
    doomed = _job("doomed", jobs.always_die)
    with PoolExecutor(ExecutorConfig(kind="pool", jobs=1, threads_per_job=1, retries=1)) as ex:
        with pytest.raises(JobsFailed) as err:
            ex.map([doomed, *plain], store=ResultStore(tmp_path / "store"))
    assert list(err.value.failed) == ["doomed"]
    assert _ran(counter) == 3


def test_pool_defaults_to_one_job_per_core():
    cfg = ExecutorConfig(kind="pool", threads_per_job=1)
    assert cfg.workers() == (os.cpu_count() or 1) and cfg.cpus() == 1
    assert ExecutorConfig(kind="pool", jobs=2).cpus() == max(1, (os.cpu_count() or 1) // 2)
    assert ExecutorConfig().cpus() == 0 and ExecutorConfig().workers() == 1  # local: torch's own default


@pytest.mark.slow
def test_pool_survives_a_worker_that_died_while_idle(tmp_path):
    # The pool outlives one map: a worker killed between two maps must not fail the next map's jobs.
    import time

    with PoolExecutor(ExecutorConfig(kind="pool", jobs=1, threads_per_job=1, retries=0)) as ex:
        first = ex.map([_job("who", jobs.pid)])
        (worker,) = [r["value"] for r in first.results.values()]
        os.kill(worker, 9)
        time.sleep(0.5)
        out = ex.map([_job(f"after {v}", jobs.counted, counter_dir=str(tmp_path / "c"), value=v) for v in (1, 2)])
    assert sorted(r["value"] for r in out.results.values()) == [2, 4]
