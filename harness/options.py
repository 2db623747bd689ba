"""Parsing of comma-separated option values, shared by every command that takes a list."""
from __future__ import annotations

from typing import Callable, TypeVar

from harness.errors import OptionError

T = TypeVar("T")


def parse_list(text: str, name: str, convert: Callable[[str], T], what: str) -> list[T]:
    """`"a,b,c"` -> [convert(a), ...]; an empty list, an empty item or an item `convert` rejects is a
    one-line OptionError naming the option (range checks are the caller's)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise OptionError(f"{name} must be a non-empty comma-separated list of {what}, got {text!r}")
    try:
        return [convert(p) for p in parts]
    except ValueError:
        raise OptionError(f"{name} must be a comma-separated list of {what}, got {text!r}") from None


# -- checks that configs run in __post_init__ (one message style for every bad value) --------------
def _is_int(v: object) -> bool:
    import numbers

    return isinstance(v, numbers.Integral) and not isinstance(v, bool)  # numpy ints too


def check_int(value: object, name: str, minimum: int = 1, optional: bool = False) -> None:
    """An int (never a bool) >= minimum; None passes when optional."""
    if value is None and optional:
        return
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise OptionError(f"{name} must be {what}, got {value!r}")


def check_number(value: object, name: str, minimum: float | None = None, exclusive: bool = False,
                 optional: bool = False) -> None:
    """A finite int or float (never a bool), above `minimum` (or at it, unless exclusive)."""
    import math

    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive else value >= minimum  # type: ignore[operator]
    if not ok:
        bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum:g}"
        raise OptionError(f"{name} must be a number{bound}, got {value!r}")


def check_choice(value: object, name: str, choices: "tuple[str, ...] | list[str]") -> None:
    if value not in choices:
        raise OptionError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_int_list(values: object, name: str, minimum: int = 1) -> None:
    """A non-empty list of ints >= minimum."""
    if not isinstance(values, (list, tuple)) or not values or not all(_is_int(v) and v >= minimum for v in values):
        raise OptionError(f"{name} must be positive integers, got {values!r}")
