"""The built-in suites, registered in the order `harness bench` runs them.

Each adapts one measuring module (accuracy.py, latency.py, ...) to the registry's one signature;
the measuring itself stays in those modules.
"""
from __future__ import annotations

import logging

from harness.measure.registry import Suite as _Suite
from harness.measure.registry import SuiteContext, register_suite
from harness.measure.timing import TimingConfig
from harness.results import Measurement

log = logging.getLogger(__name__)


class Suite(_Suite):
    in_default = True  # every built-in suite runs by default


@register_suite
class AccuracySuite(Suite):
    name = "accuracy"
    describe = "top-1 accuracy on the test split, every model on every backend"

    def applies(self, ctx: SuiteContext) -> bool:
        return ctx.data is not None

    def announce(self, ctx: SuiteContext) -> str:
        n = sum(ctx.runs_on(s, b) for s in ctx.sources for b in ctx.backends)
        return f"accuracy on {len(ctx.data.y_test)} test samples x {n} sessions"

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        from harness.backends.base import get_backend
        from harness.measure import accuracy
        from harness.measure.base import SessionHandle

        handles = []
        try:  # in this process: nothing is timed here
            for src in ctx.sources:
                for b in ctx.backends:
                    if not ctx.runs_on(src, b):
                        continue
                    handles.append(SessionHandle(task=src.task, role=src.role, backend=b, options=ctx.options,
                                                 session=get_backend(b).open(src.artifact(), ctx.options),
                                                 macs=src.macs))
            bases = {s.role: s.base_role for s in ctx.sources if getattr(s, "base_role", None)}
            return accuracy.measure(handles, {"X_test": ctx.data.X_test, "y_test": ctx.data.y_test, "batch_size": ctx.config.fixed_batch or 64,
                                              "fixed_batch": bool(ctx.config.fixed_batch),
                                              "base_roles": bases})
        finally:
            for h in handles:
                h.session.close()


def _merge_latency(runs, thresholds=None):
    from harness.measure import latency

    return latency.merge_runs(runs, thresholds)


def _merge_paired(runs, thresholds=None):
    from harness.measure import paired

    return paired.merge_runs(runs, thresholds)


@register_suite
class LatencySuite(Suite):
    name = "latency"
    timed = True
    merge = staticmethod(_merge_latency)
    describe = "per-call latency of each model on its own, at each batch size"

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        from harness.measure import latency

        return latency.measure(ctx.handles, ctx.inputs, latency.LatencyConfig(
            timing=ctx.config.timing(), batch_sizes=tuple(ctx.config.batch_sizes), pooled=True))


@register_suite
class PairedSuite(Suite):
    name = "paired"
    timed = True
    merge = staticmethod(_merge_paired)
    describe = "the teacher and its students interleaved round robin: each speedup with its CI"

    def applies(self, ctx: SuiteContext) -> bool:
        return len(ctx.sources) > 1

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        from harness.measure import paired

        quick = ctx.config.quick
        ref = "teacher" if any(s.role == "teacher" for s in ctx.sources) else ctx.sources[0].role
        # Quick (CI, the default main job): interleaved only at the first batch size, the KD verdict's;
        # the others' speedups come from the latency suite's ratio (the report says which, per batch).
        # It halves the suite: 35 s of the main job.
        sizes = ctx.config.batch_sizes[:1] if quick else ctx.config.batch_sizes
        return paired.measure(ctx.handles, ctx.inputs, paired.PairedConfig(
            batch_sizes=tuple(sizes), reference_role=ref,
            rounds=20 if quick else 40, block_time_s=0.02 if quick else 0.05,
            max_time_s=10.0 if quick else 60.0, pooled=True,
            # Quick, after the latency suite: the models are already warm in these same workers, so the
            # warm-up only sizes each model's block; the quick timing windows' warm-up does that.
            **({"warmup": TimingConfig(warmup_min_s=0.1, warmup_min_calls=3)}
               if quick and "latency" in ctx.selected else {})))


