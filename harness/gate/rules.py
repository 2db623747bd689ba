"""The gate's rule registry, the base class of every rule, and the row a rule gives (`RuleResult`).

One class per rule holds everything about it: its metric name (the key in rules files and the `rule`
column), its threshold key and default, whether higher or lower is better, whether it is on by
default, its rule-specific keys (`options`), how it evaluates, and how its values are shown.

    @register_rule                      # or register_rule(MyRule)
    class MyRule(Rule):
        name = "my_metric"
        threshold_key, default_threshold = "max_growth", 0.05
        higher_is_better = False

        def evaluate(self, baseline, current):
            return [...]                # one RuleResult per task / model (/ backend / batch)

The rules-file parser (harness.gate.config) reads the valid metric names, keys and defaults from
this registry; see docs/extending.md for a worked example.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator

from harness.report.lookup import REFERENCE, task_names, task_roles
from harness.results import Results

if TYPE_CHECKING:
    from harness.gate.config import RuleSpec

VERDICTS = ("pass", "fail", "missing", "not significant", "skip")
COMPARED = ("pass", "fail", "not significant")  # verdicts of a row that compared baseline and current
DEFAULT_ALPHA = 0.01
COMMON_RULE_KEYS = ("enabled", "tasks", "roles", "backends", "batch_sizes", "alpha")  # every rule accepts these


@dataclass
class RuleResult:
    rule: str
    task: str
    model: str
    backend: str
    batch: int | None
    baseline: float | None
    current: float | None
    change: float | None  # relative (0.12 = +12%) or points, per `unit`
    threshold: float | None  # signed: the change past which the rule fails (-0.10, +0.05, -1.0 pts)
    verdict: str
    unit: str = "rel"  # "rel" | "pts" | ""
    p_value: float | None = None
    ci: str | None = None
    threads: int | None = None
    note: str = ""
    missing: str = ""  # what the current file lacks ("task osuleaf", ...) when a baseline row has no counterpart
    host: str = ""  # the host ("<CPU model> · <fingerprint>") when a file was merged from several hosts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Option:
    """A rule-specific key of a rules file: its default, and a check `(value, label) -> value` that
    returns the (normalised) value or raises OptionError naming `label`."""
    default: Any
    check: Callable[[Any, str], Any]


def fmt_change(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:+.2f} pts" if unit == "pts" else f"{v * 100:+.1f}%"


def fmt_ci(ci: tuple[float, float] | None, unit: str = "") -> str:
    return "-" if ci is None else f"[{ci[0]:.3g}, {ci[1]:.3g}]{unit}"


def mark_missing(r: RuleResult, what: str) -> RuleResult:
    """Mark a baseline row that has no counterpart in the current file (labelled in evaluate_gate)."""
    r.verdict = "missing"
    r.note += f"no {what} in current"
    return r


def allowed(value: str, names: Iterable[str] | None) -> bool:
    return names is None or value in names


class Rule:
    """Base class of a gate rule. Subclasses set the class attributes and implement `evaluate`;
    `register_rule` makes them known to rules files, `default_rules` and `evaluate_gate`."""

    name: ClassVar[str] = ""  # the metric: key in rules files, `rule` column of the output
    threshold_key: ClassVar[str | None] = None  # key of the threshold in a rules file (None: no threshold)
    default_threshold: ClassVar[float | None] = None  # non-negative; applied in the `higher_is_better` direction
    higher_is_better: ClassVar[bool] = True  # True: a drop past the threshold fails; False: a growth
    enabled_by_default: ClassVar[bool] = True
    unit: ClassVar[str] = "rel"  # of the change: "rel" (c / b - 1), "pts" (c - b) or "" (no change)
    students_only: ClassVar[bool] = True  # rows for the students (teacher excluded), else for every model
    options: ClassVar[dict[str, Option]] = {}  # rule-specific keys a rules file may set
    timed: ClassVar[bool] = False  # rows keyed by backend / threads / batch (names the missing timings)
    compares_baseline: ClassVar[bool] = True  # False: judges the current file alone (counts less, see nothing_compared)

    def __init__(self, spec: RuleSpec):
        self.spec = spec

    # -- what rules files accept ----------------------------------------------------------------

    @classmethod
    def valid_keys(cls) -> list[str]:
        return ([cls.threshold_key] if cls.threshold_key else []) + list(COMMON_RULE_KEYS) + list(cls.options)

    @classmethod
    def signed(cls, threshold: float | None) -> float | None:
        """The threshold as a signed change: -0.10 for a 10% drop, +0.05 for a 5% growth."""
        if threshold is None:
            return None
        return -threshold if cls.higher_is_better else threshold

    @property
    def threshold(self) -> float | None:
        return self.signed(self.spec.threshold)

    def option(self, key: str) -> Any:
        return self.spec.options[key]

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate(self, baseline: Results, current: Results) -> list[RuleResult]:
        """One RuleResult per row the rule covers (see `pairs`, `row`, `judge`)."""
        raise NotImplementedError(f"gate rule {self.name!r} does not implement evaluate()")

    def tasks(self, baseline: Results, current: Results) -> list[str]:
        names = list(dict.fromkeys(task_names(baseline) + task_names(current)))
        return [t for t in names if allowed(t, self.spec.tasks)]

    def roles(self, baseline: Results, current: Results, task: str) -> list[str]:
        roles: list[str] = []
        for res in (baseline, current):
            if task in task_names(res):
                roles += task_roles(res, task)
        roles = list(dict.fromkeys(roles))
        if self.students_only:
            roles = [r for r in roles if r != REFERENCE]
        return [r for r in roles if allowed(r, self.spec.roles)]

    def pairs(self, baseline: Results, current: Results) -> Iterator[tuple[str, str]]:
        """(task, model) of every row the rule covers, after the spec's `tasks` / `roles` filters."""
        for task in self.tasks(baseline, current):
            for role in self.roles(baseline, current, task):
                yield task, role

    def batches(self, base: Iterable[int]) -> list[int]:
        """Batch sizes a timed rule compares: "common" = every one the baseline measured (one the current
        run lacks is a missing row; one only the current run has is new and not compared), else the
        listed ones."""
        if self.spec.batch_sizes == "common":
            return sorted(set(base))
        return list(self.spec.batch_sizes)

    def row(self, task: str, model: str, backend: str = "any", batch: int | None = None,
            baseline: float | None = None, current: float | None = None, **kw: Any) -> RuleResult:
        """A "skip" row of this rule, with its signed threshold and unit; `judge` gives it a verdict."""
        kw.setdefault("unit", self.unit)
        return RuleResult(self.name, task, model, backend, batch, baseline, current, None, self.threshold,
                          "skip", **kw)

    def judge(self, r: RuleResult, what: str, note: str = "deterministic",
              zero_note: str = "baseline value is zero") -> RuleResult:
        """Verdict of a deterministic row (no noise: past the threshold is a failure). `what` names the
        data (for "no ... in baseline" and the missing row), `note` says what was compared."""
        b, c = r.baseline, r.current
        if b is None:
            r.note = f"no {what} in baseline"
        elif c is None:
            mark_missing(r, what)
        elif r.unit == "pts":
            r.change = c - b
        elif b:
            r.change = c / b - 1
        else:
            r.note = zero_note
        if r.change is not None:
            t = r.threshold
            crossed = t is not None and (r.change < t if self.higher_is_better else r.change > t)
            r.verdict, r.note = ("fail" if crossed else "pass"), note
        return r

    # -- output ---------------------------------------------------------------------------------

    @classmethod
    def format_value(cls, v: float) -> str:
        """A baseline or current value in the gate's table (never None here)."""
        return f"{v:.4g}"

    @classmethod
    def format_threshold(cls, r: RuleResult) -> str:
        return fmt_change(r.threshold, r.unit)


