"""`harness bench`: export, check parity, open sessions, run the suites, write one results file.

Two ways in: a training run folder (checkpoints + summary.json), or any ONNX files a user brings
(`--onnx teacher=A.onnx --onnx student=B.onnx`). Both end in the same `bench_models`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.base import Artifact, BackendOptions, backend_names
from harness.errors import DataError, HarnessError, MissingPackageError, OptionError
from harness.fileio import read_json, sha256_file
from harness.options import check_choice, check_int, check_int_list
from harness.measure.registry import CHECKPOINT_BACKENDS, default_suite_names, suite_names
from harness.results import Measurement, Results
from harness.tasks.base import Dataset

log = logging.getLogger(__name__)


def default_threads() -> int:
    import psutil

    return max(1, psutil.cpu_count(logical=False) or 1)


@dataclass(frozen=True)
class BenchConfig:
    """How `harness bench` measures; validated on construction (change one with dataclasses.replace)."""

    backends: list[str] = field(default_factory=lambda: ["torch", "onnxruntime"])
    suites: list[str] = field(default_factory=lambda: list(default_suite_names()))
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8])
    # None: [1, 4, 16, 64], or with quick the latency batch sizes: the throughput suite then reads each
    # from the latency suite's calls on the same worker and times nothing more (the sweep is costly)
    throughput_batch_sizes: list[int] | None = None
    threads: int = field(default_factory=default_threads)
    inter_op_threads: int = 1
    device: str = "cpu"
    graph_optimization: str = "all"
    arena: bool = True
    external_data: bool = False
    parity_atol: float = 1e-4
    parity_rtol: float = 1e-3
    parity_samples: int = 256
    quick: bool = False  # shorter timing windows: for CI and the default main job
    # Fresh worker processes the timed suites run in (None: 3, or 2 with quick); CIs span them.
    processes: int | None = None
    # ONNX variants measured beside each fp32 model (harness/variants.py); fp32 must be one of them
    variants: tuple[str, ...] = ("fp32",)
    calibration: str = "minmax"  # int8 static calibration: minmax | entropy | percentile
    calibration_samples: int = 256  # stratified training samples (capped at the training size)
    calibration_seed: int = 0
    # Models whose ONNX input has a fixed batch axis (e.g. exported with batch 1) run only at that batch:
    # set by `fit_fixed_batch`; the accuracy pass then feeds chunks of exactly this many samples.
    fixed_batch: int | None = None
    profile: bool = False  # a per-operator profile pass after the timed suites (harness/profile_cli.py)
    # the serving suite (harness/measure/serving.py): MLPerf LoadGen scenarios, logs kept beside the results
    latency_bound_ms: float | None = None  # None: BOUND_MULTIPLE x the teacher's SingleStream p99
    serving_max_batch: int = 8
    serving_max_wait_ms: float | None = None  # None: each model's SingleStream p50
    serving_min_duration_ms: int = 1000
    serving_min_queries: int = 1024
    serving_repeats: int = 1
    serving_log_dir: str | None = None  # None: a folder "loadgen" in the working directory

    def __post_init__(self) -> None:
        from harness.variants import CALIBRATION_METHODS, variant_names

        if self.throughput_batch_sizes is None:
            object.__setattr__(self, "throughput_batch_sizes",
                               list(self.batch_sizes) if self.quick else [1, 4, 16, 64])

        known = backend_names()
        if not self.backends:
            raise OptionError("give at least one backend")
        for b in self.backends:
            if b not in known:
                raise OptionError(f"unknown backend {b!r}; known backends: {', '.join(known)}")
        if not self.suites:
            raise OptionError("give at least one suite")
        known_suites = suite_names()
        for s in self.suites:
            if s not in known_suites:
                raise OptionError(f"unknown suite {s!r}; known suites: {', '.join(known_suites)}")
        check_int_list(self.batch_sizes, "batch sizes")
        check_int_list(self.throughput_batch_sizes, "throughput batch sizes")
        check_int(self.threads, "threads")
        check_int(self.processes, "processes", optional=True)
        check_choice(self.device, "device", ("cpu", "cuda"))
        check_choice(self.graph_optimization, "graph optimisation", ("disable", "basic", "extended", "all"))
        if isinstance(self.variants, str) or not isinstance(self.variants, (list, tuple)) or not self.variants:
            raise OptionError(f"variants must be a list such as fp32,int8, got {self.variants!r}")
        object.__setattr__(self, "variants", tuple(self.variants))
        for v in self.variants:
            if v not in variant_names():
                raise OptionError(f"unknown variant {v!r}; known variants: {', '.join(variant_names())}")
        if len(set(self.variants)) != len(self.variants):
            raise OptionError(f"a variant is given twice: {','.join(self.variants)}")
        if "fp32" not in self.variants:
            raise OptionError("variants must include fp32: every variant is compared with its fp32 base")
        check_choice(self.calibration, "calibration", CALIBRATION_METHODS)
        check_int(self.calibration_samples, "calibration samples")
        check_int(self.calibration_seed, "calibration seed", minimum=0)
        check_int(self.serving_max_batch, "serving max batch")
        check_int(self.serving_min_duration_ms, "serving min duration (ms)")
        check_int(self.serving_min_queries, "serving min queries")
        check_int(self.serving_repeats, "serving repeats")
        for name, v in (("latency bound (ms)", self.latency_bound_ms), ("serving max wait (ms)",
                                                                        self.serving_max_wait_ms)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                                  or v != v or v == float("inf")):
                raise OptionError(f"{name} must be a positive number, got {v!r}")

    def serving(self):
        from harness.measure.serving import ServingConfig

        return ServingConfig(log_root=Path(self.serving_log_dir or "loadgen"), latency_bound_ms=self.latency_bound_ms,
                             max_batch=self.serving_max_batch, max_wait_ms=self.serving_max_wait_ms,
                             min_duration_ms=self.serving_min_duration_ms, min_query_count=self.serving_min_queries,
                             repeats=self.serving_repeats)

    def variant_settings(self):
        from harness.variants import VariantSettings

        return VariantSettings(calibration=self.calibration, calibration_samples=self.calibration_samples,
                               seed=self.calibration_seed)

    def n_processes(self) -> int:
        return self.processes if self.processes is not None else (2 if self.quick else 3)

    def options(self) -> BackendOptions:
        return BackendOptions(threads=self.threads, inter_op_threads=self.inter_op_threads, device=self.device,
                              graph_optimization=self.graph_optimization, arena=self.arena)

    def timing(self):
        from harness.measure.timing import TimingConfig

        if self.quick:
            return TimingConfig(warmup_min_s=0.1, warmup_min_calls=3, min_time_s=0.4, min_samples=20, max_time_s=3.0)
        return TimingConfig()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelSource:
    """One model to measure: where its files are and what is known about it before measuring."""

    task: str
    role: str
    onnx: Path
    input_shape: tuple[int, ...]
    checkpoint: Path | None = None
    params: int | None = None
    macs: int | None = None
    parity: dict[str, Any] | None = None
    training: dict[str, Any] | None = None  # the role's entry in summary.json
    base_role: str | None = None  # a variant (harness/variants.py): its fp32 model's role; None for fp32
    variant: str | None = None  # e.g. "int8"; the role is f"{base_role}@{variant}"
    calibration: dict[str, Any] | None = None  # how a quantised variant was calibrated
    fixed_batch: int | None = None  # the ONNX input's batch axis when fixed (an export without a dynamic batch)

    def artifact(self) -> Artifact:
        """What a backend opens: the checkpoint (torch) and the ONNX file (onnxruntime)."""
        return Artifact(role=self.role, checkpoint=str(self.checkpoint) if self.checkpoint else None,
                        onnx=str(self.onnx))


# -- way in 1: a training run -------------------------------------------------------------------
def load_run(run_dir: str | Path) -> tuple[dict[str, Any], Path]:
    run_dir = Path(run_dir).resolve()
    if not run_dir.is_dir():
        raise DataError(f"training run folder not found: {run_dir}")
    summary = read_json(run_dir / "summary.json", what="training summary")
    if not isinstance(summary, dict) or not isinstance(summary.get("models"), dict) or "task" not in summary:
        raise DataError(f"{run_dir / 'summary.json'} is not a kd-harness training summary")
    from harness.artifacts import verify_checkpoints

    verify_checkpoints(summary, run_dir)
    return summary, run_dir


def run_dataset(summary: dict[str, Any]) -> Dataset | None:
    """Rebuild the run's data (test split for accuracy and parity): registered task or the npz it used."""
    from harness.tasks import get_task, load_npz

    ref = summary.get("data_ref") or {}
    try:
        if ref.get("dataset"):
            from harness.tasks.factory import load_dataset_factory

            return load_dataset_factory(ref["dataset"], ref.get("kwargs"), name=summary.get("task"),
                                        import_root=ref.get("import_root"))
        if ref.get("npz"):
            return load_npz(ref["npz"])
        return get_task(ref.get("task") or summary["task"]).load(int(ref.get("data_seed", 0)))
    except HarnessError as exc:
        raise DataError(f"cannot reload the data of run {summary.get('task')!r}: {exc}") from None


