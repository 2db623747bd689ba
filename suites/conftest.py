"""pytest-benchmark suites for a kd-harness training run (see suites/README.md).

Which run: ``--kd-run DIR`` or the env var ``KD_HARNESS_RUN`` (the option wins), naming a
``harness train`` output folder. With neither, a small default run (task gunpoint, 15 epochs,
seed 0) is trained once and cached in ``$KD_HARNESS_CACHE/suite-run`` (default
``<rootdir>/.kd-harness-cache/suite-run``); it is reused while its summary.json matches that config.

When the suites run: only when benchmarks are asked for: ``--benchmark-only``, ``--kd-suites``, or a
pytest-benchmark output option (``--benchmark-json``, ``--benchmark-save``, ``--benchmark-autosave``,
``--benchmark-compare``) without ``--benchmark-skip``/``--benchmark-disable``. Otherwise every item
under suites/ is skipped at collection, before any fixture runs, so a plain ``pytest`` trains and
times nothing. Parametrisation is static (roles x backends x batch sizes from options), so
collection never needs the run.

Nothing heavy (torch, onnxruntime, the harness) is imported at collection time.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROLES = ("teacher", "student_scratch", "student_kd")
BACKENDS = ("torch", "onnxruntime")
LATENCY_BATCH_SIZES = (1, 8)
THROUGHPUT_BATCH_SIZES = (1, 8, 32)
FOOTPRINT_SUITES = ("memory", "storage", "accuracy")  # figures in extra_info; their time is the measuring itself

# The default run: small enough to train in well under a minute on 2 cores.
DEFAULT_TASK = "gunpoint"
DEFAULT_EPOCHS = 15
DEFAULT_SEEDS = [0]
RUN_ENV = "KD_HARNESS_RUN"
CACHE_ENV = "KD_HARNESS_CACHE"

SUITES_DIR = Path(__file__).resolve().parent
_SKIP_REASON = ("kd-harness suites run only when benchmarks are asked for: pytest --benchmark-only "
                "(or --kd-suites, --benchmark-json/-save/-compare); see suites/README.md")


# -- options ------------------------------------------------------------------------------------
def pytest_addoption(parser):
    g = parser.getgroup("kd-harness suites", "kd-harness benchmark suites (suites/README.md)")
    if any("--kd-run" in opt.names() for opt in g.options):
        return  # already registered (a root conftest.py may import this hook to register the options early)
    g.addoption("--kd-run", default=None, metavar="DIR",
                help=f"`harness train` output folder to benchmark (else ${RUN_ENV}; else a cached small default run)")
    g.addoption("--kd-batch-sizes", default=None, metavar="LIST",
                help="latency batch sizes, comma-separated (default %s)" % ",".join(map(str, LATENCY_BATCH_SIZES)))
    g.addoption("--kd-throughput-batch-sizes", default=None, metavar="LIST",
                help="throughput batch sizes (default %s)" % ",".join(map(str, THROUGHPUT_BATCH_SIZES)))
    g.addoption("--kd-backends", default=None, metavar="LIST",
                help="backends, comma-separated (default %s)" % ",".join(BACKENDS))
    g.addoption("--kd-threads", default=None, metavar="N", help="intra-op threads (default: physical cores)")
    g.addoption("--kd-suites", action="store_true", default=False,
                help="run the suites even without --benchmark-only or a benchmark output option")


def _int_list(text: str | None, default: tuple[int, ...], name: str) -> list[int]:
    if text is None:
        return list(default)
    try:
        vals = [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        vals = []
    if not vals or any(v < 1 for v in vals):
        raise pytest.UsageError(f"{name} must be a comma-separated list of positive integers, got {text!r}")
    return sorted(set(vals))


def latency_batch_sizes(config) -> list[int]:
    return _int_list(config.getoption("kd_batch_sizes"), LATENCY_BATCH_SIZES, "--kd-batch-sizes")


def throughput_batch_sizes(config) -> list[int]:
    return _int_list(config.getoption("kd_throughput_batch_sizes"), THROUGHPUT_BATCH_SIZES,
                     "--kd-throughput-batch-sizes")


def backends(config) -> list[str]:
    text = config.getoption("kd_backends")
    if text is None:
        return list(BACKENDS)
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in BACKENDS]
    if not names or bad:
        raise pytest.UsageError(f"--kd-backends takes a comma-separated subset of {','.join(BACKENDS)}, got {text!r}")
    return list(dict.fromkeys(names))


def threads(config) -> int:
    text = config.getoption("kd_threads")
    if text is None:
        from harness.bench import default_threads

        return default_threads()
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"--kd-threads must be a positive integer, got {text!r}")
    return n


def suites_enabled(config) -> bool:
    opt = config.getoption
    if opt("kd_suites", False) or opt("benchmark_only", False):
        return True
    if opt("benchmark_skip", False) or opt("benchmark_disable", False):
        return False
    return bool(opt("benchmark_json", None) or opt("benchmark_save", None) or opt("benchmark_autosave", False)
                or opt("benchmark_compare", None))


def cache_root(config) -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(config.rootpath) / ".kd-harness-cache"


def run_location(config) -> tuple[Path | None, str]:
    """(run folder, where it came from): option, env, or (None, "default") for the cached default run."""
    opt = config.getoption("kd_run")
    if opt:
        return Path(opt), "--kd-run"
    env = os.environ.get(RUN_ENV)
    if env:
        return Path(env), RUN_ENV
    return None, "default"


# -- collection ---------------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line("markers", "kd_grid(kind): kd-harness suite parametrisation: latency | throughput | "
                                       "role_backend | role")
    # Validate options early (one line, usage error) - cheap, no run needed.
    latency_batch_sizes(config)
    throughput_batch_sizes(config)
    backends(config)
    if config.getoption("kd_threads") is not None:
        threads(config)
    if suites_enabled(config):
        path, where = run_location(config)
        if path is not None and not (path / "summary.json").is_file():
            raise pytest.UsageError(f"{where} {path}: not a `harness train` output folder (no summary.json)")


def _in_suites(path) -> bool:
    try:
        Path(path).resolve().relative_to(SUITES_DIR)
        return True
    except ValueError:
        return False


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("kd_grid")
    if marker is None:
        return
    kind = marker.args[0]
    config = metafunc.config
    roles, bks = ROLES, backends(config)
    if kind in ("latency", "throughput"):
        sizes = latency_batch_sizes(config) if kind == "latency" else throughput_batch_sizes(config)
        cases = [(r, b, s) for r in roles for b in bks for s in sizes]
        metafunc.parametrize(("role", "backend", "batch_size"), cases,
                             ids=[f"{r}-{b}-b{s}" for r, b, s in cases])
    elif kind == "role_backend":
        cases = [(r, b) for r in roles for b in bks]
        metafunc.parametrize(("role", "backend"), cases, ids=[f"{r}-{b}" for r, b in cases])
    elif kind == "role":
        metafunc.parametrize("role", list(roles))
    else:
        raise pytest.UsageError(f"unknown kd_grid kind {kind!r} in {metafunc.definition.nodeid}")


def pytest_collection_modifyitems(config, items):
    if suites_enabled(config):
        return
    skip = pytest.mark.skip(reason=_SKIP_REASON)
    for item in items:
        if _in_suites(item.path):
            item.add_marker(skip)


def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark):
    """Leave the footprint entries out of --benchmark-compare(-fail): their "time" is how long the
    measuring took (a child process, a gzip pass, a test-set pass), not a model's speed; their figures
    live in extra_info. Latency and throughput entries are compared as usual."""
    benches = compared_benchmark.get("benchmarks")
    if isinstance(benches, list):
        benches[:] = [b for b in benches
                      if not (isinstance(b, dict) and (b.get("extra_info") or {}).get("suite") in FOOTPRINT_SUITES)]


# -- the run ------------------------------------------------------------------------------------
@dataclass
class SuiteRun:
    task: str
    run_dir: Path
    source: str  # --kd-run | KD_HARNESS_RUN | default
    summary: dict[str, Any]
    data: Any  # harness.tasks.base.Dataset
    sources: dict[str, Any]  # role -> harness.bench.ModelSource (ONNX exported, parity checked)
    threads: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> figures for extra_info

    def source_for(self, role: str):
        if role not in self.sources:
            pytest.skip(f"run {self.run_dir} has no {role} model")
        return self.sources[role]

    def options(self):
        from harness.backends.base import BackendOptions

        return BackendOptions(threads=self.threads)

    def batch(self, batch_size: int):
        import numpy as np

        pool = self.data.X_test
        idx = np.arange(batch_size) % len(pool)
        return np.ascontiguousarray(pool[idx], dtype=np.float32)

    def extra_info(self, role: str, backend: str, batch_size: int, suite: str) -> dict[str, Any]:
        return {"suite": suite, "task": self.task, "role": role, "backend": backend, "batch_size": batch_size,
                "threads": self.threads, **self.models.get(role, {}), "run": str(self.run_dir)}


def _default_train_config():
    from harness.train.trainer import TrainConfig

    return TrainConfig(epochs=DEFAULT_EPOCHS)


def _default_run_ok(run_dir: Path) -> bool:
    path = run_dir / "summary.json"
    if not path.is_file():
        return False
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if (summary.get("task") != DEFAULT_TASK or summary.get("seeds") != DEFAULT_SEEDS
            or summary.get("train_config") != _default_train_config().to_dict()):
        return False
    return all((run_dir / ck["path"]).is_file()
               for m in summary.get("models", {}).values() for ck in m.get("checkpoints", []))


def _say(config, msg: str) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if tr is None:
        return
    def write():
        if getattr(getattr(tr, "_tw", None), "width_of_current_line", 0):
            tr.write("\n")  # after progress dots
        tr.write_line(f"[kd-suites] {msg}")

    if capman is not None:
        with capman.global_and_fixture_disabled():
            write()
    else:
        write()


def _train_default(config, run_dir: Path) -> None:
    from harness.tasks import get_task
    from harness.train.trio import train_trio

    _say(config, f"training the default suite run ({DEFAULT_TASK}, {DEFAULT_EPOCHS} epochs, seeds {DEFAULT_SEEDS}) "
                 f"into {run_dir}; later sessions reuse it")
    t0 = time.perf_counter()
    data = get_task(DEFAULT_TASK).load(0)
    train_trio(data, _default_train_config(), DEFAULT_SEEDS, run_dir,
               data_ref={"task": DEFAULT_TASK, "data_seed": 0})
    _say(config, f"trained in {time.perf_counter() - t0:.1f}s")


def _role_figures(summary: dict[str, Any], src) -> dict[str, Any]:
    from harness.measure.storage import storage_metrics

    entry = summary["models"].get(src.role, {})
    acc = entry.get("accuracy") or {}
    storage = storage_metrics(checkpoint=src.checkpoint, onnx=src.onnx, params=src.params, macs=src.macs)
    return {
        "accuracy": acc.get("mean"),
        "accuracy_ci95": acc.get("ci95"),
        "params": src.params,
        "macs": src.macs,
        "onnx_bytes": storage["onnx_bytes"],
        "checkpoint_bytes": storage["checkpoint_bytes"],
        "onnx_gzip_bytes": storage["onnx_gzip_bytes"],
        "checkpoint_gzip_bytes": storage["checkpoint_gzip_bytes"],
    }


@pytest.fixture(scope="session")
def kd_run(pytestconfig) -> SuiteRun:
    """The training run under test, its data, and its models exported to ONNX (parity-checked)."""
    from harness.bench import BenchConfig, export_run, load_run, run_dataset
    from harness.errors import HarnessError

    path, where = run_location(pytestconfig)
    if path is None:
        path = cache_root(pytestconfig) / "suite-run"
        if not _default_run_ok(path):
            _train_default(pytestconfig, path)
    n_threads = threads(pytestconfig)
    try:
        summary, run_dir = load_run(path)
        data = run_dataset(summary)
        cfg = BenchConfig(threads=n_threads)
        t0 = time.perf_counter()
        sources = export_run(summary, run_dir, data, cfg)
    except HarnessError as exc:
        pytest.fail(f"kd-harness suites: cannot use run {path} ({where}): {exc}", pytrace=False)
    _say(pytestconfig, f"run {run_dir} ({where}): task {summary['task']}, exported + parity-checked "
                       f"{len(sources)} models in {time.perf_counter() - t0:.1f}s, {n_threads} threads")
    run = SuiteRun(task=summary["task"], run_dir=run_dir, source=where, summary=summary, data=data,
                   sources={s.role: s for s in sources}, threads=n_threads)
    run.models = {s.role: _role_figures(summary, s) for s in sources}
    return run


class Suite:
    """What a suite test needs: the run, one open backend session per (role, backend) shared by every
    suite (closed at session end), and the timing/recording helpers. Fixture: `kd`."""

    def __init__(self, run: SuiteRun, config):
        self.run = run
        self.config = config
        self.batch_sizes = latency_batch_sizes(config)
        self.backends = backends(config)
        self._open: dict[tuple[str, str], Any] = {}
        self._accuracy: dict[tuple[str, str], dict[str, Any]] = {}

    def session(self, role: str, backend: str):
        key = (role, backend)
        if key not in self._open:
            from harness.backends.base import Artifact, get_backend

            src = self.run.source_for(role)
            art = Artifact(role=role, checkpoint=str(src.checkpoint) if src.checkpoint else None, onnx=str(src.onnx))
            self._open[key] = get_backend(backend).open(art, self.run.options())
        return self._open[key]

    def measured_accuracy(self, role: str, backend: str, refresh: bool = False) -> dict[str, Any]:
        """This session's accuracy on the run's test split (kept per role x backend; refresh recomputes)."""
        key = (role, backend)
        if refresh or key not in self._accuracy:
            import numpy as np

            from harness.measure.accuracy import predict

            X = np.asarray(self.run.data.X_test, dtype=np.float32)
            y = np.asarray(self.run.data.y_test).astype(np.int64).ravel()
            pred = predict(self.session(role, backend), X, 64)
            correct = int(np.sum(pred == y))
            self._accuracy[key] = {"measured_accuracy": correct / int(y.size), "correct": correct, "n": int(y.size)}
        return self._accuracy[key]

    def close(self) -> None:
        for s in self._open.values():
            s.close()
        self._open.clear()

    # -- timing helpers ------------------------------------------------------------------------
    @staticmethod
    def warm_up(fn, arg, min_calls: int = 10, min_s: float = 0.05, max_s: float = 2.0) -> float:
        """Call fn(arg) outside timing until min_calls and min_s are reached (at most max_s); s/call."""
        calls, t0 = 0, time.perf_counter()
        while True:
            fn(arg)
            calls += 1
            elapsed = time.perf_counter() - t0
            if (calls >= min_calls and elapsed >= min_s) or elapsed >= max_s:
                return elapsed / calls

    def throughput_plan(self, per_call_s: float, round_s: float = 0.01) -> tuple[int, int]:
        """(iterations, rounds): back-to-back calls per round (>= round_s of work), rounds to fill
        --benchmark-max-time (default 1 s), at least --benchmark-min-rounds (default 5), at most 1000."""
        per_call_s = max(per_call_s, 1e-7)
        iterations = max(1, math.ceil(round_s / per_call_s))
        max_time = float(self.config.getoption("benchmark_max_time", 1.0) or 1.0)
        min_rounds = int(self.config.getoption("benchmark_min_rounds", 5) or 5)
        rounds = max(min_rounds, min(1000, math.ceil(max_time / (iterations * per_call_s))))
        return iterations, rounds

    @staticmethod
    def median_s(benchmark) -> float | None:
        """The benchmark's median seconds per call (None under --benchmark-disable)."""
        med = getattr(getattr(getattr(benchmark, "stats", None), "stats", None), "median", None)
        return float(med) if med else None

    @staticmethod
    def record(benchmark, record_property, info: dict[str, Any]) -> None:
        """Figures into the benchmark's extra_info (--benchmark-json/-save) and junit properties."""
        benchmark.extra_info.update(info)
        for k, v in info.items():
            record_property(k, v)


@pytest.fixture(scope="session")
def kd(kd_run, pytestconfig):
    suite = Suite(kd_run, pytestconfig)
    yield suite
    suite.close()
