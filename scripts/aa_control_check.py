"""Check the paired suite's A/A control: does it pass unchanged runs and fail a run with planted interference?

    python scripts/aa_control_check.py RUN_DIR [--k 3] [--planted 1] [--backends onnxruntime,torch]
                                       [--threads N] [--batch-sizes 1] [--processes 2]

Every paired run times the reference (the teacher) beside a second worker process of itself, the control,
in the same rounds (harness/measure/paired.py, `control_check`); the run is flagged when the control's
ratio CI excludes 1.00 +- CONTROL_MARGIN.

1. Benches RUN_DIR (a training run folder, e.g. runs/default/osuleaf) K times unchanged with the paired
   suite (`--quick` timing windows, as the main job) and prints, per backend and batch size, the control's
   ratio, its CI and whether the run passed.
2. Benches it `--planted` more times with interference planted on the control's blocks only: a CPU hog
   process (a busy loop) is resumed (SIGCONT) just before each of the control's blocks and stopped
   (SIGSTOP) just after, so the control shares the cores with something the reference never meets, as
   a spinning thread pool left beside one session would. The hook wraps the control worker's `block`
   call in this process only; nothing in the harness changes.

Exit code 0 when every unchanged run passed and every planted run was flagged, else 1.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from harness import api
from harness.measure import worker as worker_mod
from harness.measure.paired import CONTROL_MARGIN


class HoggedTimer:
    """A worker proxy whose timed blocks run beside a resumed CPU hog; everything else passes through."""

    def __init__(self, inner, hog: subprocess.Popen):
        self._inner, self._hog = inner, hog

    def block(self, *args, **kwargs):
        os.kill(self._hog.pid, signal.SIGCONT)
        try:
            return self._inner.block(*args, **kwargs)
        finally:
            os.kill(self._hog.pid, signal.SIGSTOP)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@contextmanager
def planted_interference():
    """While active, every control worker `harness bench` starts is wrapped in a HoggedTimer."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.kill(hog.pid, signal.SIGSTOP)
    original = worker_mod.start_workers

    def start_workers(specs, *args, **kwargs):
        workers = original(specs, *args, **kwargs)
        return [HoggedTimer(w, hog) if str(spec[-1]).endswith("/control") else w
                for w, spec in zip(workers, specs)]

    worker_mod.start_workers = start_workers
    try:
        yield
    finally:
        worker_mod.start_workers = original
        hog.kill()
        hog.wait()


def control_rows(results) -> list[dict]:
    rows = []
    for m in results.measurements:
        if m.suite != "paired" or m.metrics.control_ratio is None:
            continue
        ci = m.metrics.control_ci95 or (None, None)
        rows.append({"model": m.model, "backend": m.backend, "batch": m.batch_size, "ratio": m.metrics.control_ratio,
                     "lo": ci[0], "hi": ci[1], "valid": m.metrics.control_valid})
    # the control is the reference's: one per backend and batch size, whatever the candidate
    seen, out = set(), []
    for r in rows:
        key = (r["backend"], r["batch"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def bench_once(run_dir: Path, args, out: Path):
    return api.bench(run_dir, out=out, suites=["paired"], backends=args.backends, batch_sizes=args.batch_sizes,
                     threads=args.threads, processes=args.processes, quick=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--k", type=int, default=3, help="unchanged benches")
    p.add_argument("--planted", type=int, default=1, help="benches with interference planted on the control")
    p.add_argument("--backends", default="onnxruntime,torch")
    p.add_argument("--batch-sizes", default="1")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--processes", type=int, default=2)
    args = p.parse_args(argv)
    args.backends = args.backends.split(",")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    ok = True
    print(f"A/A control: fails when its 95% CI excludes 1.00 +- {CONTROL_MARGIN:.0%}; {args.run_dir}, "
          f"{args.threads} thread(s), {args.processes} worker process sets, --quick")
    tally = {"unchanged": [0, 0], "planted": [0, 0]}  # [runs as expected, runs]
    with tempfile.TemporaryDirectory() as tmp:
        plan = [("unchanged", i) for i in range(args.k)] + [("planted", i) for i in range(args.planted)]
        for kind, i in plan:
            out = Path(tmp) / f"{kind}{i}.json"
            if kind == "planted":
                with planted_interference():
                    res = bench_once(args.run_dir, args, out)
            else:
                res = bench_once(args.run_dir, args, out)
            rows = control_rows(res)
            for r in rows:
                print(f"{kind:>9} {i + 1}: {r['backend']:<12} batch {r['batch']}: A/A ratio {r['ratio']:.3f} "
                      f"[{r['lo']:.3f}, {r['hi']:.3f}] -> {'pass' if r['valid'] else 'FLAGGED'}")
            # a run is flagged when any of its controls fails, as the report flags it
            flagged = any(not r["valid"] for r in rows)
            tally[kind][0] += flagged == (kind == "planted")
            tally[kind][1] += 1
    (aa_ok, aa_n), (pl_ok, pl_n) = tally["unchanged"], tally["planted"]
    ok = aa_ok == aa_n and pl_ok == pl_n
    print(f"unchanged runs passed {aa_ok}/{aa_n}; planted runs flagged {pl_ok}/{pl_n}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
