"""A model's role in a comparison: a base role plus an optional variant, e.g. `student_kd@int8`.

The trio's base roles are `teacher` (the reference every speedup and accuracy delta is taken against),
`student_scratch` and `student_kd`. A user's own names (`harness bench --model mine=...`) are students
too: judged against `teacher` wherever a task has one. A variant (harness/variants.py) is the same model
in another numeric form, `<base>@<variant>`, compared with its fp32 base.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import OptionError

REFERENCE = "teacher"
TRIO = ("teacher", "student_scratch", "student_kd")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True, order=True)
class Role:
    base: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Role":
        """`student_kd@int8` -> Role("student_kd", "int8"); a malformed `@` (`a@`, `@b`) is a plain name."""
        base, sep, variant = str(text).partition("@")
        return cls(base, variant) if sep and base and variant else cls(str(text))

    def __str__(self) -> str:
        return f"{self.base}@{self.variant}" if self.variant else self.base

    @property
    def is_variant(self) -> bool:
        return self.variant is not None

    @property
    def is_reference(self) -> bool:
        return self.base == REFERENCE

    def with_variant(self, variant: str | None) -> "Role":
        return Role(self.base, variant)

    def sort_key(self) -> tuple:
        """The trio in its order, then other names sorted; each base followed by its variants."""
        rank = TRIO.index(self.base) if self.base in TRIO else len(TRIO)
        return (rank, "" if rank < len(TRIO) else self.base, self.variant is not None, self.variant or "")


def user_role(text: str, what: str = "role") -> Role:
    """A role name a user gives (`--model NAME=...`): letters, digits, _ and -, no variant part."""
    name = str(text).strip()
    if not _NAME_RE.match(name):
        raise OptionError(f"{what} {name!r} must start with a letter and hold only letters, digits, _ and - "
                          f"(at most 64; '@' is kept for variants such as student_kd@int8)")
    return Role(name)
