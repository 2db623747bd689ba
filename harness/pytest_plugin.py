"""kd-harness as a pytest plugin (entry point ``pytest11: kd_harness``), loaded in every pytest run
once kd-harness is installed. Disable it with ``-p no:kd_harness``.

Two things live here:

* ``kd_session``, a fixture any project can use to time its own ONNX models with pytest-benchmark on
  the harness's ONNX Runtime backend (pinned threads, input prepared and warmed up outside timing)::

      def test_latency(benchmark, kd_session):
          model = kd_session("models/student.onnx", threads=1)
          batch = model.example_batch(1)
          benchmark.extra_info.update(model.extra_info(batch))
          benchmark(model.bind(batch))

* the fixtures, options and hooks behind the repository's benchmark suites (``suites/``): ``kd``,
  ``kd_run``, the ``kd_grid`` marker and the ``--kd-*`` options (see suites/README.md).

Which run the suites measure: ``--kd-run DIR`` or the env var ``KD_HARNESS_RUN`` (the option wins),
naming a ``harness train`` output folder. With neither, a small default run (task gunpoint, 15 epochs,
seed 0) is trained once and cached in ``$KD_HARNESS_CACHE/suite-run`` (default
``<rootdir>/.kd-harness-cache/suite-run``); it is reused while its summary.json matches that config.

When the suites run: only when benchmarks are asked for: ``--benchmark-only``, ``--kd-suites``, or a
pytest-benchmark output option (``--benchmark-json``, ``--benchmark-save``, ``--benchmark-autosave``,
``--benchmark-compare``) without ``--benchmark-skip``/``--benchmark-disable``. Otherwise every suite
item (a test marked ``kd_grid`` or using ``kd``/``kd_run`` from this plugin) is skipped at collection,
before any fixture runs, so a plain ``pytest`` trains and times nothing. Nothing else is ever skipped:
a project's own tests, ``kd_session`` ones included, follow pytest-benchmark's usual rules.

Because this module is imported by every pytest run on the machine, it imports only pytest and the
standard library at import time; torch, onnxruntime and the rest of the harness are imported inside
the fixtures that need them.
"""
from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.results import ROLES  # noqa: E402  (light: no torch or onnxruntime)
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

# Fixtures whose use makes a test a suite test: they need (and may train) a training run.
RUN_FIXTURES = ("kd", "kd_run")
_SKIP_REASON = ("kd-harness suites run only when benchmarks are asked for: pytest --benchmark-only "
                "(or --kd-suites, --benchmark-json/-save/-compare); see suites/README.md")


# -- options ------------------------------------------------------------------------------------
def pytest_addoption(parser):
    g = parser.getgroup("kd-harness", "kd-harness benchmark suites and the kd_session fixture (suites/README.md)")
    g.addoption("--kd-run", default=None, metavar="DIR",
                help=f"`harness train` output folder to benchmark (else ${RUN_ENV}; else a cached small default run)")
    g.addoption("--kd-batch-sizes", default=None, metavar="LIST",
                help="latency batch sizes, comma-separated (default %s)" % ",".join(map(str, LATENCY_BATCH_SIZES)))
    g.addoption("--kd-throughput-batch-sizes", default=None, metavar="LIST",
                help="throughput batch sizes (default %s)" % ",".join(map(str, THROUGHPUT_BATCH_SIZES)))
    g.addoption("--kd-backends", default=None, metavar="LIST",
                help="backends, comma-separated (default %s)" % ",".join(BACKENDS))
    g.addoption("--kd-threads", default=None, metavar="N",
                help="intra-op threads for the suites and for kd_session without threads= (default: physical cores)")
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


def physical_cores() -> int:
    # harness.bench.default_threads computes the same, but importing harness.bench imports torch
    import psutil

    return max(1, psutil.cpu_count(logical=False) or 1)


def threads(config) -> int:
    text = config.getoption("kd_threads")
    if text is None:
        return physical_cores()
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
    # Bad option values are a one-line usage error at start-up; with no --kd-* option this checks nothing.
    latency_batch_sizes(config)
    throughput_batch_sizes(config)
    backends(config)
    if config.getoption("kd_threads") is not None:
        threads(config)


