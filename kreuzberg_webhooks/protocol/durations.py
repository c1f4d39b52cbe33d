"""Durations given at construction (leases, retentions, windows, intervals): one that
cannot work is refused when it is given.

An infinite retention overflows a store's expiry, a NaN lease compares false
with everything, a ``True`` that slipped in for a number means 1: each would
fail later, per delivery, after a handler has run. They are refused here with
:class:`ConfigurationError` instead.
"""

from __future__ import annotations

import math

from ..exceptions import ConfigurationError

__all__ = ["duration", "refuse_duration"]


def duration(value: object, name: str, *, allow_zero: bool = False) -> float:
    """*value* as a float number of seconds: finite and positive (or zero, with *allow_zero*)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        least = "zero or more" if allow_zero else "more than zero"
        raise ConfigurationError(f"{name} must be a finite number of seconds, {least} (got {value!r})")
    return seconds


def refuse_duration(name: str, value: object) -> ConfigurationError:
    """The error for a lease or retention a store was handed that is not finite and positive.

    Stores check ``0 < value < inf`` inline (it runs on every delivery) and raise this.
    """
    return ConfigurationError(f"{name} must be a finite number of seconds, more than zero (got {value!r})")