RULES: dict[str, type[Rule]] = {}  # metric -> rule class, in registration order (= order of rows and defaults)


def register_rule(cls: type[Rule]) -> type[Rule]:
    """Make a rule known to rules files, `default_rules` and `evaluate_gate`; usable as a decorator.
    Rules run, and rules files list them, in registration order (the built-ins first)."""
    if not (isinstance(cls, type) and issubclass(cls, Rule)) or cls is Rule:
        raise TypeError(f"a gate rule must be a subclass of harness.gate.Rule, not {cls!r}")
    name = cls.name
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"gate rule {cls.__name__}: name must be an identifier-like string, not {name!r}")
    if name in RULES and RULES[name] is not cls:
        raise ValueError(f"gate rule {name!r} is already registered ({RULES[name].__qualname__})")
    keys = cls.valid_keys()
    if len(set(keys)) != len(keys):
        raise ValueError(f"gate rule {name!r}: its threshold key or options repeat a key: {', '.join(keys)}")
    if (cls.threshold_key is None) != (cls.default_threshold is None):
        raise ValueError(f"gate rule {name!r}: threshold_key and default_threshold go together")
    if cls.default_threshold is not None and not cls.default_threshold >= 0:
        raise ValueError(f"gate rule {name!r}: default_threshold must be non-negative")
    if cls.unit not in ("rel", "pts", ""):
        raise ValueError(f"gate rule {name!r}: unit must be 'rel', 'pts' or '', not {cls.unit!r}")
    RULES[name] = cls
    return cls


def unregister_rule(name: str) -> type[Rule] | None:
    """Forget a registered rule (tests, plugins that replace a rule); returns it, or None."""
    return RULES.pop(name, None)


def rule_class(name: str) -> type[Rule] | None:
    return RULES.get(name)
