"""docs/extending.md: the toy gate rule it shows runs as written, and its rules file enables it."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import make_results  # noqa: E402

from harness.errors import OptionError  # noqa: E402
from harness.gate import (  # noqa: E402
    RULES, evaluate_gate, format_gate, gate_exit_code, load_rules, parse_rules, unregister_rule,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def section(text: str, title: str) -> str:
    start = text.index(f"\n{title}\n")
    nxt = re.search(r"\n## ", text[start + len(title) + 2:])
    return text[start:start + len(title) + 2 + nxt.start()] if nxt else text[start:]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.fixture
def toy_rule():
    """Run the section's python block (which registers the rule); unregister it afterwards."""
    text = section(DOC.read_text(encoding="utf-8"), "## Adding a gate rule")
    (code,) = blocks(text, "python")
    assert "params" not in RULES
    before = list(RULES)
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_extending"})
    try:
        yield text
    finally:
        unregister_rule("params")
        assert list(RULES) == before


def test_toy_gate_rule_from_docs(toy_rule, tmp_path):
    assert list(RULES)[-1] == "params"
    (doc_json,) = blocks(toy_rule, "json")
    (doc_toml,) = blocks(toy_rule, "toml")
    rules = parse_rules(json.loads(doc_json))
    spec = {r.metric: r for r in rules.rules}["params"]
    assert spec.enabled and spec.threshold == 0.02 and spec.roles == ["student_kd"]
    assert not {r.metric: r for r in parse_rules({}).rules}["params"].enabled  # off by default
    toml_file = tmp_path / "gate.toml"
    toml_file.write_text(doc_toml)
    assert {r.metric: r for r in load_rules(toml_file).rules}["params"] == spec

    base = make_results(tasks=("osuleaf",), seed=0)
    same = make_results(tasks=("osuleaf",), seed=1)
    rows = [r for r in evaluate_gate(base, same, rules) if r.rule == "params"]
    assert [(r.model, r.verdict) for r in rows] == [("student_kd", "pass")]
    assert rows[0].change == 0 and rows[0].threshold == 0.02

    grown = make_results(tasks=("osuleaf",), seed=1)
    for entry in grown.models.values():
        if entry.get("role") == "student_kd":
            entry["params"] = int(entry["params"] * 1.05)  # a planted 5% growth
    res = evaluate_gate(base, grown, rules)
    (row,) = [r for r in res if r.rule == "params"]
    assert row.verdict == "fail" and row.change == pytest.approx(0.05, abs=1e-4)
    assert gate_exit_code(res) == 1
    text = format_gate(res)
    assert "params" in text and "151.0k" in text and "FAIL" in text and "+2.0%" in text

    # the toy rule's keys are checked like a built-in's
    with pytest.raises(OptionError, match="rule 'params': max_growth must be a non-negative number"):
        parse_rules({"rules": {"params": {"max_growth": -1}}})
    with pytest.raises(OptionError, match="'max_drop'.*valid keys: max_growth"):
        parse_rules({"rules": {"params": {"max_drop": 0.1}}})


def test_unregistered_toy_rule_is_unknown():
    with pytest.raises(OptionError, match="unknown gate metric 'params'"):
        parse_rules({"rules": {"params": {"enabled": True}}})


def test_registry_and_frozen_specs():
    from dataclasses import FrozenInstanceError

    from harness.gate import GateRules, Rule, RuleSpec, default_rules, register_rule

    assert list(RULES) == ["ab_latency", "speedup", "size_ratio", "accuracy_delta", "parity", "latency_p50", "int8_accuracy_drop",
                           "serving_qps_ratio"]
    spec = RuleSpec("accuracy_delta")  # the rule's defaults, options included
    assert spec.threshold == 1.0 and spec.enabled and spec.options == {"backend": "onnxruntime",
                                                                      "single_seed_max_drop_pts": 20.0}
    assert spec.backend == "onnxruntime" and spec.rule is RULES["accuracy_delta"]
    with pytest.raises(FrozenInstanceError):
        spec.threshold = 2.0
    with pytest.raises(TypeError):
        spec.options["backend"] = "torch"
    import copy
    import pickle
    assert copy.deepcopy(spec) == spec and pickle.loads(pickle.dumps(default_rules())) == default_rules()
    for kw, msg in [({"metric": "nope"}, "unknown gate metric 'nope'; valid metrics: ab_latency, speedup, size_ratio"),
                    ({"metric": "speedup", "threshold": "0.1"}, "rule 'speedup': max_drop must be a non-negative"),
                    ({"metric": "parity", "threshold": 0.1}, "rule 'parity' takes no threshold"),
                    ({"metric": "speedup", "enabled": "yes"}, "enabled must be true or false"),
                    ({"metric": "speedup", "alpha": 2}, "alpha must be a number between 0 and 1"),
                    ({"metric": "speedup", "options": {"backend": "torch"}}, "unknown key.*'backend'.*rule 'speedup'"),
                    ({"metric": "accuracy_delta", "options": {"backend": 3}}, "backend must be a string")]:
        with pytest.raises(OptionError, match=msg):
            RuleSpec(**kw)
    with pytest.raises(OptionError, match="batch_sizes"):
        GateRules(rules=(), batch_sizes=[0])

    class Dup(Rule):
        name = "speedup"
    with pytest.raises(ValueError, match="already registered"):
        register_rule(Dup)

    class NoDefault(Rule):
        name = "no_default"
        threshold_key = "max_growth"
    with pytest.raises(ValueError, match="go together"):
        register_rule(NoDefault)
    with pytest.raises(TypeError):
        register_rule(object)
    assert "no_default" not in RULES
