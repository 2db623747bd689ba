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

import time
from typing import Any, Callable

import pytest

from harness.pytest_onnx import OnnxModel, OnnxSessionCache
from harness.pytest_options import (  # noqa: F401  (pytest_addoption: a hook pluggy finds here)
    BACKENDS, LATENCY_BATCH_SIZES, THROUGHPUT_BATCH_SIZES, FOOTPRINT_SUITES, DEFAULT_TASK, DEFAULT_EPOCHS, DEFAULT_SEEDS, RUN_ENV, CACHE_ENV, pytest_addoption, latency_batch_sizes, throughput_batch_sizes, backends, physical_cores, threads, suites_enabled, cache_root, run_location,
)
from harness.pytest_suites import Suite, SuiteRun, _default_run_ok, _role_figures, _say, _train_default
from harness.results import ROLES  # light: no torch or onnxruntime

# Fixtures whose use makes a test a suite test: they need (and may train) a training run.
RUN_FIXTURES = ("kd", "kd_run")
_SKIP_REASON = ("kd-harness suites run only when benchmarks are asked for: pytest --benchmark-only "
                "(or --kd-suites, --benchmark-json/-save/-compare); see suites/README.md")


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


@pytest.fixture(scope="session")
def kd(kd_run, pytestconfig):
    suite = Suite(kd_run, pytestconfig)
    yield suite
    suite.close()
