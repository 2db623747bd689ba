"""Recipe ablation on a task's validation split (how the default recipes' ingredients were measured).

    python scripts/recipe_ablation.py TASK 'VARIANTS_JSON' SEEDS ['TEACHER_OVERRIDES_JSON']

Trains the teacher once on the fit part of a stratified 80/20 split of the training data (test split never
touched), then each variant for every seed, printing validation accuracy. A variant is
{"role": "student_kd"|"student_scratch", "cfg": {TrainConfig overrides}, "arch": {student config overrides}}.
`harness sweep` is the supported tool for T/alpha/loss grids; this script covers the knobs it does not grid
(student width, augmentation, mixup, schedule length). Results: docs/evidence/.
"""
import json
import sys
import time

import numpy as np

from harness.sweep import validation_view
from harness.tasks import load_dataset
from harness.train.trainer import TrainConfig, predict_logits
from harness.train.trio import model_configs, train_role


def main(argv: list[str]) -> None:
    task, variants, seeds = argv[0], json.loads(argv[1]), [int(s) for s in argv[2].split(",")]
    data = load_dataset(task)
    view = validation_view(data, 0.2, seed=0)
    print("n fit", len(view.y_train), "n val", len(view.y_test), flush=True)
    t_cfg, s_cfg = model_configs(view)
    base = TrainConfig()
    tcfg = base.with_overrides(**json.loads(argv[3])) if len(argv) > 3 else base
    t0 = time.time()
    teacher = train_role("teacher", t_cfg, view, view.X_train, view.y_train, tcfg, 0, show_progress=False)
    print("teacher val", teacher.accuracy, "sec", round(time.time() - t0), flush=True)
    logits = predict_logits(teacher.model, view.X_train)
    for v in variants:
        sc = {**s_cfg, **v.get("arch", {})}
        cfg = base.with_overrides(**v.get("cfg", {}))
        role = v.get("role", "student_kd")
        live = cfg.kd_logits == "live" and role == "student_kd"
        accs = []
        for seed in seeds:
            t0 = time.time()
            r = train_role(role, sc, view, view.X_train, view.y_train, cfg, seed,
                           teacher=teacher.model if live else None,
                           teacher_logits=logits if role == "student_kd" and not live else None,
                           show_progress=False)
            accs.append(r.accuracy)
            print("  ", json.dumps(v), "seed", seed, "val %.2f" % (100 * r.accuracy), "sec", round(time.time() - t0),
                  "params", r.meta["params"], "macs", r.meta["macs"], flush=True)
        print("MEAN", json.dumps(v), "%.2f" % (100 * np.mean(accs)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
