"""`harness run`: the main job on the built-in default — train (or reuse) the default 1D and 3D
trios, export, bench, write DIR/results.json and print the comparison table."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from harness.artifacts import run_is_complete
from harness.bench import BenchConfig, bench_models, export_runs, load_run
from harness.fileio import ensure_writable_dir
from harness.results import Results, write_results

log = logging.getLogger(__name__)

DEFAULT_TASKS = ("osuleaf", "moving-digits")


def main_job(out_dir: str | Path, *, tasks: list[str] | None = None, seeds: list[int] | None = None,
             retrain: bool = False, bench_cfg: BenchConfig | None = None, train_overrides: dict | None = None,
             recipe: str | None = None, executor_factory=None) -> tuple[Results, Path]:
    """Train every task first (on the executor `executor_factory` makes; default local), release the
    executor, then bench: timing never shares the machine with training jobs."""
    from harness.tasks import get_task
    from harness.train.recipes import default_recipe, load_recipe
    from harness.executor import ExecutorConfig, LocalExecutor
    from harness.train.normalize import choose_normalization
    from harness.train.trio import TrioTraining, train_trios
    from harness.measure.environment import collect

    out_dir = ensure_writable_dir(out_dir)
    tasks = list(tasks or DEFAULT_TASKS)
    seeds = seeds or [0]
    bench_cfg = bench_cfg or BenchConfig(quick=True)
    specs = [get_task(t) for t in tasks]  # unknown names fail before any work
    results = Results(environment=collect(threads=bench_cfg.threads), config={"bench": bench_cfg.to_dict(),
                                                                              "tasks": tasks, "seeds": seeds})
    t_start = time.perf_counter()
    loaded, pending = [], []
    for spec in specs:
        data = spec.load(0)
        cfg = default_recipe(data.kind, data.name)
        if recipe:
            cfg = load_recipe(recipe, cfg)
        cfg = cfg.with_overrides(**(train_overrides or {}))
        run_dir = out_dir / data.name
        norm = choose_normalization(data.X_train, cfg.normalize)["mode"]
        if retrain or not run_is_complete(run_dir, cfg.to_dict(), seeds, normalize=norm):
            log.info(f"training {data.name} ({data.kind}): teacher + scratch + KD students, seeds {seeds}")
            pending.append((data, cfg, run_dir))
        else:
            log.info(f"reusing trained {data.name} trio in {run_dir} (--retrain to train again)")
        loaded.append((data, run_dir))
    if pending:
        # Every task's trio on one executor: with a parallel one, both tasks' jobs share its batches.
        executor = executor_factory() if executor_factory is not None else LocalExecutor(ExecutorConfig())
        try:
            train_trios([TrioTraining(data, cfg, seeds, run_dir, executor=executor,
                                      data_ref={"task": data.name, "data_seed": 0})
                         for data, cfg, run_dir in pending])
        finally:
            executor.close()
    runs = [(*load_run(run_dir), data) for data, run_dir in loaded]
    # Every task exports before any timing starts, side by side (export is never timed).
    for (summary, _, data), sources in zip(runs, export_runs(runs, bench_cfg)):
        results.tasks[data.name] = summary
        bench_models(sources, data, bench_cfg, results=results, multi_task=len(specs) > 1)
    results.config["wall_seconds"] = time.perf_counter() - t_start
    path = write_results(out_dir / "results.json", results)
    return results, path