def needs_run(item) -> bool:
    """True for a suite test: marked kd_grid, or using this plugin's kd / kd_run fixture. A project
    that defines its own fixture called `kd` or `kd_run` is not caught by the name alone."""
    if item.get_closest_marker("kd_grid") is not None:
        return True
    name2defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}) or {}
    for name in RUN_FIXTURES:
        defs = name2defs.get(name)
        if defs and getattr(defs[-1].func, "__module__", None) == __name__:
            return True
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
    suite_items = [item for item in items if needs_run(item)]
    if not suite_items:
        return
    if suites_enabled(config):
        # A named run that is not a training run fails here, before anything is trained or timed;
        # only when suite tests were collected, so a stray KD_HARNESS_RUN never breaks other projects.
        path, where = run_location(config)
        if path is not None and not (path / "summary.json").is_file():
            raise pytest.UsageError(f"{where} {path}: not a `harness train` output folder (no summary.json)")
        return
    skip = pytest.mark.skip(reason=_SKIP_REASON)
    for item in suite_items:
        item.add_marker(skip)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-benchmark, which `-p no:benchmark` may leave out
def pytest_benchmark_compare_machine_info(config, benchmarksession, machine_info, compared_benchmark):
    """Leave the suites' footprint entries out of --benchmark-compare(-fail): their "time" is how long
    the measuring took (a child process, a gzip pass, a test-set pass), not a model's speed; their
    figures live in extra_info. Latency and throughput entries are compared as usual."""
    benches = compared_benchmark.get("benchmarks")
    if isinstance(benches, list):
        benches[:] = [b for b in benches if not _is_suite_footprint(b)]


def _is_suite_footprint(bench: Any) -> bool:
    info = (bench.get("extra_info") or {}) if isinstance(bench, dict) else {}
    # "run" and "role" come from SuiteRun.extra_info: a project's own "suite" key is left alone
    return info.get("suite") in FOOTPRINT_SUITES and "run" in info and "role" in info


# -- kd_session: a project's own ONNX models ---------------------------------------------------
class OnnxModel:
    """One ONNX file open on the harness's ONNX Runtime backend, ready to time.

    `bind(batch)` converts the batch to ONNX Runtime's feed and warms the session up, both outside
    timing, and returns a zero-argument callable that runs only the inference: pass it to
    pytest-benchmark's `benchmark`. `session` is the harness backend session (`run`, `prepare`,
    `run_prepared`) for anything else."""

    def __init__(self, path: Path, role: str, session, options):
        self.path = path
        self.role = role
        self.session = session
        self.options = options  # harness.backends.base.BackendOptions

    @property
    def threads(self) -> int:
        return self.options.threads

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The model's input shape with the batch axis; None where the model leaves a size open."""
        return self.session.full_input_shape

    def example_batch(self, batch_size: int = 1, shape: tuple[int, ...] | None = None, seed: int = 0):
        """Standard-normal float32 input of `batch_size` samples. `shape` (without the batch axis) is
        needed only where the model leaves a non-batch size open."""
        import numpy as np

        sample = tuple(shape) if shape is not None else self.input_shape[1:]
        if any(d is None for d in sample):
            raise ValueError(f"{self.path.name}: input shape {self.input_shape} has open sizes besides the "
                             f"batch axis; pass shape=(...) without the batch axis")
        return np.random.default_rng(seed).standard_normal((batch_size, *sample), dtype=np.float32)

    def bind(self, batch, warm_up: bool = True) -> Callable[[], Any]:
        prepared = self.session.prepare(batch)
        # partial, not a lambda or a method: the timed call adds no Python frame around ORT's run
        call = functools.partial(self.session.run_prepared, prepared)
        if warm_up:
            warm_up_calls(call)
        return call

    def run(self, batch):
        """Logits for `batch` as numpy (outside timing: checking outputs, comparing models)."""
        return self.session.run(batch)

    def extra_info(self, batch, suite: str = "latency", **more: Any) -> dict[str, Any]:
        """What `harness report` reads from a benchmark's extra_info (role, backend, batch size, threads,
        file size), plus `more` (e.g. task=..., accuracy=...)."""
        batch_size = batch if isinstance(batch, int) else int(batch.shape[0])
        return {"suite": suite, "role": self.role, "backend": "onnxruntime", "batch_size": batch_size,
                "threads": self.threads, "onnx": str(self.path), "onnx_bytes": self.path.stat().st_size, **more}

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, role={self.role!r}, threads={self.threads})"


