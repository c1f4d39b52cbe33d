"""``manage.py kreuzberg_inbox list|show|retry|purge|worker`` on the configured inbox."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kreuzberg_webhooks.cli import inbox as inbox_commands
from kreuzberg_webhooks.cli.helpers import CommandError as CliError
from kreuzberg_webhooks.cli.helpers import non_negative_float, positive_float, positive_int
from kreuzberg_webhooks.django.conf import get_receiver
from kreuzberg_webhooks.django.inbox import runtime
from kreuzberg_webhooks.exceptions import ConfigurationError


def _positive_int(text: str) -> int:
    """The command line's rule (:func:`~kreuzberg_webhooks.cli.helpers.positive_int`), in this command's words."""
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number") from None


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
        purge_cmd.add_argument("--older-than", type=non_negative_float, default=0.0)
        worker_cmd = actions.add_parser("worker", help="process deliveries until stopped")
        worker_cmd.add_argument("--poll-interval", type=positive_float, default=1.0)
        inbox_commands.add_shutdown_grace(worker_cmd)

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
            grace = options["shutdown_grace"]
            given = {} if grace is None else {"shutdown_grace": grace}
            worker = runtime.embedded_worker(poll_interval=options["poll_interval"], **given)
            started = f"inbox worker running on {type(receiver.inbox).__name__}; stop with Ctrl-C or SIGTERM"
            inbox_commands.run_until_signalled(worker, started, self.stderr._out)
            return
        namespace = argparse.Namespace(store=None, inbox=receiver.inbox, **options)
        run = {
            "list": inbox_commands.list_command,
            "show": inbox_commands.show_command,
            "retry": inbox_commands.retry_command,
            "purge": inbox_commands.purge_command,
        }[action]
        # The raw streams: OutputWrapper would add a newline to each of print()'s two writes.
        io = argparse.Namespace(stdout=self.stdout._out, stderr=self.stderr._out)
        try:
            code = inbox_commands.inbox_unavailable_is_one_line(run)(namespace, io)
        except CliError as error:
            raise CommandError(str(error)) from None
        if code:
            raise CommandError("some deliveries were not found", returncode=code)
