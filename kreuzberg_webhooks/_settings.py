"""Checks for settings given at construction: a setting that cannot work is refused when it is given.

An infinite retention overflows a store's expiry, a NaN lease compares false
with everything, a ``True`` that slipped in for a number means 1: each would
fail later, per delivery, after a handler has run. They are refused here with
:class:`ConfigurationError` instead.
"""

from __future__ import annotations

import math
import re

from .exceptions import ConfigurationError

__all__ = ["duration", "header_name", "refuse_duration"]

# RFC 9110 §5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


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


def header_name(value: object, name: str = "the signature header name") -> str:
    """*value* if it is a valid HTTP field name (an RFC 9110 token: ASCII, no spaces, no colon)."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ConfigurationError(
            f"{name} must be an HTTP header name (letters, digits and -_.!#$%&'*+^`|~), got {value!r}"
        )
    return value
