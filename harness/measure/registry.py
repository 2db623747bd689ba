"""The suite registry: what `harness bench --suites` can run, one class per suite.

Every suite has one signature, `measure(ctx) -> list[Measurement]`, with `ctx` a `SuiteContext`:
the models (`ctx.sources`), the test data, the prepared input batches, the backend options and the
bench config. `bench_models` is a loop over the selected suites.

Timed suites (`timed = True`) run inside fresh worker processes, `ctx.processes` sets of them, with
one worker per model (harness/measure/worker.py). For those, `ctx.handles` holds the current
set's handles on one backend, and `merge` pools their per-process runs into one Measurement per key
afterwards. Every other suite runs once, in the bench process or in children it starts itself.

Adding a suite: subclass `Suite`, give it a `name` (and a typed metrics class registered with
`harness.metrics.register_metrics`), decorate it with `@register_suite`: see docs/extending.md.
Why a registry: suites used to be an if-chain in bench.py, each called with its own arguments.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from harness.results import Measurement

if TYPE_CHECKING:  # the registry itself stays light: suites import their heavy modules when they run
    import numpy as np

    from harness.backends.base import BackendOptions
    from harness.measure.base import SessionHandle
    from harness.tasks.base import Dataset


# Backends that open the training checkpoint (an ONNX-only model, e.g. a variant, cannot run on them).
CHECKPOINT_BACKENDS = ("torch", "torch-compile")


@dataclass(frozen=True)
class SuiteContext:
    """Everything a suite may use. Suites read it; they never write files."""

    sources: Sequence[Any]  # harness.bench.ModelSource: task, role, onnx, checkpoint, params, macs, ...
    data: "Dataset | None"  # None for an ONNX pair benched without --data
    inputs: "dict[int, np.ndarray]"  # batch size -> a prepared input batch
    backends: Sequence[str]
    options: "BackendOptions"
    config: Any  # harness.bench.BenchConfig
    selected: frozenset[str]  # the suite names the user asked for
    model_entries: dict[tuple[str, str], dict[str, Any]]  # (task, role) -> results' model entry (sizes, hashes)
    handles: "Sequence[SessionHandle] | None" = None  # timed suites: this worker set's handles, one backend

    @property
    def task(self) -> str:
        return self.sources[0].task

    @staticmethod
    def runs_on(source: Any, backend: str) -> bool:
        """Whether a source can open on a backend: torch needs a checkpoint, so ONNX variants
        (harness/variants.py, role "<role>@<variant>") run on onnxruntime only."""
        return backend not in CHECKPOINT_BACKENDS or getattr(source, "checkpoint", None) is not None

    def with_handles(self, handles: "Sequence[SessionHandle]") -> "SuiteContext":
        return replace(self, handles=list(handles))


class Suite:
    """One measurement suite. `names`: the `--suites` names it answers to (default: its name)."""

    name: ClassVar[str] = ""
    names: ClassVar[tuple[str, ...]] = ()
    describe: ClassVar[str] = ""  # one line for progress output and `harness bench --help`
    in_default: ClassVar[bool] = False  # part of `harness bench`'s default suite list
    once_per_results: ClassVar[bool] = False  # measures the machine, not the models: once per results file
    timed: ClassVar[bool] = False
    # timed suites: (per-process runs of one key, thresholds or None) -> one pooled Measurement
    merge: ClassVar[Callable[..., Measurement] | None] = None

    @classmethod
    def answers_to(cls) -> tuple[str, ...]:
        return cls.names or (cls.name,)

    def announce(self, ctx: SuiteContext) -> str:
        """The progress line logged when the suite starts."""
        return f"{self.name}: {self.describe}"

    def applies(self, ctx: SuiteContext) -> bool:
        """Whether the suite can run on this bench (e.g. accuracy needs test data)."""
        return True

    def measure(self, ctx: SuiteContext) -> list[Measurement]:
        raise NotImplementedError


SUITE_REGISTRY: dict[str, type[Suite]] = {}


def register_suite(cls: type[Suite]) -> type[Suite]:
    """Class decorator: make a suite selectable by its names (a later registration replaces one)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    for n in cls.answers_to():
        SUITE_REGISTRY[n] = cls
    return cls


def suite_names() -> tuple[str, ...]:
    _load_builtins()
    return tuple(SUITE_REGISTRY)


def selected_suites(names: Sequence[str]) -> list[Suite]:
    """One instance per suite class asked for, in registry order (timed suites share worker sets)."""
    _load_builtins()
    classes: dict[type[Suite], None] = {}
    for n in SUITE_REGISTRY:
        if n in names:
            classes[SUITE_REGISTRY[n]] = None
    return [cls() for cls in classes]


def default_suite_names() -> tuple[str, ...]:
    _load_builtins()
    return tuple(n for n, cls in SUITE_REGISTRY.items() if cls.in_default)


def merge_runs(runs: Sequence[Measurement], thresholds: Any = None) -> Measurement:
    """The merge of a timed suite's per-process runs of one key (pass-through for other suites)."""
    _load_builtins()
    cls = SUITE_REGISTRY.get(runs[0].suite)
    return cls.merge(runs, thresholds) if cls is not None and cls.merge is not None else runs[0]


def _load_builtins() -> None:
    import harness.measure.builtin_suites  # noqa: F401  (registers on import)


__all__ = ["SUITE_REGISTRY", "Suite", "SuiteContext", "default_suite_names", "merge_runs", "register_suite",
           "selected_suites", "suite_names"]
