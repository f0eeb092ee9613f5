"""Config validation helpers: every error names the field, the value and what was expected."""

from __future__ import annotations

from typing import Any


def check_positive(**fields: Any) -> None:
    """Raise ValueError for the first field that is not a positive integer."""
    for name, value in fields.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name}={value!r}: expected a positive integer")


def check_divisible(name: str, value: int, by_name: str, by: int) -> None:
    """Raise ValueError unless `value % by == 0`."""
    if value % by != 0:
        raise ValueError(f"{name}={value}: expected a multiple of {by_name}={by}")


def check_range(name: str, value: float, low: float, high: float) -> None:
    """Raise ValueError unless `low <= value <= high`."""
    if not (low <= value <= high):
        raise ValueError(f"{name}={value}: expected a value in [{low}, {high}]")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise ValueError unless `value in choices`."""
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {list(choices)}")
