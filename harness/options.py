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
