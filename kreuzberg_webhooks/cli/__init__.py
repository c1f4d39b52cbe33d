"""The ``kreuzberg-webhooks`` command line: sign, verify, send-test, simulate,
emulate, reconcile and inbox.

Standard library only. Exit status: 0 on success, 1 when a delivery is
rejected, an endpoint does not give the expected answer (send-test: a 2xx, or
the refusal of a forgery) or a simulation loses events, 2 for a usage error
(a bad option, an unreadable file, a missing secret), 130 when interrupted.
Errors are one line on stderr; a secret never appears in any output.

The package is laid out like rq's: :mod:`.helpers` holds what the commands
share and imports none of them; :mod:`.sender`, :mod:`.cloud` and
:mod:`.inbox` each add their commands; this module builds the parser from
them and runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence

from .. import __version__
from .cloud import add_cloud_commands
from .helpers import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    SECRET_ENV,
    CommandError,
    CommandIO,
    Formatter,
    Parser,
    UsageError,
    paragraphs,
)
from .inbox import add_inbox_commands
from .sender import add_sender_commands

__all__ = ["CommandError", "UsageError", "build_parser", "main"]


_MAIN_DESCRIPTION = """\
Sign, verify and send Kreuzberg Cloud webhook deliveries.

The secret comes from --secret, --secret-file or the KREUZBERG_WEBHOOK_SECRET
environment variable (prefer the variable or a file: command-line arguments are
visible to other users of the machine). It never appears in any output."""

_MAIN_EPILOG = f"""\
commands:
  sign        print the X-Webhook-Signature value for a body
  verify      check a body and its signature as a receiver would
  send-test   post one realistic signed delivery to your endpoint
  simulate    deliver many events like the real sender, retries included
  emulate     run a local Kreuzberg Cloud (jobs API and webhooks, with faults)
  reconcile   dispatch tracked jobs whose webhook never came (for cron)
  inbox       list, show, retry and purge inbox deliveries; run a worker

examples:
  export {SECRET_ENV}=whsec_...
  {PROG} sign body.json
  {PROG} sign body.json --scheme t-v1                 # t=<now>,v1=<hex>, the inline webhook's format
  {PROG} verify body.json --signature sha256=4f2c...
  {PROG} send-test http://127.0.0.1:8000/webhooks/kreuzberg --status failed
  {PROG} simulate http://127.0.0.1:8000/webhooks/kreuzberg --events 50 --time-scale 0.01

exit status: 0 ok (send-test: the expected answer), 1 rejected / not delivered / events lost, 2 usage error."""


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = Parser(
        prog=prog,
        usage="%(prog)s [-h] [--version] COMMAND [OPTIONS]",
        description=paragraphs(_MAIN_DESCRIPTION),
        epilog=_MAIN_EPILOG,
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # The command list is the epilog's, written by hand: argparse's own wraps badly.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog=prog)

    add_sender_commands(commands, prog)
    add_cloud_commands(commands, prog)
    add_inbox_commands(commands, prog)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run the command line; return the exit status."""
    io = CommandIO()
    # The core logs rejections for servers; here the verdict is printed instead.
    logging.getLogger("kreuzberg_webhooks").addHandler(logging.NullHandler())
    parser = build_parser(prog)
    started = time.monotonic()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(f"choose a command: sign, verify, send-test or simulate (see '{prog} --help')")
        code: int = args.run(args, io)
        return code
    except SystemExit as exit_:  # --help and --version
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    except CommandError as error:
        message = str(error)
        if not message.startswith(prog):  # the parser's errors already name the command
            command = getattr(locals().get("args"), "command", None)
            message = f"{prog}{' ' + command if command else ''}: error: {message}"
        print(message, file=io.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted after {time.monotonic() - started:.1f} s", file=io.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `... | head`: the reader went away. Point stdout at /dev/null so the
        # interpreter's final flush does not print a traceback.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
