"""Which host of the baseline gates which host of the current file.

Files of one bench each: the one pair, whatever the machines (the default rules compare ratios within
each run, so a baseline from one machine gates a run on another; `environment_note` names the
differences). As soon as either file was merged from several hosts (`harness merge`), hosts are paired
by fingerprint so that no rule compares (or pools) numbers of one host with another's: a baseline host
the current file lacks is compared against nothing (its rows are "missing"), a baseline of one host
gates every current host when none has its fingerprint, and current hosts no baseline host matches are
new and not compared.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.hosts import host_label, host_views
from harness.results import Results


@dataclass(frozen=True)
class HostPair:
    baseline: Results
    current: Results
    label: str = ""  # "" for two files of one host each; else the host(s) the rows are about


def host_pairs(baseline: Results, current: Results) -> list[HostPair]:
    base, cur = host_views(baseline), host_views(current)
    if len(base) == 1 and len(cur) == 1:
        return [HostPair(baseline, current)]
    by_fp = dict(cur)
    pairs = []
    for fp, b in base:
        label = host_label(b.environment, fp)
        if fp in by_fp:
            pairs.append(HostPair(b, by_fp[fp], label))
        elif len(base) == 1:
            pairs += [HostPair(b, c, f"{label} -> {host_label(c.environment, cfp)}") for cfp, c in cur]
        else:
            # an empty stand-in with the host's environment: every row "missing", no environment difference
            pairs.append(HostPair(b, Results(environment=dict(b.environment), host=fp), label))
    return pairs


__all__ = ["HostPair", "host_pairs"]