class OnnxSessionCache:
    """ORT sessions shared by every test of a pytest session: one per (file, options), reopened when
    the file changes on disk; closed at session end."""

    def __init__(self, config):
        self.config = config
        self._open: dict[tuple, OnnxModel] = {}

    def open(self, path: str | os.PathLike, role: str | None = None, **options: Any) -> OnnxModel:
        from harness.backends.base import Artifact, BackendOptions
        # the ONNX Runtime backend module directly: get_backend() would also import the torch backend
        from harness.backends.onnxruntime_backend import OnnxRuntimeBackend
        from harness.errors import HarnessError

        path = Path(path)
        if not path.is_absolute():
            path = Path(self.config.rootpath) / path
        path = path.resolve()
        unknown = sorted(set(options) - set(BackendOptions.__dataclass_fields__))
        if unknown:
            raise TypeError(f"kd_session: unknown option {', '.join(unknown)}; "
                            f"known: {', '.join(BackendOptions.__dataclass_fields__)}")
        if options.get("threads") is None:
            options["threads"] = threads(self.config)
        backend_options = BackendOptions(**options)
        role = role or path.stem
        stat = path.stat() if path.is_file() else None
        key = (str(path), stat and (stat.st_mtime_ns, stat.st_size), role, tuple(sorted(backend_options.key().items())))
        if key not in self._open:
            try:
                session = OnnxRuntimeBackend().open(Artifact(role=role, onnx=str(path)), backend_options)
            except HarnessError as exc:
                pytest.fail(f"kd_session: {exc}", pytrace=False)
            self._open[key] = OnnxModel(path, role, session, backend_options)
        return self._open[key]

    def close(self) -> None:
        for model in self._open.values():
            model.session.close()
        self._open.clear()


@pytest.fixture(scope="session")
def kd_onnx_sessions(pytestconfig):
    """The sessions behind kd_session; `kd_onnx_sessions.open(...)` serves session-scoped fixtures."""
    cache = OnnxSessionCache(pytestconfig)
    yield cache
    cache.close()


@pytest.fixture
def kd_session(kd_onnx_sessions) -> Callable[..., OnnxModel]:
    """Open an ONNX file for timing: ``kd_session(path, role=None, threads=None, **backend_options)``.

    `path` is relative to pytest's rootdir unless absolute. `role` names the model in extra_info and
    `harness report` (default: the file name without .onnx). Threads: `threads=`, else --kd-threads,
    else physical cores; always pinned, never ORT's own default. Other keywords are
    harness.backends.base.BackendOptions fields (inter_op_threads, device, graph_optimization, arena).
    Sessions are shared across the pytest session per (file, options)."""
    return kd_onnx_sessions.open


def warm_up_calls(fn, *args, min_calls: int = 10, min_s: float = 0.05, max_s: float = 2.0) -> float:
    """Call fn(*args) outside timing until min_calls and min_s are reached (at most max_s); s/call."""
    from harness.measure.timing import TimingConfig, warm_up

    calls = warm_up(functools.partial(fn, *args),
                    TimingConfig(warmup_min_s=min_s, warmup_min_calls=min_calls, warmup_max_s=max_s))
    return sum(calls) / len(calls) / 1e9


# -- the suites' run -----------------------------------------------------------------------------
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
    from harness.artifacts import run_is_complete

    return run_is_complete(run_dir, _default_train_config().to_dict(), DEFAULT_SEEDS, DEFAULT_TASK)


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
        return warm_up_calls(fn, arg, min_calls=min_calls, min_s=min_s, max_s=max_s)

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
