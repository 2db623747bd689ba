"""`harness profile RUN_DIR | --onnx ROLE=FILE ...`: per-operator profiles and the one-line reasons."""
from __future__ import annotations

import logging
from pathlib import Path

from harness.errors import DataError, MissingPackageError, OptionError
from harness.profile import LAYOUT_OPS, QDQ_OPS, Profile, explain, profile_model
from harness.roles import Role

log = logging.getLogger(__name__)


def models_of_run(run_dir: Path) -> dict[str, Path]:
    """role -> ONNX file of a run folder that `harness bench` exported (onnx/<role>[.<variant>].onnx)."""
    folder = run_dir / "onnx"
    if not folder.is_dir():
        raise DataError(f"{run_dir} has no onnx/ folder: bench it first (harness bench {run_dir})")
    out = {}
    for f in sorted(folder.glob("*.onnx")):
        base, _, variant = f.stem.partition(".")
        out[f"{base}@{variant}" if variant else base] = f
    if not out:
        raise DataError(f"no ONNX files in {folder}")
    return out


def _input_shape(path: Path) -> tuple[int, ...]:
    from harness.onnx_tools import onnx_input_shape

    dims, _ = onnx_input_shape(path)
    if any(d is None for d in dims[1:]):
        raise OptionError(f"{path.name} has a dynamic input shape beyond the batch axis")
    return tuple(int(d) for d in dims[1:])


def run_profiles(models: dict[str, Path], backends: list[str], batch_size: int, threads: int,
                 runs: int) -> tuple[list[Profile], list[str]]:
    profiles, problems = [], []
    for role, path in models.items():
        shape = _input_shape(path)
        for b in backends:
            log.info(f"profile: {role} on {b}, batch {batch_size}, {runs} runs")
            try:
                profiles.append(profile_model(b, path, role, shape, batch_size, threads, runs))
            except MissingPackageError as exc:
                problems.append(f"{b}: not profiled: {exc}")
                backends = [x for x in backends if x != b]
            except Exception as exc:  # noqa: BLE001 - a runtime that cannot run one model: said, the rest go on
                from harness.errors import first_line

                problems.append(f"{role} on {b}: not profiled: {first_line(exc, with_type=True)}")
    return profiles, list(dict.fromkeys(problems))


def explanations(profiles: list[Profile], runtime_gap: float = 1.5) -> list[str]:
    """A reason for every variant slower than its fp32 model on the same runtime, and for every model that
    one runtime runs `runtime_gap` times slower than another."""
    by = {(p.role, p.backend): p for p in profiles}
    lines = []
    for p in profiles:
        role = Role.parse(p.role)
        base = by.get((role.base, p.backend)) if role.variant else None
        if base and p.unprofiled_p50_ms and base.unprofiled_p50_ms and p.unprofiled_p50_ms > base.unprofiled_p50_ms:
            lines.append(explain(p, base, f"{p.role} on {p.backend} is {p.unprofiled_p50_ms / base.unprofiled_p50_ms:.1f}x "
                                          f"slower than {role.base} (fp32) in the profile pass"))
    for role in dict.fromkeys(p.role for p in profiles):
        mine = sorted((p for p in profiles if p.role == role and p.unprofiled_p50_ms), key=lambda p: p.unprofiled_p50_ms)
        if len(mine) >= 2 and mine[-1].unprofiled_p50_ms > runtime_gap * mine[0].unprofiled_p50_ms:
            slow, fast = mine[-1], mine[0]
            lines.append(explain(slow, fast, f"{role} on {slow.backend} is {slow.unprofiled_p50_ms / fast.unprofiled_p50_ms:.1f}x "
                                             f"slower than on {fast.backend} in the profile pass"))
    return lines


def format_profiles(profiles: list[Profile], top: int = 5) -> str:
    from tabulate import tabulate

    out = []
    for p in profiles:
        over = (f"; unprofiled p50 {p.unprofiled_p50_ms:.3g} ms (node times add up to "
                f"{100 * p.node_ms / p.unprofiled_p50_ms:.0f}% of it)" if p.unprofiled_p50_ms else "")
        out.append(f"{p.role} on {p.backend}, batch {p.batch}, {p.threads} thread(s), {p.runs} runs: nodes "
                   f"{p.node_ms:.3g} ms per run (profiled run {p.profiled_ms:.3g} ms){over}; quantize/dequantize "
                   f"{100 * p.share(QDQ_OPS):.0f}%, layout {100 * p.share(LAYOUT_OPS):.0f}%")
        rows = [[o["op"], o["nodes"], o["precisions"], f"{o['ms']:.4f}", f"{100 * o['share']:.0f}%"]
                for o in p.by_op()[:top]]
        out.append(tabulate(rows, headers=["operator", "nodes", "precision", "ms/run", "share"],
                            disable_numparse=True))
        out.append("")
    return "\n".join(out)


