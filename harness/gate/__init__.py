"""Regression gate: compare a current results file against a baseline, rule by rule.

Default rules are ratios measured within one run (student vs teacher on the same machine at
the same time) or deterministic facts (file sizes, accuracy on a fixed test set, parity), so a
baseline recorded on one machine gates a run on another. A rule fails only when its change is
past the threshold AND significantly past it (the evidence is held against the baseline moved
by the threshold); see docs/gate-rules.md. A baseline row with no counterpart in the current file
(renamed task or model, dropped backend or batch size) is "missing" and fails the gate unless
`allow_missing`; a gate that compared nothing fails too.

    rules = load_rules("gate.json")          # or default_rules()
    results = evaluate_gate(baseline, current, rules)
    notes = [n for n in [environment_note(baseline, current)] if n]
    print(format_gate(results, notes=notes)); sys.exit(gate_exit_code(results))   # 0 pass, 1 regression

Modules: `rules` (the registry, the `Rule` base class, `RuleResult`), `rules_ab` (ab_latency: the
current build of a role timed beside its baseline build; `ab` decides whether it can run), `rules_speed`
(speedup, latency_p50: the ratio-of-speedups fallback), `rules_quality` (size_ratio, accuracy_delta, parity), `rules_variants`
(int8_accuracy_drop: a quantized variant's accuracy lost against its own fp32 model), `config` (RuleSpec, GateRules,
rules files), `core` (evaluate_gate, exit code, update_baseline), `format` (text output),
`environment` (environment differences), `hosts` (files merged from several hosts are gated host by host). A new rule is one `Rule` subclass plus `register_rule`
(docs/extending.md).
"""
from __future__ import annotations

from harness.gate.rules import (
    COMPARED, DEFAULT_ALPHA, RULES, VERDICTS, Option, Rule, RuleResult, register_rule, rule_class, unregister_rule,
)
from harness.gate.config import DEFAULT, GateRules, RuleSpec, default_rules, load_rules, parse_rules
from harness.gate.core import evaluate_gate, gate_exit_code, nothing_compared, update_baseline
from harness.gate.environment import environment_differences, environment_note
from harness.gate.format import format_gate, gate_summary, missing_lines
from harness.gate.rules_quality import DEFAULT_SINGLE_SEED_MAX_DROP_PTS, AccuracyDelta, Parity, SizeRatio
from harness.gate.rules_speed import LatencyP50, ServingQps, Speedup, TimedRule
from harness.gate.rules_ab import ABLatency
from harness.gate.rules_variants import Int8AccuracyDrop

# The built-in rules, in the order their rows are printed and rules files list them. Rules registered
# later (`@register_rule`) follow them.
for _rule in (ABLatency, Speedup, SizeRatio, AccuracyDelta, Parity, LatencyP50, Int8AccuracyDrop, ServingQps):
    register_rule(_rule)
del _rule

RULE_METRICS = RULES  # the registry under its older name: metric -> rule class

__all__ = ["ABLatency", "AccuracyDelta", "COMPARED", "Int8AccuracyDrop", "DEFAULT", "DEFAULT_ALPHA", "DEFAULT_SINGLE_SEED_MAX_DROP_PTS", "GateRules",
           "LatencyP50", "Option", "Parity", "RULES", "RULE_METRICS", "Rule", "RuleResult", "RuleSpec", "SizeRatio",
           "ServingQps", "Speedup", "TimedRule", "VERDICTS", "default_rules", "environment_differences", "environment_note",
           "evaluate_gate", "format_gate", "gate_exit_code", "gate_summary", "load_rules", "missing_lines",
           "nothing_compared", "parse_rules", "register_rule", "rule_class", "unregister_rule", "update_baseline"]
