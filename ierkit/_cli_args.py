"""Argument types of the ``ierkit`` command line: one shared set, so every count, size, date
and zone is checked the same way (argparse turns their ``ArgumentTypeError`` into a usage line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    """``text`` as a finite number of ``kind``; ArgumentTypeError otherwise."""
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    try:
        finite = math.isfinite(value)
    except OverflowError:  # a whole number beyond any float
        raise argparse.ArgumentTypeError(f"{text!r} is too large") from None
    if not finite:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def time_zone_name(text: str) -> str:
    """An IANA time zone name (``America/Chicago``) or ``UTC``."""
    from ierkit import clock

    try:
        clock.time_zone(text)
    except clock.ClockError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text.strip()


def positive_int(text: str) -> int:
    """A whole number of 1 or more (a count, a size)."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def finite_float(text: str) -> float:
    """A number that is neither NaN nor infinite."""
    return float(_number(text, float))


def non_negative_float(text: str) -> float:
    """A finite number of 0 or more."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """A finite number greater than 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def parse_date(text: str) -> dt.date:
    """An ISO date (YYYY-MM-DD) from the command line."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date of the form YYYY-MM-DD") from None
