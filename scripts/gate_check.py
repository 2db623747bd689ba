"""Check the regression gate itself: does it pass unchanged models and catch a slower student?

    python scripts/gate_check.py [--run RUN_DIR] [--k 5] [--batch-sizes 1,8] [--threads 2]
                                 [--slowdown 1.3] [--processes N] [--full] [--rules FILE] [--confirm] [--ab]

1. Takes a training run (default: trains a quick gunpoint trio in a temporary folder) and exports
   its teacher and KD student to ONNX.
2. Builds a *planted* student per batch size: the same weights, plus parameter-free work before the
   convolutions (the input is repeated twice along its last axis and averaged back, an exact
   identity, `repeats` times). `repeats` is calibrated until the planted student is `--slowdown`
   (default 1.3x) slower than the real one at that batch size, each timed on its own in fresh
   worker processes (the isolated route, independent of the paired suite the gate judges).
   Its ONNX file is the same size to within a few kB (a few extra nodes). The ratio is taken
   between 10th-percentile calls, as the gate's fast-state speedup.
3. Benches the real pair once as the baseline, then K more times (A/A) and K times with the
   planted student, each with ONNX Runtime and the paired suite, and gates every run against
   the baseline with the given rules (default: the built-in rules, a 10% speedup drop).
4. Prints the fast-state (p10) speedup the gate judges and the p50 speedup, and, per batch size,
   how many A/A runs passed (verdict pass or not significant: the gate exits 0) and how many planted runs the speedup rule
   caught, with the speedups measured. This is what a user runs to calibrate the thresholds for
   their own runners: an A/A failure means the threshold is tighter than the runner's noise.

With `--ab`, speed is judged as `harness gate` does when the baseline's models are available: the
baseline student timed beside the current (real or planted) student in the same worker processes
(harness/compare.py), by the `ab_latency` rule, instead of the ratio of the two benches' speedups.

Exit code 0 when every A/A run passed and every planted run was caught, else 1.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from harness.artifacts import load_checkpoint
from harness.bench import BenchConfig, bench_models, onnx_sources
from harness.export import export_onnx
from harness.gate import default_rules, evaluate_gate, load_rules


class PlantedSlowdown(torch.nn.Module):
    """`model` after `repeats` exact identities that cost time: repeat the last axis twice, average back."""

    def __init__(self, model: torch.nn.Module, repeats: int):
        super().__init__()
        self.model = model
        self.repeats = repeats

    def forward(self, x):
        for _ in range(self.repeats):
            y = x.repeat_interleave(2, dim=-1)
            x = y.reshape(*y.shape[:-1], -1, 2).mean(dim=-1)
        return self.model(x)


def _ratio(a: Path, b: Path, x: np.ndarray, threads: int, repeats: int = 3) -> float:
    """p10(b) / p10(a), each model timed on its own in a fresh worker process, alternately.

    The latency suite's isolated timing, not the paired suite the gate judges: the slowdown is
    calibrated by a route independent of the figure under test. The 10th percentile, as the
    gate's fast-state speedup (on a VM that changes speed state on its own, a median ratio
    calibrates to whatever state the run happened to see).
    """
    from harness.backends.base import Artifact, BackendOptions
    from harness.measure.timing import TimingConfig
    from harness.measure.worker import start_workers

    cfg = TimingConfig(warmup_min_s=0.1, min_time_s=0.5, max_time_s=3.0)
    ta, tb = [], []
    for _ in range(repeats):
        for path, out in ((a, ta), (b, tb)):
            (w,) = start_workers([("onnxruntime", Artifact(role=path.stem, onnx=str(path)),
                                   BackendOptions(threads=threads), path.stem)])
            try:
                out.append(np.percentile(w.time(x, cfg).samples_ns, 10))
            finally:
                w.close()
    return float(np.median(tb) / np.median(ta))


def plant(student: torch.nn.Module, shape: tuple[int, ...], real: Path, out: Path, bs: int, threads: int,
          slowdown: float) -> tuple[int, float]:
    """Export the planted student with the repeat count that gives `slowdown` at batch `bs`."""
    x = np.random.default_rng(0).standard_normal((bs, *shape)).astype(np.float32)
    lo, hi, repeats = 0, None, 1
    best = (1, 1.0)
    for _ in range(12):  # grow until past the target, then bisect
        export_onnx(PlantedSlowdown(student, repeats), shape, out)
        r = _ratio(real, out, x, threads)
        if abs(r - slowdown) < abs(best[1] - slowdown):
            best = (repeats, r)
        if abs(r - slowdown) <= 0.03:
            break
        if r < slowdown:
            lo = repeats
            repeats = repeats * 2 if hi is None else (repeats + hi) // 2
        else:
            hi = repeats
            repeats = (lo + repeats) // 2
        if hi is not None and hi - lo <= 1:
            break
    export_onnx(PlantedSlowdown(student, best[0]), shape, out)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", default=None, help="training run folder (default: train a quick gunpoint trio)")
    ap.add_argument("--k", type=int, default=5, help="A/A and planted benches per batch size")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slowdown", type=float, default=1.3)
    ap.add_argument("--processes", type=int, default=None, help="worker process sets per bench (default: bench's)")
    ap.add_argument("--full", action="store_true", help="full timing windows (default: quick, as in CI)")
    ap.add_argument("--rules", default=None, help="gate rules file (default: the built-in rules)")
    ap.add_argument("--ab", action="store_true",
                    help="judge speed as `harness gate` does when the baseline's models are available: the "
                         "baseline student timed beside the current one (ab_latency rule), not the ratio of speedups")
    ap.add_argument("--confirm", action="store_true",
                    help="as .ci/run: a failing verdict is re-judged on the bench pooled with one more bench "
                         "(harness merge, same host) before it counts")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")  # no bench progress
    rules = load_rules(args.rules) if args.rules else default_rules()
    work = Path(tempfile.mkdtemp(prefix="gate-check-"))
    run = Path(args.run) if args.run else work / "run"
    if not args.run:
        print(f"training a quick gunpoint trio in {run}", flush=True)
        subprocess.run([sys.executable, "-m", "harness.cli", "train", "--task", "gunpoint", "--epochs", "30",
                        "--no-augment", "--mixup", "0", "--kd-logits", "cached", "--no-even-batches",
                        "--seeds", "0", "--out", str(run),
                        "--quiet"], check=True, stdout=subprocess.DEVNULL)
    ckpt = {p.name.split("-seed")[0]: p for p in sorted((run / "checkpoints").glob("*-seed0.pt"))}
    teacher, meta = load_checkpoint(ckpt["teacher"])
    student, _ = load_checkpoint(ckpt["student_kd"])
    shape = tuple(meta["input_shape"])
    paths = {"teacher": work / "teacher.onnx", "student": work / "student.onnx"}
    export_onnx(teacher.eval(), shape, paths["teacher"])
    export_onnx(student.eval(), shape, paths["student"])

    cfg = BenchConfig(backends=["onnxruntime"], suites=["paired"], threads=args.threads, quick=not args.full,
                      processes=args.processes)

    def bench(student_path: Path, bs: int):
        sources = onnx_sources({"teacher": paths["teacher"], "student": student_path}, shape, None, "gate-check")
        return bench_models(sources, None, replace(cfg, batch_sizes=[bs]))

    def speed(res) -> str:
        (m,) = [m for m in res.measurements if m.suite == "paired"]
        lo, hi = m.metrics.speedup_ci95
        flo, fhi = m.metrics.speedup_p10_ci95
        return (f"p10 {m.metrics.speedup_p10:.2f}x [{flo:.2f}, {fhi:.2f}]  "
                f"(p50 {m.metrics.speedup:.2f}x [{lo:.2f}, {hi:.2f}])")

    def ab_verdict(base, cur, bs: int) -> tuple[str, str]:
        """The gate's A/B judgement: the baseline's student beside the current one, same processes."""
        from harness.compare import CompareConfig, compare

        ab = compare(base, cur, roles=["student"], config=CompareConfig(
            batch_sizes=(bs,), threads=args.threads, processes=cfg.n_processes(), quick=not args.full))
        rows = [r for r in evaluate_gate(base, cur, rules, ab=ab) if r.rule == "ab_latency"]
        (m,) = ab.measurements
        x = m.metrics
        lo, hi = x.latency_ratio_p10_ci95
        return (rows[0].verdict if rows else "no ab_latency row",
                f"A/B current/baseline p10 {x.latency_ratio_p10:.3f} [{lo:.3f}, {hi:.3f}] (p50 {x.latency_ratio:.3f}, "
                f"A/A {x.control_ratio:.3f})")

    ok = True
    print(f"gate check: {args.k} A/A and {args.k} planted ({args.slowdown}x slower student) benches per batch size, "
          f"ONNX Runtime, {args.threads} thread(s), {'full' if args.full else 'quick'} windows, "
          f"{cfg.n_processes()} worker process set(s) per bench", flush=True)
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        planted = work / f"planted_b{bs}.onnx"
        repeats, ratio = plant(student, shape, paths["student"], planted, bs, args.threads, args.slowdown)
        size = (planted.stat().st_size, paths["student"].stat().st_size)
        print(f"batch {bs}: planted student = {repeats} identity repeats, {ratio:.2f}x slower timed alone "
              f"(p10); ONNX {size[0]:,} vs {size[1]:,} bytes", flush=True)
        base = bench(paths["student"], bs)
        print(f"  baseline          speedup {speed(base)}", flush=True)
        passed = caught = 0
        for kind in ("A/A", "planted"):
            for i in range(args.k):
                current_student = paths["student"] if kind == "A/A" else planted
                cur = bench(current_student, bs)
                if args.ab:
                    v, shown = ab_verdict(base, cur, bs)
                    passed += kind == "A/A" and v in ("pass", "not significant")
                    caught += kind == "planted" and v == "fail"
                    print(f"  {kind:8s} {i + 1}/{args.k}  {shown}  ab_latency rule: {v}", flush=True)
                    continue
                verdicts = [r.verdict for r in evaluate_gate(base, cur, rules) if r.rule == "speedup"]
                v = verdicts[0] if verdicts else "no speedup row"
                if args.confirm and v == "fail":
                    from harness.results_merge import merge_results

                    cur = merge_results([cur, bench(current_student, bs)])
                    verdicts = [r.verdict for r in evaluate_gate(base, cur, rules) if r.rule == "speedup"]
                    v = (verdicts[0] if verdicts else "no speedup row") + " (confirmed on 2 benches)"
                passed += kind == "A/A" and v.split(" (")[0] in ("pass", "not significant")  # the gate exits 0
                caught += kind == "planted" and v.split(" (")[0] == "fail"
                print(f"  {kind:8s} {i + 1}/{args.k}  speedup {speed(cur)}  speedup rule: {v}", flush=True)
        print(f"batch {bs}: A/A passed {passed}/{args.k}, planted caught {caught}/{args.k}", flush=True)
        ok = ok and passed == args.k and caught == args.k
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