def add_variants(sources: list[ModelSource], data: Dataset | None, cfg: BenchConfig) -> list:
    """Each fp32 source followed by its `cfg.variants` (ModelSources, or VariantFailures that bench_models
    lists as unavailable)."""
    from harness.variants import build_variants

    if tuple(cfg.variants) == ("fp32",):
        return list(sources)
    return build_variants(sources, cfg.variants, data, cfg.variant_settings())


def export_run(summary: dict[str, Any], run_dir: Path, data: Dataset | None, cfg: BenchConfig) -> list:
    """Export every role's first-seed checkpoint to ONNX (dynamic batch), check parity on real inputs, then
    build the requested variants (harness/variants.py: ModelSources, or VariantFailures)."""
    from harness.artifacts import load_checkpoint
    from harness.export import ExportError, export_onnx, parity_check

    sources = []
    for role, entry in summary["models"].items():
        cks = entry.get("checkpoints") or []
        if not cks:
            raise DataError(f"run {run_dir} has no checkpoint for {role}")
        ckpt = run_dir / cks[0]["path"]
        model, meta = load_checkpoint(ckpt, expect_config=entry.get("model_config"))
        shape = tuple(meta["input_shape"])
        onnx_path = run_dir / "onnx" / f"{role}.onnx"
        log.info(f"{summary['task']}: export {role} -> {onnx_path}")
        try:
            export_onnx(model, shape, onnx_path, external_data=cfg.external_data)
        except ExportError as exc:
            # Export comes before any timing, so nothing of this bench (torch included) is kept or written.
            raise ExportError(f"{summary['task']}/{role}: {exc}; nothing was measured or written, torch "
                              f"backend included") from None
        if data is not None:
            inputs = data.X_test[: cfg.parity_samples]
        else:
            inputs = np.random.default_rng(0).standard_normal((16, *shape)).astype(np.float32)
        parity = parity_check(model, onnx_path, inputs, atol=cfg.parity_atol, rtol=cfg.parity_rtol, strict=True)
        log.debug(f"{summary['task']}: {role} parity {parity}")
        sources.append(ModelSource(task=summary["task"], role=role, onnx=onnx_path, input_shape=shape,
                                   checkpoint=ckpt, params=meta.get("params"), macs=meta.get("macs"),
                                   parity=parity, training=entry))
    return add_variants(sources, data, cfg)