def profile_measurements(sources: list, backends: list[str], cfg, warnings: list[str]) -> list:
    """`bench --profile`: every source on every profiled backend at the first batch size, as `profile`
    measurements (by operator, top nodes, shares, profiled vs unprofiled time), after the timed suites."""
    from harness.profile import PROFILERS
    from harness.results import Measurement

    runs = 100 if cfg.quick else 300
    out = []
    for src in sources:
        for b in [b for b in backends if b in PROFILERS]:
            log.info(f"{src.task}: profile {src.role} on {b}, batch {cfg.batch_sizes[0]}, {runs} runs")
            try:
                prof = profile_model(b, src.onnx, src.role, tuple(src.input_shape), cfg.batch_sizes[0],
                                     cfg.threads, runs)
            except Exception as exc:  # noqa: BLE001 - a model a runtime cannot profile: said, the rest go on
                from harness.errors import first_line

                warnings.append(f"{src.task}/{src.role}: not profiled on {b}: {first_line(exc, with_type=True)}")
                continue
            d = prof.to_dict()
            d["nodes"] = sorted(d["nodes"], key=lambda n: -n["ms"])[:20]  # the top nodes; by_op keeps the whole
            out.append(Measurement(src.task, src.role, b, "profile", prof.batch, prof.threads,
                                   {k: v for k, v in d.items() if k not in ("role", "backend", "batch", "threads")}))
    return out


def profiles_from_results(res, task: str) -> list[Profile]:
    """The `profile` measurements of a results file as Profiles (by operator), for `explanations`."""
    from harness.profile import NodeTime

    out = []
    for m in res.measurements:
        if m.suite != "profile" or (m.task or "") != (task or ""):
            continue
        x = m.metrics.extra if hasattr(m.metrics, "extra") else dict(m.metrics)
        nodes = [NodeTime(o["op"], o["op"], str(o.get("precisions", "")), float(o["ms"])) for o in x.get("by_op") or []]
        out.append(Profile(m.model, m.backend, m.batch_size, m.threads, int(x.get("runs") or 0), nodes,
                           x.get("profiled_ms"), x.get("unprofiled_p50_ms")))
    return out


def cmd_profile(args) -> int:
    from harness.bench import default_threads
    from harness.bench_onnx import parse_onnx_specs
    from harness.fileio import atomic_write_json

    if (args.run_dir is None) == (not args.onnx):
        raise OptionError("give a run folder or --onnx ROLE=FILE, not both and not neither")
    from harness.profile import PROFILERS

    bad = [b for b in args.backends if b not in PROFILERS]
    if bad or not args.backends:
        raise OptionError(f"no profiler for backend(s) {', '.join(bad) or '(none)'}; profiled backends: "
                          f"{', '.join(PROFILERS)}")
    models = models_of_run(Path(args.run_dir)) if args.run_dir else parse_onnx_specs(args.onnx)
    if args.model:
        wanted = [m.strip() for m in args.model.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in models]
        if unknown:
            raise OptionError(f"unknown model(s) {', '.join(unknown)}; this run has {', '.join(models)}")
        models = {m: models[m] for m in wanted}
    profiles, problems = run_profiles(models, args.backends, args.batch_size, args.threads or default_threads(),
                                      args.runs)
    if not profiles:
        raise DataError("nothing could be profiled: " + "; ".join(problems))
    print(format_profiles(profiles))
    for line in explanations(profiles):
        print(f"Why: {line}")
    for line in problems:
        print(f"! {line}")
    if args.out:
        atomic_write_json(args.out, {"profiles": [p.to_dict() for p in profiles], "why": explanations(profiles),
                                     "problems": problems})
        print(f"wrote {args.out}")
    return 0


def add_profile_parser(sub, int_type) -> None:
    p = sub.add_parser("profile", help="time per operator and node (ONNX Runtime profiler, OpenVINO counters)")
    p.add_argument("run_dir", nargs="?", default=None, help="a benched run folder (its onnx/ files)")
    p.add_argument("--onnx", action="append", default=[], metavar="ROLE=FILE", help="an ONNX file (repeatable)")
    p.add_argument("--model", default=None, help="only these roles (comma-separated, e.g. student_kd,student_kd@int8)")
    p.add_argument("--backends", type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
                   default=["onnxruntime", "openvino"], help="onnxruntime and/or openvino (default both)")
    p.add_argument("--batch-size", type=int_type("--batch-size"), default=1)
    p.add_argument("--threads", type=int_type("--threads"), default=None)
    p.add_argument("--runs", type=int_type("--runs"), default=300)
    p.add_argument("--out", default=None, help="write the profiles as JSON")
