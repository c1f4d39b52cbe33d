"""``manage.py kreuzberg_inbox list|show|retry|purge|worker`` on the configured inbox."""

from __future__ import annotations

import argparse
import math
import signal
import threading
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kreuzberg_webhooks.adapters.django.conf import get_receiver
from kreuzberg_webhooks.cli import inbox as _inbox_cli
from kreuzberg_webhooks.cli.helpers import CommandError as CliError
from kreuzberg_webhooks.exceptions import ConfigurationError
from kreuzberg_webhooks.inbox.django import runtime


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _seconds(*, zero: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, positive (or also 0 when *zero*)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            kind = "non-negative" if zero else "positive"
            raise argparse.ArgumentTypeError(f"{text} is not a finite, {kind} number of seconds")
        return value

    return parse


class Command(BaseCommand):  # type: ignore[misc]
    help = "List, show, retry or purge the webhook inbox's deliveries, or run a worker."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        list_cmd = actions.add_parser("list", help="one line per delivery")
        list_cmd.add_argument("--state", choices=("queued", "running", "done", "dead"))
        list_cmd.add_argument("--limit", type=_positive_int, default=100)
        show_cmd = actions.add_parser("show", help="one delivery")
        show_cmd.add_argument("event_id")
        show_cmd.add_argument("--body", action="store_true")
        retry_cmd = actions.add_parser("retry", help="queue deliveries again")
        retry_cmd.add_argument("event_ids", nargs="*")
        retry_cmd.add_argument("--state", choices=("queued", "done", "dead"))
        retry_cmd.add_argument("--include-done", action="store_true")
        purge_cmd = actions.add_parser("purge", help="delete done (or dead) deliveries")
        purge_cmd.add_argument("--state", choices=("done", "dead", "queued"), required=True)
        purge_cmd.add_argument("--older-than", type=_seconds(zero=True), default=0.0)
        worker_cmd = actions.add_parser("worker", help="process deliveries until stopped")
        worker_cmd.add_argument("--poll-interval", type=_seconds(zero=False), default=1.0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except (ConfigurationError, ValueError) as error:  # a value the inbox or the worker refuses: one line
            raise CommandError(str(error)) from None

    def _handle(self, options: dict[str, Any]) -> None:
        receiver = get_receiver()
        if receiver.inbox is None:
            raise CommandError("KREUZBERG_WEBHOOKS['INBOX'] is not set: there is no inbox")
        action = options["action"]
        if action == "worker":
            worker = runtime.embedded_worker(poll_interval=options["poll_interval"])
            stop = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            self.stderr.write(f"inbox worker running on {type(receiver.inbox).__name__}; stop with Ctrl-C")
            worker.run(stop)
            return
        namespace = argparse.Namespace(store=None, inbox=receiver.inbox, **options)
        run = {
            "list": _inbox_cli._cmd_list,
            "show": _inbox_cli._cmd_show,
            "retry": _inbox_cli._cmd_retry,
            "purge": _inbox_cli._cmd_purge,
        }[action]
        # The raw streams: OutputWrapper would add a newline to each of print()'s two writes.
        io = argparse.Namespace(stdout=self.stdout._out, stderr=self.stderr._out)
        try:
            code = _inbox_cli._guard(run)(namespace, io)
        except CliError as error:
            raise CommandError(str(error)) from None
        if code:
            raise CommandError("some deliveries were not found", returncode=code)
