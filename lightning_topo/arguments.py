"""Argument checks shared by the callbacks, models, data modules and activations: one wording for one mistake.

Each check raises a ``ValueError`` that names the argument, what it must be and what it got, at construction,
so that a typo in a config fails before training rather than in a hook after hours of it.  ``bool`` is never
taken for a number (``True`` is an ``int`` to Python, not a seed or a count to a user).

Example:
    >>> check_count("probe_size", 500)
    >>> check_positive("lr", float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: lr must be a positive finite number, got inf
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_count", "check_finite", "check_flag", "check_positive", "check_seed", "is_real"]


def is_real(value: Any) -> bool:
    """A real number (Python's or numpy's), not a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_finite(name: str, value: Any) -> None:
    """``value`` must be a finite real number (NaN compares false with everything and would select nothing)."""
    if not (is_real(value) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    """``value`` must be a finite number above zero (or at least zero)."""
    if not (is_real(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)):
        bound = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {bound} finite number, got {value!r}")


def check_count(name: str, value: Any, *, minimum: int = 1) -> None:
    """``value`` must be an integer of at least ``minimum``."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_seed(value: Any) -> None:
    """A seed must be a non-negative integer (what numpy and torch generators both take)."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < 2**63):
        raise ValueError(f"seed must be a non-negative integer, got {value!r}")


def check_flag(name: str, value: Any) -> None:
    """``value`` must be ``True`` or ``False`` (a string such as ``"false"`` is truthy and would mean yes)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
