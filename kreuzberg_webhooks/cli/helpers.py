"""What every sub-command of the command line shares: exit statuses, errors, the
help formatter, argument types and where a command reads and writes.

Standard library only. The sub-commands (:mod:`.sender`, :mod:`.cloud`,
:mod:`.inbox`) import these; this module imports none of them.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import textwrap
from collections.abc import Callable
from typing import IO, NoReturn, TypeVar
from urllib.parse import urlsplit

from ..testing.simulate import Transport, http_transport, redact_url

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "SECRET_ENV",
    "CommandError",
    "CommandIO",
    "Formatter",
    "Parser",
    "UsageError",
    "at_most",
    "header_name",
    "http_url",
    "non_negative_float",
    "non_negative_int",
    "paragraphs",
    "positive_float",
    "positive_int",
    "rate",
    "unix_time",
]

PROG = "kreuzberg-webhooks"
SECRET_ENV = "KREUZBERG_WEBHOOK_SECRET"  # noqa: S105 - the variable's name
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_N = TypeVar("_N", int, float)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CommandError):
    """A bad invocation: exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's examples as written; descriptions are wrapped by :func:`paragraphs`."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=min(100, _terminal_width()))


def paragraphs(text: str) -> str:
    """Wrap each blank-line-separated paragraph to the help width."""
    width = min(100, _terminal_width()) - 2
    return "\n\n".join(textwrap.fill(" ".join(part.split()), width) for part in text.split("\n\n"))


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def http_url(value: str) -> str:
    shown = redact_url(value)
    try:
        parts = urlsplit(value)
    except ValueError as error:  # an unclosed or malformed IPv6 literal: "http://[::1/"
        raise argparse.ArgumentTypeError(f"not a valid URL ({shown!r}): {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http:// or https:// URL: {shown!r}")
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rpartition("@")[2].rpartition("]")[2].rpartition(":")[2]
        if port_text.isascii() and port_text.isdigit():
            raise argparse.ArgumentTypeError(f"port {int(port_text)} is not between 1 and 65535: {shown!r}") from None
        raise argparse.ArgumentTypeError(f"not a port number: {port_text!r} in {shown!r}") from None
    if port == 0:
        raise argparse.ArgumentTypeError(f"port 0 is not between 1 and 65535: {shown!r}")
    return value


def header_name(value: str) -> str:
    """An HTTP header name (an RFC 9110 token), checked before anything is sent."""
    if not _TOKEN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not a header name: {value!r}")
    return value


def at_most(parse: Callable[[str], _N], limit: _N, unit: str = "") -> Callable[[str], _N]:
    """*parse*, refusing values above *limit*: a number that cannot work is refused when it is given."""

    def parse_bounded(value: str) -> _N:
        number = parse(value)
        if number > limit:
            shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
            raise argparse.ArgumentTypeError(f"must be at most {shown}{unit}: {value!r}")
        return number

    parse_bounded.__name__ = parse.__name__  # argparse names the type in its messages
    return parse_bounded


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number: {value!r}")
    return number


def unix_time(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a unix time: {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"not a unix time: {value!r}")
    return number


def non_negative_float(value: str) -> float:
    if value.strip() in ("0", "0.0"):
        return 0.0
    return positive_float(value)


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return number


def non_negative_int(value: str) -> int:
    return 0 if value.strip() == "0" else positive_int(value)


def rate(value: str) -> float:
    number = non_negative_float(value)
    if number > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {value!r}")
    return number


class CommandIO:
    """Where a command reads and writes, and how it sends (tests swap these)."""

    def __init__(
        self,
        stdin: IO[bytes] | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        transport: Transport = http_transport,
    ) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin.buffer
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.transport = transport