class _KeepRecords(logging.Handler):
    """Collects a helper process's `harness` records, message formatted, so they pickle back with its result."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        record.exc_info = record.exc_text = None
        self.records.append(record)


def _export_in_helper(summary, run_dir, data, cfg, level: int):
    # The records go back with the result (not through a shared queue: a helper killed while writing to
    # one leaves its lock held, and the caller would wait on it forever); the caller's logging shows them.
    keep = _KeepRecords()
    log = logging.getLogger("harness")
    log.handlers[:] = [keep]
    log.setLevel(level)
    log.propagate = False
    return export_run(summary, run_dir, data, cfg), keep.records


def export_runs(runs: list[tuple[dict[str, Any], Path, Dataset | None]], cfg: BenchConfig,
                workers: int | None = None) -> list[list]:
    """`export_run` for several training runs, in up to `workers` processes at once (default: one per
    core, at most one per run). Export is never timed, and the dynamo exporter is single-threaded
    Python (a few seconds a model), so runs of different tasks export side by side before any
    timing starts. One run, or one worker, exports in this process. A helper's log records reach this
    process's loggers when its run is done."""
    workers = min(len(runs), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [export_run(summary, run_dir, data, cfg) for summary, run_dir, data in runs]
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from harness.errors import first_line
    from harness.measure.worker import process_context

    level = logging.getLogger("harness").getEffectiveLevel()
    out = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
        futures = [pool.submit(_export_in_helper, summary, run_dir, data, cfg, level)
                   for summary, run_dir, data in runs]
        try:
            for future in futures:
                sources, records = future.result()
                for record in records:
                    logger = logging.getLogger(record.name)
                    if logger.isEnabledFor(record.levelno):
                        logger.handle(record)
                out.append(sources)
        except BrokenProcessPool as exc:
            raise HarnessError(f"an export process died ({first_line(exc)})") from None
    return out


# -- way in 2: ONNX files a user brings (harness/bench_onnx.py) -------------------------------------
from harness.bench_onnx import fit_fixed_batch, onnx_sources, parse_input_shape, parse_onnx_specs  # noqa: E402,F401


# -- measuring ----------------------------------------------------------------------------------
def _inputs(data: Dataset | None, shape: tuple[int, ...], batch_sizes: list[int]) -> dict[int, np.ndarray]:
    if data is not None and len(data.X_test):
        pool = data.X_test
    else:
        pool = np.random.default_rng(0).standard_normal((max(batch_sizes), *shape)).astype(np.float32)
    out = {}
    for bs in sorted(set(batch_sizes)):
        idx = np.arange(bs) % len(pool)
        out[bs] = np.ascontiguousarray(pool[idx], dtype=np.float32)
    return out


def model_entry(src: ModelSource) -> dict[str, Any]:
    from harness.measure.storage import storage_metrics
    from harness.onnx_tools import external_data_files

    storage = storage_metrics(checkpoint=src.checkpoint, onnx=src.onnx, params=src.params, macs=src.macs)
    entry: dict[str, Any] = {
        "params": src.params,
        "macs": src.macs,
        "input_shape": list(src.input_shape),
        "checkpoint": str(src.checkpoint) if src.checkpoint else None,
        "checkpoint_sha256": sha256_file(src.checkpoint) if src.checkpoint else None,
        "onnx": str(src.onnx),
        "onnx_sha256": sha256_file(src.onnx),
        "onnx_external_data": [{"path": str(p), "sha256": sha256_file(p)} for p in external_data_files(src.onnx)],
        "parity": src.parity,
        **{k: v for k, v in storage.items() if k not in ("params", "macs")},
    }
    if src.variant:
        entry.update(base_role=src.base_role, variant=src.variant, calibration=src.calibration, available=True)
    if src.training:
        entry["accuracy_train_summary"] = src.training.get("accuracy")
        entry["train_seconds"] = src.training.get("train_seconds")
        entry["family"] = src.training.get("family")
        entry["model_config"] = src.training.get("model_config")
    return entry


def paired_reference(timed: list, all_sources: list, here: list):
    """The source the paired suite will use as reference on this backend (the teacher, else the first
    model, as PairedSuite chooses), when it runs with a candidate beside it: it gets an A/A control."""
    if not any(s.name == "paired" for s in timed) or len(here) < 2:
        return None
    role = "teacher" if any(s.role == "teacher" for s in all_sources) else all_sources[0].role
    return next((s for s in here if s.role == role), None)


def _timed_suites(ctx, timed: list) -> list[Measurement]:
    """The timed suites in `cfg.n_processes()` fresh sets of worker processes.

    Per process set and backend, every model gets a worker of its own (harness/measure/worker.py);
    only one of them runs at a time. The model order rotates from one set to the next, so no
    model is always timed first. The runs of each key are then pooled (harness/measure/merge.py).
    """
    from harness.measure.base import SessionHandle
    from harness.measure.merge import merge_processes
    from harness.measure.worker import start_workers

    sources, task, n_proc = list(ctx.sources), ctx.task, ctx.config.n_processes()
    runs: list[Measurement] = []
    for p in range(n_proc):
        for b in ctx.backends:
            here = [s for s in sources if ctx.runs_on(s, b)]  # variants have no checkpoint: onnxruntime only
            if not here:
                continue
            order = here[p % len(here):] + here[:p % len(here)]
            log.info(f"{task}: timing ({', '.join(s.name for s in timed)}) on {b}, worker process set {p + 1}/{n_proc}")
            specs = [(b, src.artifact(), ctx.options, f"{task}/{src.role}/{b}") for src in order]
            # the paired suite's A/A control: a second worker with the reference's model (its own session)
            ref = paired_reference(timed, ctx.sources, order)
            if ref is not None:
                specs.append((b, ref.artifact(), ctx.options, f"{task}/{ref.role}/{b}/control"))
            workers = start_workers(specs)
            try:
                control = {"control_timer": workers[-1]} if ref is not None else {}
                hctx = ctx.with_handles([SessionHandle(task=src.task, role=src.role, backend=b, options=ctx.options,
                                                       session=None, macs=src.macs, timer=w,
                                                       extra=dict(control) if src is ref else {})
                                         for src, w in zip(order, workers)])
                for suite in timed:
                    runs += suite.measure(hctx)
            finally:
                for w in workers:
                    w.close()
    log.info(f"{task}: pooling {n_proc} worker process set(s)")
    return merge_processes(runs)


def loadgen_dir(results_path: str | Path) -> str:
    """Where the serving suite keeps LoadGen's logs: beside the results file, `<stem>-loadgen`."""
    p = Path(results_path)
    return str(p.parent / f"{p.stem}-loadgen")


PREFLIGHT_BACKENDS = ("openvino",)  # runtimes that may refuse a file ONNX Runtime ran (export parity passed there)


def _loadable_backends(sources: list, backends: list[str], cfg: BenchConfig, warnings: list[str]) -> list[str]:
    """Backends that can compile and run every model of this task: a runtime that cannot (an operator
    OpenVINO lacks) is one warning line naming the model and the runtime's own message, and the other
    runtimes are measured; without any runtime left, OptionError."""
    from harness.backends.base import get_backend
    from harness.errors import first_line

    keep = []
    for b in backends:
        if b not in PREFLIGHT_BACKENDS:
            keep.append(b)
            continue
        for src in sources:
            fixed = getattr(src, "fixed_batch", None) or 1
            try:
                sess = get_backend(b).open(src.artifact(), cfg.options())
                try:
                    sess.run(np.zeros((fixed, *src.input_shape), dtype=np.float32))
                finally:
                    sess.close()
            except Exception as exc:  # noqa: BLE001 - a runtime's refusal is reported, the others still run
                line = f"{b}: not measured for {src.task}: {src.role}: {first_line(exc)}"
                log.warning(line)
                warnings.append(line)
                break
        else:
            keep.append(b)
    if not keep:
        raise OptionError("no backend can run these models: " + "; ".join(warnings[-len(backends):]))
    return keep


def bench_models(sources: list, data: Dataset | None, cfg: BenchConfig, *, results: Results | None = None,
                 multi_task: bool = False) -> Results:
    """Measure every source on every backend with every selected suite; append to `results` (or a new one).

    A loop over the registry's suites (harness/measure/registry.py), in registry order; the timed
    ones run together, in the same worker process sets. `sources` may hold VariantFailures
    (harness/variants.py): they are listed as unavailable models and not measured.
    """
    from harness.measure.environment import collect
    from harness.measure.registry import SuiteContext, selected_suites
    from harness.variants import VariantFailure, record_failures

    results = results or Results(environment=collect(threads=cfg.threads), config=cfg.to_dict())
    from harness.backends.base import get_backend

    # each backend's own speed settings (OpenVINO's hint, streams, pinning, precision), as it reports them
    backends = []
    for b in cfg.backends:
        try:
            own = get_backend(b).settings(cfg.options())
        except MissingPackageError as exc:  # an optional extra not installed: one line, the others still run
            log.warning(f"{b}: not measured: {exc}")
            results.warnings.append(f"{b}: not measured: {exc}")
            continue
        backends.append(b)
        if own:
            results.config.setdefault("backend_settings", {})[b] = own
    if not backends:
        raise OptionError("no backend to measure on: " + "; ".join(results.warnings[-len(cfg.backends):]))
    failures = [s for s in sources if isinstance(s, VariantFailure)]
    sources = [s for s in sources if not isinstance(s, VariantFailure)]
    if not sources:
        raise DataError("no model to measure")
    task = sources[0].task
    for src in sources:
        results.add_model(src.task, src.role, model_entry(src), multi_task)
        if src.parity and not src.parity.get("passed", True):
            results.warnings.append(f"{src.task}/{src.role}: ONNX parity failed {src.parity}")
    if failures or cfg.variants != ("fp32",):
        record_failures(results, failures, multi_task)

    backends = _loadable_backends(sources, backends, cfg, results.warnings)
    needs = [b for b in backends if b in CHECKPOINT_BACKENDS]
    if any(s.checkpoint is None and s.variant is None for s in sources) and needs:
        raise OptionError(f"the {' and '.join(needs)} backend needs training checkpoints; ONNX-only models run on "
                          "--backends onnxruntime")

    all_bs = sorted(set(cfg.batch_sizes) | set(cfg.throughput_batch_sizes if "throughput" in cfg.suites else []))
    ctx = SuiteContext(sources=list(sources), data=data, inputs=_inputs(data, sources[0].input_shape, all_bs),
                       backends=backends, options=cfg.options(), config=cfg, selected=frozenset(cfg.suites),
                       model_entries={(s.task, s.role): results.model_entry(s.task, s.role) or {} for s in sources})
    suites = [s for s in selected_suites(cfg.suites) if s.applies(ctx)]
    timed = [s for s in suites if s.timed]
    measurements: list[Measurement] = []
    for suite in suites:
        if suite.timed:
            if suite is timed[0]:
                measurements += _timed_suites(ctx, timed)
            continue
        if suite.once_per_results and any(m.suite == suite.name for m in results.measurements):
            continue
        log.info(f"{task}: {suite.announce(ctx)}")
        try:
            measurements += suite.measure(ctx)
        except MissingPackageError as exc:  # an optional extra (LoadGen): one line, the other suites' results kept
            log.warning(f"{suite.name}: not measured: {exc}")
            results.warnings.append(f"{suite.name}: not measured: {exc}")
    if cfg.profile:
        from harness.profile_cli import profile_measurements

        measurements += profile_measurements(sources, backends, cfg, results.warnings)
    results.measurements += measurements
    return results
