"""Gate configuration: `RuleSpec` (one rule's settings), `GateRules` (a rules document), and reading
them from a mapping or a JSON / TOML file.

Both are frozen dataclasses validated in `__post_init__`: a bad value raises one one-line OptionError
naming it (the parser prefixes the file). Valid metrics, their threshold keys, defaults and
rule-specific keys come from the rule registry (harness.gate.rules.RULES); nothing here names a rule.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from harness.errors import OptionError
from harness.gate.rules import DEFAULT_ALPHA, RULES, Rule
from harness.report.lookup import num

TOP_KEYS = ("alpha", "batch_sizes", "rules")


class _Default:
    """The value of a RuleSpec field left to the rule's default (threshold, enabled)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


class Options(dict):
    """A rule's own settings in a RuleSpec: a read-only dict (still copyable and picklable)."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("RuleSpec options are read-only; build a new RuleSpec")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (Options, (dict(self),))


# -- value checks: (value, label) -> normalised value, or OptionError "<label> must be ..." -----------

def non_negative(value: Any, label: str) -> float:
    v = num(value)
    if v is None or v < 0:
        raise OptionError(f"{label} must be a non-negative number, not {value!r}")
    return v


def string(value: Any, label: str) -> str:
    if not isinstance(value, str):
        raise OptionError(f"{label} must be a string, not {value!r}")
    return value


def boolean(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{label} must be true or false, not {value!r}")
    return value


def str_list(value: Any, label: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise OptionError(f"{label} must be a string or a list of strings, not {value!r}")


def batch_sizes(value: Any, label: str) -> str | list[int]:
    if value == "common":
        return "common"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return [value]
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        return sorted(set(value))
    raise OptionError(f"{label} must be \"common\" or a list of positive integers, not {value!r}")


def alpha(value: Any, label: str) -> float:
    v = num(value)
    if v is None or not 0 < v < 1:
        raise OptionError(f"{label} must be a number between 0 and 1, not {value!r}")
    return v


def rule_for(metric: Any) -> type[Rule]:
    """The registered rule class of a metric name; OptionError listing the valid ones otherwise."""
    rule = RULES.get(metric) if isinstance(metric, str) else None
    if rule is None:
        raise OptionError(f"unknown gate metric {metric!r}; valid metrics: {', '.join(RULES)}")
    return rule


# -- the configuration --------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleSpec:
    """One rule's settings. `threshold` and `enabled` left at DEFAULT take the rule's defaults;
    `options` holds the rule's own keys (accuracy_delta: backend, single_seed_max_drop_pts), defaults
    filled in. Lists are copied; absent filters (None) mean all."""
    metric: str
    threshold: float | None = DEFAULT
    enabled: bool = DEFAULT
    tasks: list[str] | None = None
    roles: list[str] | None = None
    backends: list[str] | None = None
    batch_sizes: str | list[int] = "common"
    alpha: float = DEFAULT_ALPHA
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rule = rule_for(self.metric)
        w = f"rule {self.metric!r}"
        put: Callable[[str, Any], None] = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if self.threshold is DEFAULT:
            put("threshold", rule.default_threshold)
        elif rule.threshold_key is None:
            if self.threshold is not None:
                raise OptionError(f"{w} takes no threshold, not {self.threshold!r}")
        else:
            put("threshold", non_negative(self.threshold, f"{w}: {rule.threshold_key}"))
        put("enabled", rule.enabled_by_default if self.enabled is DEFAULT else boolean(self.enabled, f"{w}: enabled"))
        for key in ("tasks", "roles", "backends"):
            if getattr(self, key) is not None:
                put(key, str_list(getattr(self, key), f"{w}: {key}"))
        put("batch_sizes", batch_sizes(self.batch_sizes, f"{w}: batch_sizes"))
        put("alpha", alpha(self.alpha, f"{w}: alpha"))
        given = dict(self.options)
        unknown = [k for k in given if k not in rule.options]
        if unknown:
            raise OptionError(f"unknown key(s) {', '.join(map(repr, unknown))} in {w}; "
                              f"valid keys: {', '.join(rule.valid_keys())}")
        put("options", Options({k: opt.check(given[k], f"{w}: {k}") if k in given else opt.default
                                for k, opt in rule.options.items()}))

    @property
    def rule(self) -> type[Rule]:
        return RULES[self.metric]

    def __getattr__(self, name: str) -> Any:  # a rule's own keys read as attributes: spec.backend
        options = self.__dict__.get("options")
        if not name.startswith("__") and options is not None and name in options:
            return options[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


@dataclass(frozen=True)
class GateRules:
    """A rules document: the rules (enabled or not) and the file's global alpha / batch_sizes."""
    rules: tuple[RuleSpec, ...]
    alpha: float = DEFAULT_ALPHA
    batch_sizes: str | list[int] = "common"

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        bad = [r for r in rules if not isinstance(r, RuleSpec)]
        if bad:
            raise OptionError(f"rules must be RuleSpec objects, not {bad[0]!r}")
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "alpha", alpha(self.alpha, "alpha"))
        object.__setattr__(self, "batch_sizes", batch_sizes(self.batch_sizes, "batch_sizes"))

    def enabled(self) -> list[RuleSpec]:
        return [r for r in self.rules if r.enabled]


