"""How the 1D recipe trains on very small training sets, measured without any test split.

    python scripts/small_train_sets.py OUT_DIR [--draws 0,1] [--variants 'NAME=--flag ...;NAME=...']

ArrowHead (36 training series), BasicMotions (40), GunPoint (50) and ItalyPowerDemand (67) are far smaller
than the set the 1D recipe was chosen on (OSULeaf, 200). Their own validation splits hold 7-13 series, too
few to choose anything on. So this draws small training sets (36 or 55 series, stratified) from the
*training* splits of three larger sets (OSULeaf, JapaneseVowels, PLAID) and validates on the rest of each
training split (164-482 series); test splits are never read. Each variant is `harness train --data` with
the default recipe plus the variant's flags, three student seeds, on a pool of single-thread workers.
Results: docs/evidence/small-train-sets.txt.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SOURCES = (("osuleaf", 36), ("japanesevowels", 36), ("plaid", 55))
# The recipe now turns even batches on, so "plain" turns them off explicitly.
DEFAULT_VARIANTS = "plain=--no-even-batches --min-epoch-samples 0;even=--even-batches --min-epoch-samples 0"


def draw(out: Path, task: str, n: int, draw_seed: int) -> Path:
    from sklearn.model_selection import StratifiedShuffleSplit

    from harness.tasks import get_task

    d = get_task(task).load(0)
    fit, val = next(StratifiedShuffleSplit(n_splits=1, train_size=n, random_state=draw_seed)
                    .split(d.X_train, d.y_train))
    path = out / f"{task}{n}-draw{draw_seed}.npz"
    # X_test/y_test here are the rest of the TRAINING split: harness train's "test" is our validation.
    np.savez(path, X_train=d.X_train[fit], y_train=d.y_train[fit], X_test=d.X_train[val], y_test=d.y_train[val])
    return path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--draws", default="0,1")
    p.add_argument("--variants", default=DEFAULT_VARIANTS)
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    variants = [v.split("=", 1) for v in args.variants.split(";")]
    rows = []
    for task, n in SOURCES:
        for draw_seed in [int(s) for s in args.draws.split(",")]:
            npz = draw(out, task, n, draw_seed)
            for name, flags in variants:
                # One run folder (one job store) per draw: a variant that leaves the teacher's and the
                # scratch students' jobs unchanged (a KD-only option) resumes them and trains only KD.
                run = out / npz.stem
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "harness.cli", "train", "--data", str(npz), "--seeds", args.seeds, *shlex.split(flags),
                                "--executor", "pool", "--jobs", "2", "--threads-per-job", "1", "--out", str(run),
                                "--quiet"], check=True, stdout=subprocess.DEVNULL)
                models = json.loads((run / "summary.json").read_text())["models"]
                rows.append({"set": npz.stem, "variant": name, "seconds": round(time.perf_counter() - t0, 1),
                             **{r: 100 * float(np.mean(models[r]["accuracy"]["per_seed"])) for r in models}})
                r = rows[-1]
                print(f"{r['set']:24s} {name:8s} teacher {r['teacher']:6.2f}  scratch {r['student_scratch']:6.2f}  "
                      f"KD {r['student_kd']:6.2f}  ({r['seconds']:.0f} s)", flush=True)
    base = variants[0][0]
    for name, _ in variants[1:]:
        for role in ("teacher", "student_scratch", "student_kd"):
            diffs = [b[role] - a[role] for a in rows if a["variant"] == base
                     for b in rows if b["variant"] == name and b["set"] == a["set"]]
            print(f"{name} - {base}, {role}: mean {np.mean(diffs):+.2f} pts over {len(diffs)} sets, "
                  f"better on {sum(d > 0 for d in diffs)}, worse on {sum(d < 0 for d in diffs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
