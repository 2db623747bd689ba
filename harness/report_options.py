"""The options that say how a command prints its report (`harness run`, `bench`, `report`), defined once.

    --details              every table (the report's "full" format) instead of one screen per task
    --quality-target PCT   the accuracy a deployable model must keep, in % of the fp32 teacher's (default 99)
"""
from __future__ import annotations

import argparse

from harness.errors import OptionError

DEFAULT_TARGET_PCT = 99.0  # MLPerf's closed-division quality rule


def _target(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--quality-target must be a percentage, got {text!r}") from None
    if not 0 < v <= 100:
        raise argparse.ArgumentTypeError(f"--quality-target must be in (0, 100], got {text}")
    return v


def add_report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--details", action="store_true",
                   help="print every table (latency, validity, variants, warnings, ...), not one screen per task")
    p.add_argument("--quality-target", type=_target, default=DEFAULT_TARGET_PCT, metavar="PCT",
                   help="the verdict deploys the fastest model keeping this %% of the fp32 teacher's accuracy "
                        "(default 99, MLPerf's rule)")


def report_format(args) -> str:
    """The terminal format the options ask for: "full" with --details, else the one-screen "table"."""
    return "full" if getattr(args, "details", False) else "table"


def report_target(args) -> float:
    """The quality target as a fraction of the fp32 teacher's accuracy."""
    pct = getattr(args, "quality_target", None)
    if pct is None:
        return DEFAULT_TARGET_PCT / 100
    if not 0 < pct <= 100:
        raise OptionError(f"--quality-target must be in (0, 100], got {pct}")
    return pct / 100
