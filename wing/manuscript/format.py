"""How the manuscript writes a number: one place, so the text and its tables agree.

Every function returns text, and ``NOT_ASSESSED`` where the value is missing (a method or an
analysis that the run did not have), so a sentence of the manuscript never shows ``nan``.
"""

from __future__ import annotations

import math

from wing.statistics.claims import NOT_ASSESSED


def missing(value: object) -> bool:
    """True for None, NaN and an empty string (a value this run did not produce)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def number(value: object, digits: int = 3) -> str:
    """A score or statistic with ``digits`` decimals (``0.878``)."""
    return NOT_ASSESSED if missing(value) else f"{float(value):.{digits}f}"


def signed(value: object, digits: int = 3) -> str:
    """A difference with its sign (``+0.031``, ``-0.002``)."""
    return NOT_ASSESSED if missing(value) else f"{float(value):+.{digits}f}"


def interval(low: object, high: object, digits: int = 3) -> str:
    """A confidence interval of a difference (``+0.019 to +0.047``)."""
    if missing(low) or missing(high):
        return NOT_ASSESSED
    return f"{signed(low, digits)} to {signed(high, digits)}"


def p_value(value: object) -> str:
    """A p-value: three decimals, or ``< 0.001``."""
    if missing(value):
        return NOT_ASSESSED
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def count(value: object) -> str:
    """A count with thousands separators (``494,635``)."""
    return NOT_ASSESSED if missing(value) else f"{int(value):,}"


def percent(fraction: object, digits: int = 0) -> str:
    """A fraction as a percentage without the sign (``0.95`` -> ``95``)."""
    return NOT_ASSESSED if missing(fraction) else f"{100 * float(fraction):.{digits}f}"


def listing(names: list[str] | tuple[str, ...]) -> str:
    """Names as prose: ``a``, ``a and b``, ``a, b and c``."""
    names = [str(n) for n in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