@register_suite
class ThroughputSuite(Suite):
    name = "throughput"
    timed = True
    merge = staticmethod(_merge_latency)
    describe = "samples/s over a batch-size sweep, back-to-back calls"

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        from harness.measure import throughput

        return throughput.measure(ctx.handles, ctx.inputs, throughput.ThroughputConfig(
            batch_sizes=tuple(ctx.config.throughput_batch_sizes), pooled=True))


@register_suite
class MemorySuite(Suite):
    """Memory and cold start share one fresh child process per model x backend."""

    name = "memory"
    names = ("memory", "cold_start")
    describe = "peak RSS, load time and first inference, one child process per model x backend"

    def announce(self, ctx: SuiteContext) -> str:
        return "memory and cold start, one child process per model x backend"

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        from harness.measure import memory

        return memory.measure_sources(list(ctx.sources), list(ctx.backends), ctx.options,
                                      batch_size=ctx.config.batch_sizes[0],
                                      suites=[s for s in self.answers_to() if s in ctx.selected],
                                      repeats=1 if ctx.config.quick else 3)


@register_suite
class StorageSuite(Suite):
    name = "storage"
    describe = "bytes on disk (checkpoint, ONNX, gzip), parameters and MACs"

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        from harness.metrics import StorageMetrics

        out = []
        for src in ctx.sources:
            entry = ctx.model_entries.get((src.task, src.role), {})
            sizes = {k: entry[k] for k in StorageMetrics.field_names() if k in entry}  # not the whole entry
            out.append(Measurement(task=src.task, model=src.role, backend="any", suite="storage", batch_size=0,
                                   threads=ctx.config.threads, metrics=StorageMetrics.from_dict(sizes, strict=True)))
        return out


@register_suite
class RooflineSuite(Suite):
    name = "roofline"
    once_per_results = True
    describe = "the machine's measured GEMM peak, for % of peak (once per results file)"

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        from harness.measure.roofline import measure_peak_gflops

        from harness.measure.roofline import SOURCES

        # a model a runtime runs is judged against that runtime's own GEMM too, where it has one beyond these
        extra = tuple(b for b in ctx.backends if b == "openvino")
        peak = measure_peak_gflops(threads=ctx.config.threads, sources=SOURCES + extra)
        return [Measurement(task="", model="", backend="torch", suite="roofline", batch_size=0,
                            threads=ctx.config.threads, metrics=peak)]


@register_suite
class ServingSuite(Suite):
    name = "serving"
    in_default = False  # minutes of LoadGen runs: asked for by name (--suites ...,serving)
    describe = ("MLPerf LoadGen SingleStream p90, Offline samples/s and the Server scenario's max QPS under a p99 "
                "bound, dynamic batching off and on")

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        import numpy as np

        from harness.backends.base import get_backend
        from harness.measure import serving
        from harness.measure.base import SessionHandle
        from harness.measure.loadgen_run import loadgen
        from harness.roles import REFERENCE

        loadgen()  # MissingPackageError: one line from the bench loop, the other suites keep their results
        if ctx.data is not None:
            samples = np.ascontiguousarray(np.asarray(ctx.data.X_test[:1024]), dtype=np.float32)
        else:
            samples = ctx.inputs[max(ctx.inputs)]
        cfg = ctx.config.serving()
        fixed = ctx.config.fixed_batch
        if fixed and fixed > 1:  # LoadGen's queries carry one sample each; such a model cannot take one
            log.warning(f"serving: not measured: the models take exactly {fixed} samples per call")
            return []
        if fixed == 1:
            from dataclasses import replace

            cfg = replace(cfg, batching=(False,))
        out: list[Measurement] = []
        bounds: dict = {}  # backend -> the teacher's bound, shared by its students
        # one session open at a time (nothing runs beside a LoadGen run); the teacher first: its run sets the bound
        for src in sorted(ctx.sources, key=lambda s: s.role != REFERENCE):
            for b in sorted(ctx.backends):
                if not ctx.runs_on(src, b):
                    continue
                sess = get_backend(b).open(src.artifact(), ctx.options)
                try:
                    h = SessionHandle(task=src.task, role=src.role, backend=b, options=ctx.options, session=sess,
                                      macs=src.macs)
                    out += serving.measure([h], samples, cfg, ctx.config.fixed_batch, bounds=bounds)
                finally:
                    sess.close()
        return out
