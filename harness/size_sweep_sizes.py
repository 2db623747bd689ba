"""The students a size sweep (`harness.size_sweep`) trains: its size options parsed, each size's
architecture derived from the default student's config, and the independent training units, one per
(size, seed, role).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Sequence

from harness.errors import OptionError
from harness.options import parse_list

log = logging.getLogger(__name__)

ROLES = ("student_scratch", "student_kd")


# --------------------------------------------------------------------------- option parsing

def parse_scales(text: str) -> list[float]:
    """`--student-scale 0.25,0.5,1,2`: positive finite multipliers of the default student's widths."""
    vals = parse_list(text, "--student-scale", float, "positive numbers")
    for v in vals:
        if not math.isfinite(v) or v <= 0:
            raise OptionError(f"--student-scale values must be positive numbers, got {text!r}")
    if len(set(vals)) != len(vals):
        raise OptionError(f"--student-scale has duplicates: {text!r}")
    return vals


def parse_widths(text: str) -> list[list[int]]:
    """`--student-widths 6-12,12-24,24-48`: sizes separated by commas (or semicolons), each size's layer
    widths joined by hyphens, every width a positive integer."""
    want = "sizes separated by commas, each a hyphen-joined list of positive integers, e.g. 6-12,12-24"
    raw = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if not raw or any(p == "" for p in raw):
        raise OptionError(f"--student-widths must be {want}; got {text!r}")
    out: list[list[int]] = []
    for part in raw:
        items = [s.strip() for s in part.split("-")]
        if any(not (s.isascii() and s.isdigit()) or int(s) < 1 for s in items):
            raise OptionError(f"--student-widths must be {want}; {part!r} in {text!r} is not")
        out.append([int(s) for s in items])
    if len({tuple(w) for w in out}) != len(out):
        raise OptionError(f"--student-widths has duplicates: {text!r}")
    return out


def parse_within(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise OptionError(f"--within-pts must be a number >= 0 (accuracy points), got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- sizes

@dataclass(frozen=True)
class StudentSize:
    """One student architecture of the sweep: a label, its widths, the scales that produced it (none
    for explicit widths), and its full model config."""

    label: str
    widths: tuple[int, ...]
    config: dict = field(hash=False, compare=False)
    scales: tuple[float, ...] = ()
    note: str | None = None


def scaled_widths(widths: Sequence[int], scale: float, num_classes: int) -> list[int]:
    """Each width times `scale`, rounded half up to an int >= 1, then widened so that no layer is
    narrower than the head (`kd_models.registry._fit_head`, the rule every default student follows)."""
    from kd_models.registry import _fit_head

    scaled = [max(1, int(math.floor(w * scale + 0.5))) for w in widths]
    return _fit_head(scaled, num_classes)


def _with_widths(base: dict, widths: list[int]) -> dict:
    """`base` (a default student config) with other widths; per-layer lists follow the new depth."""
    import kd_models

    cfg = dict(base)
    family = cfg["family"]
    n_old, n_new = len(base["widths"]), len(widths)
    if family == "resnet1d":
        # kernels are per conv inside every block (depth-independent); the first block's stride is the
        # length-dependent one, every later block halves the length again (as the defaults do)
        cfg["strides"] = [base["strides"][0]] + [2] * (n_new - 1)
    elif family == "c3d":
        if n_new != n_old:
            raise OptionError(f"--student-widths for a 3D ({family}) student needs exactly {n_old} widths per size "
                              f"(one per stage: convs and pools are per stage), got {n_new}")
    else:  # pragma: no cover - the default students are resnet1d and c3d
        raise OptionError(f"a size sweep cannot resize a {family} student")
    cfg["widths"] = list(widths)
    return kd_models.validate_config(cfg)


def _fmt_scale(s: float) -> str:
    return f"x{s:g}"


def student_sizes(base: dict, num_classes: int, *, scales: list[float] | None = None,
                  widths: list[list[int]] | None = None) -> list[StudentSize]:
    """The sizes to train, smallest parameter count first. Scales that land on the same widths after
    rounding and `_fit_head` are one size (trained once; every such scale is recorded)."""
    if bool(scales) == bool(widths):
        raise OptionError("give one of --student-scale or --student-widths (not both) for a size sweep")
    found: dict[tuple[int, ...], StudentSize] = {}
    if scales:
        for s in scales:
            w = tuple(scaled_widths(base["widths"], s, num_classes))
            prev = found.get(w)
            if prev is not None:
                log.warning(f"student scale {s:g} gives the same widths {list(w)} as {', '.join(map(_fmt_scale, prev.scales))} "
                            f"(rounding, and no layer narrower than the {num_classes}-class head): trained once")
                found[w] = StudentSize(prev.label, w, prev.config, prev.scales + (s,), prev.note)
                continue
            found[w] = StudentSize(_fmt_scale(s), w, _with_widths(base, list(w)), (s,))
    else:
        for w_list in widths or []:
            w = tuple(w_list)
            note = None
            if w[-1] < num_classes:
                note = (f"last width {w[-1]} is narrower than the {num_classes}-class head (taken as given; "
                        f"scaled sizes never are)")
                log.warning(f"student widths {'-'.join(map(str, w))}: {note}")
            found[w] = StudentSize("-".join(map(str, w)), w, _with_widths(base, list(w)), (), note)
    return list(found.values())


# --------------------------------------------------------------------------- independent units

@dataclass(frozen=True)
class StudentUnit:
    """One training job: a student of one size, one seed, one role (scratch or KD)."""

    size: str
    role: str  # student_scratch | student_kd
    seed: int
    model_config: dict = field(hash=False)


def plan_units(sizes: Sequence[StudentSize], seeds: Sequence[int]) -> list[StudentUnit]:
    """Every (size, seed, role); a seed's scratch and KD students share the init (same seed)."""
    return [StudentUnit(s.label, role, seed, s.config) for s in sizes for seed in seeds for role in ROLES]

