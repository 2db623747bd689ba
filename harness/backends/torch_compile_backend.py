"""torch.compile backend: a harness checkpoint (.pt) in, the module compiled by TorchInductor, float32 logits out.

    session = get_backend("torch-compile").open(artifact, BackendOptions(threads=2))
    prepared = session.prepare(batch)    # compiles for this input shape (outside timing)
    session.compile_s                    # {batch size: seconds of its first call (compile + one run)}

Loading, devices, input checks and threads are the torch backend's (`TorchSession` is the base
class): the checkpoint opens exactly as on "torch", then the eval module is wrapped with
`torch.compile`.

Compilation is lazy in torch: it happens on the first call for each new input shape. A timed call
must never include it, so `prepare(batch)` - which the timers call outside any timed region - makes
that first call for a shape it has not seen and records its duration in `compile_s`. A second batch
size compiles a graph of its own (`dynamic=False`: every batch size gets kernels specialised to its
sizes, which is what the latency and throughput suites want to measure; marking the batch axis
dynamic compiles one graph for all sizes, but its kernels were slower: osuleaf's teacher at batch 8
took 14.0 ms against 4.9 ms static and 5.3 ms eager on the 2-core AVX-512 test machine).

Settings, chosen on purpose:
  * mode "default" (no `mode`): "reduce-overhead" means CUDA graphs and does nothing for CPU
    inference; "max-autotune" on CPU only adds GEMM template autotuning (these models are
    convolutions, whose kernels stay oneDNN's) and costs more compile time (not measured here).
  * inductor `freezing` on: the weights become constants, so inductor folds batch norm into the
    convolutions and prepacks the weights in oneDNN's layout - PyTorch's recommended setting for
    CPU inference. The module is inference-only here (calls run under `torch.inference_mode`).
    Measured: moving-digits' Conv3d teacher at batch 8 ran 2.8 ms frozen, 15.0 ms unfrozen, 11.7 ms
    eager; freezing also compiled in about half the time.
  * fullgraph=True: the whole model is one graph, or `prepare` fails with one line naming the graph
    break. Without it dynamo would silently run the unsupported part eagerly, and past its
    recompile limit (RECOMPILE_LIMIT shapes here, per session) the whole model - eager
    timings reported as compiled ones. With it, both are errors.
  * threads: exactly the torch backend's (`torch.set_num_threads(options.threads)` before the
    first call); inductor's generated C++ kernels take their OpenMP thread count from that value
    when they are compiled, so the compiled graph runs on `options.threads` threads as eager does.

Compile time depends on inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR, by default under the
temp dir): on the 2-core test machine, under load, a first batch-1 compile with an empty cache took
17-43 s and batch 8 after it 6-20 s; with the graphs cached, about 3 s and 1 s.
`compile_cache_hits` counts the graphs this session loaded from that cache.

Failures become one line: no C++ compiler (checked when the session opens) or a compile error
for the model (raised by `prepare`) give a HarnessError naming the cause, never a traceback.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from harness.backends.base import Artifact, BackendOptions, register_backend
from harness.backends.torch_backend import TorchBackend, TorchSession
from harness.errors import HarnessError, OptionError, first_line

log = logging.getLogger(__name__)

DYNAMIC = False  # one compiled graph per batch size
INDUCTOR_OPTIONS = {"freezing": True}  # torch.compile takes `mode` or `options`, not both: this is mode "default" + freezing
RECOMPILE_LIMIT = 64  # graphs (batch sizes) per session; dynamo's global default of 8 is per code object


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of a chain: dynamo wraps inductor's errors (BackendCompilerFailed)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        if inner is None:
            break
        exc = inner
    return exc


def _describe(exc: BaseException) -> str:
    return first_line(_root_cause(exc), with_type=True)


def check_compiler() -> str:
    """The C++ compiler inductor will use; HarnessError (one line) when there is none."""
    try:
        from torch._inductor import cpp_builder

        return cpp_builder.get_cpp_compiler()
    except Exception as exc:  # noqa: BLE001 - InvalidCxxCompiler, ImportError, ...
        raise HarnessError(f"torch-compile backend unusable: torch.compile needs a C++ compiler ({_describe(exc)})") from None


class TorchCompileSession(TorchSession):
    backend = "torch-compile"

    def __init__(
        self,
        model: torch.nn.Module,
        options: BackendOptions,
        input_shape: tuple[int, ...] | None = None,
        artifact: Artifact | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        dynamic: bool = DYNAMIC,
        inductor_options: dict[str, Any] | None = None,
    ):
        super().__init__(model, options, input_shape=input_shape, artifact=artifact, metadata=metadata)
        if options.device != "cpu":
            raise OptionError("the torch-compile backend is measured on CPU only; use --device cpu")
        self.eager = self.model
        self.dynamic = dynamic
        self.inductor_options = dict(INDUCTOR_OPTIONS if inductor_options is None else inductor_options)
        self.compile_s: dict[int, float] = {}  # batch size -> seconds of its first (compiling) call
        self.compile_cache_hits = 0
        self._compiled: set[tuple[int, ...]] = set()
        try:
            self.model = torch.compile(self.eager, dynamic=dynamic, fullgraph=True, options=self.inductor_options,
                                       recompile_limit=RECOMPILE_LIMIT)
        except Exception as exc:  # noqa: BLE001 - e.g. a Python version dynamo does not support
            raise HarnessError(f"torch.compile cannot wrap the model: {_describe(exc)}") from None

    @classmethod
    def from_module(
        cls, module: torch.nn.Module, options: BackendOptions | None = None, input_shape: tuple[int, ...] | None = None
    ) -> "TorchCompileSession":
        check_compiler()
        return cls(module, options or BackendOptions(), input_shape=input_shape)

    # -- outside timing -----------------------------------------------------------------------
    def prepare(self, batch: np.ndarray) -> torch.Tensor:
        tensor = super().prepare(batch)  # shape check and thread count first: the kernels bake the count in
        shape = tuple(tensor.shape)
        if shape not in self._compiled:
            self._compile(tensor)
        return tensor

    def _compile(self, tensor: torch.Tensor) -> None:
        from torch._dynamo.utils import counters

        shape = tuple(tensor.shape)
        hits = counters["inductor"]["fxgraph_cache_hit"]
        t0 = time.perf_counter()
        try:
            self.run_prepared(tensor)
        except Exception as exc:  # noqa: BLE001 - BackendCompilerFailed and friends: one line
            raise HarnessError(f"torch.compile failed for input shape {shape}: {_describe(exc)}") from None
        seconds = time.perf_counter() - t0
        self._compiled.add(shape)
        self.compile_s[shape[0]] = self.compile_s.get(shape[0], 0.0) + seconds
        self.compile_cache_hits += counters["inductor"]["fxgraph_cache_hit"] - hits
        log.debug(f"torch.compile: input shape {shape} compiled in {seconds:.2f}s")

    def close(self) -> None:
        super().close()
        self.eager = None  # type: ignore[assignment]


@register_backend
class TorchCompileBackend(TorchBackend):
    name = "torch-compile"

    def open(self, artifact: Artifact, options: BackendOptions) -> TorchCompileSession:
        if options.device != "cpu":
            raise OptionError("the torch-compile backend is measured on CPU only; use --device cpu")
        check_compiler()
        eager = super().open(artifact, options)  # the torch backend's loading: checkpoint, metadata, threads
        return TorchCompileSession(eager.model, options, input_shape=eager.input_shape or None, artifact=artifact,
                                   metadata=eager.metadata)

    def available_devices(self) -> list[str]:
        return ["cpu"]
