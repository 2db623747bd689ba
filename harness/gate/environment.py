"""Environment differences between a baseline and a current results file: CPU model, vector ISA flags,
machine architecture, library versions. Information only: it changes no verdict."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.gate.core import as_results
from harness.gate.hosts import host_pairs
from harness.results import Results


def _env(res: Results) -> dict[str, Any]:
    return res.environment if isinstance(res.environment, dict) else {}


def _isa(env: dict[str, Any]) -> list[str] | None:
    v = env.get("cpu_isa")
    if isinstance(v, str):
        v = v.replace(",", " ").split()
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return sorted(set(v))
    return None


def _versions(env: dict[str, Any]) -> dict[str, str]:
    v = env.get("versions")
    out = {str(k): str(x) for k, x in v.items() if x is not None} if isinstance(v, dict) else {}
    if env.get("python") is not None:
        out.setdefault("python", str(env["python"]))
    return out


def environment_differences(baseline: Results | str | Path, current: Results | str | Path
                            ) -> tuple[list[str], list[str]]:
    """(differences, not recorded) between the two files' environments: CPU model, CPU vector ISA flags,
    machine architecture, library versions. Keys an older file lacks are listed as not recorded, never
    compared."""
    be, ce = _env(as_results(baseline, "baseline")), _env(as_results(current, "current"))
    diffs: list[str] = []
    unrecorded: list[str] = []

    def side_missing(key: str, b: Any, c: Any) -> None:
        if (b is None) != (c is None):
            unrecorded.append(f"{key} not recorded in {'baseline' if b is None else 'current'}")

    for key, b, c in (("cpu_model", be.get("cpu_model") or be.get("cpu"), ce.get("cpu_model") or ce.get("cpu")),
                      ("machine", be.get("machine"), ce.get("machine"))):
        if b is not None and c is not None and str(b) != str(c):
            diffs.append(f"{key} {b} -> {c}")
        elif key == "cpu_model":
            side_missing(key, b, c)
    bi, ci = _isa(be), _isa(ce)
    if bi is not None and ci is not None and bi != ci:
        if len(bi) + len(ci) <= 12:
            diffs.append(f"cpu_isa baseline {','.join(bi) or '-'} current {','.join(ci) or '-'}")
        else:
            only_b, only_c = [x for x in bi if x not in ci], [x for x in ci if x not in bi]
            diffs.append(f"cpu_isa only in baseline {','.join(only_b) or '-'}, only in current {','.join(only_c) or '-'}")
    else:
        side_missing("cpu_isa", bi, ci)
    bv, cv = _versions(be), _versions(ce)
    for lib in dict.fromkeys(list(bv) + list(cv)):
        if lib in bv and lib in cv and bv[lib] != cv[lib]:
            diffs.append(f"{lib} {bv[lib]} -> {cv[lib]}")
    has_b, has_c = isinstance(be.get("versions"), dict), isinstance(ce.get("versions"), dict)
    if has_b != has_c:
        unrecorded.append(f"library versions not recorded in {'baseline' if not has_b else 'current'}")
    return diffs, unrecorded


def environment_note(baseline: Results | str | Path, current: Results | str | Path) -> str:
    """One line naming every environment difference between baseline and current, "" when none; for
    files merged from several hosts, one per pair of hosts the gate compared (harness.gate.hosts)."""
    pairs = host_pairs(as_results(baseline, "baseline"), as_results(current, "current"))
    notes = [_note(p.baseline, p.current) for p in pairs]
    return "\n".join(f"host {p.label}: {n}" if p.label else n for p, n in zip(pairs, notes) if n)


def _note(baseline: Results, current: Results) -> str:
    diffs, unrecorded = environment_differences(baseline, current)
    if diffs:
        return ("environment differs: " + "; ".join(diffs + unrecorded) + ": timing rules compare ratios within "
                "each run and still apply; accuracy rules judge by seed CIs (one seed fails only past "
                "single_seed_max_drop_pts)")
    if unrecorded:
        return "environment: " + "; ".join(unrecorded) + " (older file: cannot tell whether the machines match)"
    return ""
