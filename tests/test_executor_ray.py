"""The Ray executor on a local 2-CPU cluster: same weights as serial, killed workers retried or named."""
import pytest

pytest.importorskip("ray")

from harness.executor import ExecutorConfig, Job, JobsFailed, LocalExecutor, ResultStore, RayExecutor, content_key  # noqa: E402
from harness.tasks import load_npz  # noqa: E402
from harness.train.trainer import TrainConfig  # noqa: E402
from harness.train.trio import train_trio  # noqa: E402
from tests import executor_jobs as jobs  # noqa: E402


def _job(name, fn, **kwargs):
    return Job(name=name, fn=fn, kwargs=kwargs, key=content_key(name, kwargs))


@pytest.fixture(scope="module")
def ray_executor():
    ex = RayExecutor(ExecutorConfig(kind="ray", jobs=2, threads_per_job=1, retries=1))
    yield ex
    ex.close()


@pytest.mark.slow
def test_ray_trains_the_same_weights_as_serial(npz_1d, tmp_path, ray_executor):
    data = load_npz(npz_1d)
    cfg = TrainConfig(epochs=2)
    serial = train_trio(data, cfg, [0, 1], tmp_path / "serial", executor=LocalExecutor(ExecutorConfig(threads_per_job=1)))
    on_ray = train_trio(data, cfg, [0, 1], tmp_path / "ray", executor=ray_executor)
    for role in serial["models"]:
        assert ([c["weights_sha256"] for c in serial["models"][role]["checkpoints"]]
                == [c["weights_sha256"] for c in on_ray["models"][role]["checkpoints"]])
        assert serial["models"][role]["accuracy"] == on_ray["models"][role]["accuracy"]
    assert on_ray["executor"]["kind"] == "ray" and on_ray["executor"]["threads_per_job"] == 1


@pytest.mark.slow
def test_ray_sets_threads_per_job(ray_executor):
    out = ray_executor.map([_job(f"t{i}", jobs.threads_seen) for i in range(2)])
    assert {r["value"] for r in out.results.values()} == {1}


@pytest.mark.slow
def test_ray_retries_a_killed_worker_and_names_one_that_keeps_dying(tmp_path, ray_executor):
    store = ResultStore(tmp_path / "store")
    once = _job("dies once", jobs.die_once, marker=str(tmp_path / "marker"), value=7)
    plain = _job("plain", jobs.counted, counter_dir=str(tmp_path / "count"), value=3)
    doomed = _job("cell T=8 seed 2", jobs.always_die)
    with pytest.raises(JobsFailed, match="cell T=8 seed 2"):
        ray_executor.map([once, plain, doomed], store=store)
    assert (tmp_path / "marker").exists()
    assert store.get(once.key)["value"] == 7 and store.get(plain.key)["value"] == 6
    assert store.get(doomed.key) is None