def default_rules() -> GateRules:
    """Every registered rule with its defaults (latency_p50 and rules registered off stay off)."""
    return GateRules(rules=tuple(RuleSpec(metric=m) for m in RULES))


def _located(where: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except OptionError as exc:
        raise OptionError(f"{where}: {exc}") from None


def _rule_spec(metric: Any, body: Any, alpha_: float, batch_sizes_: str | list[int]) -> RuleSpec:
    rule = rule_for(metric)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise OptionError(f"rule {metric!r} must be an object, not {body!r}")
    valid = rule.valid_keys()
    unknown = [k for k in body if k not in valid and k != "metric"]
    if unknown:
        raise OptionError(f"unknown key(s) {', '.join(map(repr, unknown))} in rule {metric!r}; "
                          f"valid keys: {', '.join(valid)}")
    kw: dict[str, Any] = {"alpha": alpha_, "batch_sizes": batch_sizes_}
    if rule.threshold_key and rule.threshold_key in body:
        kw["threshold"] = body[rule.threshold_key]
    kw.update({k: body[k] for k in ("enabled", "tasks", "roles", "backends", "batch_sizes", "alpha") if k in body})
    return RuleSpec(metric, options={k: body[k] for k in rule.options if k in body}, **kw)


def parse_rules(doc: Any, where: str = "gate rules") -> GateRules:
    """Rules from a mapping: {"alpha", "batch_sizes", "rules": {metric: {...}} or [{"metric": ...}, ...]}.

    Metrics the document does not name keep their defaults (disable one with "enabled": false) and take
    the document's alpha / batch_sizes; rules come out in registration order.
    """
    if not isinstance(doc, dict):
        raise OptionError(f"{where}: must be an object with a 'rules' field")
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise OptionError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(TOP_KEYS)}")
    a = _located(where, lambda: alpha(doc["alpha"], "alpha")) if "alpha" in doc else DEFAULT_ALPHA
    bs = _located(where, lambda: batch_sizes(doc["batch_sizes"], "batch_sizes")) if "batch_sizes" in doc else "common"
    raw = doc.get("rules", {})
    items: list[tuple[Any, Any]]
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for i, body in enumerate(raw):
            if not isinstance(body, dict) or "metric" not in body:
                raise OptionError(f"{where}: rules[{i}] must be an object with a 'metric' field")
            items.append((body["metric"], body))
    else:
        raise OptionError(f"{where}: 'rules' must be an object keyed by metric or a list of rules")
    parsed = [_located(where, lambda m=metric, b=body: _rule_spec(m, b, a, bs)) for metric, body in items]
    named = {r.metric for r in parsed}
    specs = [RuleSpec(m, alpha=a, batch_sizes=bs) for m in RULES if m not in named] + parsed
    order = list(RULES)
    specs.sort(key=lambda r: order.index(r.metric))
    return GateRules(rules=tuple(specs), alpha=a, batch_sizes=bs)


def load_rules(path: str | Path) -> GateRules:
    """Rules from a JSON or TOML file (by suffix; .toml is TOML, anything else JSON)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            tomllib = None  # type: ignore[assignment]
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise OptionError(f"gate rules file not found: {path}") from None
    except OSError as exc:
        raise OptionError(f"cannot read gate rules file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            if tomllib is None:
                raise OptionError(f"reading TOML gate rules needs Python 3.11+ or the tomli package: {path}")
            doc = tomllib.loads(raw.decode("utf-8"))
        else:
            doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise OptionError(f"gate rules file is not UTF-8 text: {path}") from None
    except json.JSONDecodeError as exc:
        raise OptionError(f"gate rules file is not valid JSON: {path} ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise OptionError(f"gate rules file is not valid TOML: {path} ({exc})") from None
    return parse_rules(doc, where=str(path))
