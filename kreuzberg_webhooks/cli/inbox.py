"""The ``inbox`` commands of the command line: list, show, retry, purge and worker.

Standard library only at import
(an inbox's backend imports its driver when it is opened).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from ..exceptions import ConfigurationError, StoreUnavailable
from .helpers import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    Formatter,
    UsageError,
    non_negative_float,
    paragraphs,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:
    from ..inbox.worker import InboxWorker

__all__ = [
    "INBOX_URL_ENV",
    "add_inbox_commands",
    "inbox_unavailable_is_one_line",
    "list_command",
    "purge_command",
    "retry_command",
    "show_command",
]

INBOX_URL_ENV = "KREUZBERG_INBOX_URL"
_STATES = ("queued", "running", "done", "dead")
_MAX_ERROR_SHOWN = 120


def _open(args: argparse.Namespace) -> Any:
    given = getattr(args, "inbox", None)
    if given is not None:  # manage.py kreuzberg_inbox: the configured inbox itself
        return given
    url = args.store or os.environ.get(INBOX_URL_ENV, "")
    if not url:
        raise UsageError(f"no inbox: pass --store URL or set {INBOX_URL_ENV}")
    from ..inbox import open_inbox

    try:
        return open_inbox(url)
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    except ImportError as error:
        raise UsageError(str(error)) from None
    except StoreUnavailable as error:
        raise CommandError(f"the inbox is unavailable: {error.detail}") from None


def _state(value: str | None) -> Any:
    from ..inbox import DeliveryState

    return None if value is None else DeliveryState(value)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: str | None, limit: int = _MAX_ERROR_SHOWN) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def inbox_unavailable_is_one_line(run: Any) -> Any:
    """Run a command body; an unreachable inbox is exit status 1 with one line."""

    def guarded(args: argparse.Namespace, io: Any) -> int:
        try:
            code: int = run(args, io)
            return code
        except StoreUnavailable as error:
            raise CommandError(f"the inbox is unavailable: {error.detail}") from None

    return guarded


def list_command(args: argparse.Namespace, io: Any) -> int:
    inbox = _open(args)
    records = inbox.list(_state(args.state), args.limit)
    for record in records:
        entry = record.entry
        fields = [
            entry.event_id or "-",
            record.state.value,
            f"attempts={record.attempts}",
            f"type={entry.event_type}",
            f"job={entry.job_id}",
            f"received={_when(entry.received_at)}",
        ]
        if record.state.value == "queued" and record.attempts:
            fields.append(f"next={_when(record.next_attempt_at)}")
        if record.last_error and record.state.value != "done":
            fields.append(f"error={_one_line(record.last_error)!r}")
        print(" ".join(fields), file=io.stdout)
    return EXIT_OK


def show_command(args: argparse.Namespace, io: Any) -> int:
    inbox = _open(args)
    record = inbox.get(args.event_id)
    if record is None:
        raise CommandError(f"no delivery with the key or event id {args.event_id!r}")
    entry = record.entry
    lines = [
        ("event_id", entry.event_id or "-"),
        ("key", entry.key),
        ("scope", entry.scope or '""'),
        ("type", entry.event_type),
        ("job_id", entry.job_id),
        ("state", record.state.value),
        ("attempts", str(record.attempts)),
        ("received", _when(entry.received_at)),
        ("updated", _when(record.updated_at)),
        ("next attempt", _when(record.next_attempt_at) if record.state.value in ("queued", "running") else "-"),
        ("last error", record.last_error or "-"),
        ("headers", ", ".join(name for name, _ in entry.headers) or "-"),
    ]
    for name, value in lines:
        print(f"{name + ':':14}{value}", file=io.stdout)
    if args.body:
        try:
            text = json.dumps(json.loads(entry.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = entry.body.decode("utf-8", "replace")
        print(text, file=io.stdout)
    return EXIT_OK


_DONE_AGAIN = (
    "a done delivery's handlers have run; queued again, it is found done in the replay store and "
    "marked done without running until the store forgets its key (the receiver's retention), and "
    "runs again after that"
)


def retry_command(args: argparse.Namespace, io: Any) -> int:
    if bool(args.event_ids) == bool(args.state):
        raise UsageError("give EVENT_ID… or --state STATE (not both)")
    if args.state == "running":
        raise UsageError("a running delivery is being processed; it cannot be retried")
    include_done = getattr(args, "include_done", False)  # manage.py kreuzberg_inbox may not offer it
    if args.state == "done" and not include_done:
        raise UsageError(f"--state done: {_DONE_AGAIN}; add --include-done if that is what you want")
    inbox = _open(args)
    found = {key: inbox.get(key) for key in dict.fromkeys(args.event_ids)}
    missing = [key for key, record in found.items() if record is None]
    done = [key for key, record in found.items() if record is not None and record.state.value == "done"]
    refused = [] if include_done else done
    targets = [key for key in found if key not in missing and key not in refused]
    changed = inbox.retry(targets, state=_state(args.state)) if targets or args.state else 0
    print(f"queued {changed} deliver{'y' if changed == 1 else 'ies'} again", file=io.stdout)
    if include_done and (done or args.state == "done"):
        print(f"note: {_DONE_AGAIN}", file=io.stderr)
    if refused:
        print(
            f"not queued, done already: {' '.join(refused)} ({_DONE_AGAIN}; add --include-done to queue it anyway)",
            file=io.stderr,
        )
    if missing:
        print(f"not found: {' '.join(missing)}", file=io.stderr)
    return EXIT_FAILED if missing or refused else EXIT_OK


def purge_command(args: argparse.Namespace, io: Any) -> int:
    if args.state == "running":
        raise UsageError("a running delivery is being processed; it cannot be purged")
    inbox = _open(args)
    deleted = inbox.purge(_state(args.state), args.older_than)
    print(f"purged {deleted} {args.state} deliver{'y' if deleted == 1 else 'ies'}", file=io.stdout)
    return EXIT_OK


def _cmd_worker(args: argparse.Namespace, io: Any) -> int:
    from ..inbox import RetryPolicy
    from ..inbox.worker import InboxWorker
    from ..lifecycle.receiver import Receiver

    module_name, _, attribute = args.receiver.partition(":")
    if not module_name or not attribute:
        raise UsageError("--receiver must be 'module:attribute' (a Receiver with its handlers registered)")
    try:
        receiver = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"cannot import the receiver {args.receiver!r}: {error}") from None
    if not isinstance(receiver, Receiver):
        raise UsageError(f"{args.receiver!r} is not a kreuzberg_webhooks.Receiver")
    inbox = _open(args) if (args.store or os.environ.get(INBOX_URL_ENV)) else receiver.inbox
    try:
        policy = RetryPolicy(
            first_delay=args.retry_delay,
            max_delay=args.retry_max_delay,
            max_attempts=args.max_attempts,
            max_age=args.max_age,
        )
        given = {} if args.shutdown_grace is None else {"shutdown_grace": args.shutdown_grace}
        worker = InboxWorker(
            receiver, inbox, policy=policy, lease=args.lease, poll_interval=args.poll_interval, **given
        )
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    run_until_signalled(worker, f"inbox worker running (pid {os.getpid()}); stop with Ctrl-C or SIGTERM", io.stderr)
    return EXIT_OK


def run_until_signalled(worker: InboxWorker, started: str, stderr: TextIO) -> None:
    """Run *worker* until SIGTERM or SIGINT, then wait for its running handler at most its
    ``shutdown_grace`` (a second signal: not at all). A handler still running then is left
    to the process's exit: its delivery comes back after its lease, as after a kill.

    The command's own ``inbox worker`` and Django's ``manage.py kreuzberg_inbox worker``.
    """
    stop, over, again = threading.Event(), threading.Event(), threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():  # a second signal: stop waiting for the running handler
            again.set()
            over.set()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    def work() -> None:
        try:
            worker.run(stop)
        finally:
            over.set()

    # The worker runs in a thread, so that a handler still running after the grace does not
    # hold the process.
    thread = threading.Thread(target=work, name="kreuzberg-inbox-worker", daemon=True)
    print(started, file=stderr, flush=True)
    thread.start()
    while not stop.wait(1.0) and thread.is_alive():
        pass
    grace = worker.shutdown_grace
    deadline = time.monotonic() + grace
    if grace > 0 and not over.wait(min(0.1, grace)):
        print(
            f"stopping: waiting up to {grace:g} s for the running handler (Ctrl-C or SIGTERM again: stop now)",
            file=stderr,
            flush=True,
        )
        over.wait(max(deadline - time.monotonic(), 0.0))
    if thread.is_alive():
        why = "on a second signal" if again.is_set() else f"after a grace of {grace:g} s"
        print(
            f"inbox worker stopped {why} with a handler still running; its delivery comes back after its lease",
            file=stderr,
            flush=True,
        )


def add_shutdown_grace(parser: Any) -> None:
    """The worker's ``--shutdown-grace SECONDS`` (:func:`run_until_signalled`); ``None`` when not given."""
    parser.add_argument(
        "--shutdown-grace",
        type=non_negative_float,
        default=None,
        metavar="SECONDS",
        help="on SIGTERM or Ctrl-C, how long to wait for the running handler (a second signal: no longer); "
        "one still running after it comes back after its lease (default: 30, an embedded worker's)",
    )


def add_inbox_commands(commands: Any, prog: str) -> None:
    """Add ``inbox`` and its subcommands to the command line's subparsers."""
    inbox_cmd = commands.add_parser(
        "inbox",
        help="look at and operate the inbox of deliveries (inbox mode)",
        description=paragraphs(
            "Look at the deliveries an inbox holds, queue failed ones again, delete old ones, or run a "
            f"worker. The inbox is given by --store URL or ${INBOX_URL_ENV}: sqlite:///path.db, "
            "postgresql://..., redis://..."
        ),
        formatter_class=Formatter,
        epilog=f"""examples:
  {prog} inbox list --store sqlite:///kreuzberg-webhooks.sqlite3 --state dead
  {prog} inbox show 01HZQ... --store sqlite:///kreuzberg-webhooks.sqlite3 --body
  {prog} inbox retry --store sqlite:///kreuzberg-webhooks.sqlite3 --state dead
  {prog} inbox purge --store sqlite:///kreuzberg-webhooks.sqlite3 --state done --older-than 604800
  {prog} inbox worker --receiver myapp.webhooks:receiver""",
    )
    actions = inbox_cmd.add_subparsers(dest="inbox_command", metavar="ACTION", required=True)

    def store_option(command: argparse.ArgumentParser) -> None:
        command.add_argument("--store", metavar="URL", help=f"the inbox's URL (default: ${INBOX_URL_ENV})")

    list_cmd = actions.add_parser("list", help="one line per delivery: event id, state, attempts…")
    store_option(list_cmd)
    list_cmd.add_argument("--state", choices=_STATES, help="only deliveries in this state")
    list_cmd.add_argument("--limit", type=positive_int, default=100, help="at most this many (default: %(default)s)")
    list_cmd.set_defaults(run=inbox_unavailable_is_one_line(list_command))

    show_cmd = actions.add_parser("show", help="everything about one delivery")
    show_cmd.add_argument("event_id", metavar="EVENT_ID", help="the event id (or the delivery key)")
    store_option(show_cmd)
    show_cmd.add_argument("--body", action="store_true", help="print the stored body too")
    show_cmd.set_defaults(run=inbox_unavailable_is_one_line(show_command))

    retry_cmd = actions.add_parser("retry", help="queue deliveries again (dead ones, or by event id)")
    retry_cmd.add_argument("event_ids", metavar="EVENT_ID", nargs="*", help="event ids (or delivery keys)")
    store_option(retry_cmd)
    retry_cmd.add_argument("--state", choices=_STATES, help="every delivery in this state (e.g. dead)")
    retry_cmd.add_argument(
        "--include-done",
        action="store_true",
        help="also queue done deliveries (refused otherwise): their handlers ran, and run again only once "
        "the replay store has forgotten them",
    )
    retry_cmd.set_defaults(run=inbox_unavailable_is_one_line(retry_command))

    purge_cmd = actions.add_parser("purge", help="delete done (or dead) deliveries")
    store_option(purge_cmd)
    purge_cmd.add_argument("--state", choices=("done", "dead", "queued"), required=True, help="which to delete")
    purge_cmd.add_argument(
        "--older-than",
        type=lambda v: 0.0 if v.strip() in ("0", "0.0") else positive_float(v),
        default=0.0,
        metavar="SECONDS",
        help="only those unchanged for this long (default: all)",
    )
    purge_cmd.set_defaults(run=inbox_unavailable_is_one_line(purge_command))

    worker_cmd = actions.add_parser("worker", help="process the inbox's deliveries until stopped")
    worker_cmd.add_argument(
        "--receiver", required=True, metavar="MODULE:ATTR", help="the Receiver whose handlers run (import path)"
    )
    store_option(worker_cmd)
    worker_cmd.add_argument(
        "--lease",
        type=positive_float,
        default=None,
        help="seconds a dead worker's claim holds; renewed while a handler runs (default: the receiver's lease)",
    )
    worker_cmd.add_argument("--poll-interval", type=positive_float, default=1.0, help="seconds (%(default)s)")
    worker_cmd.add_argument("--retry-delay", type=positive_float, default=10.0, help="first retry delay (%(default)s)")
    worker_cmd.add_argument("--retry-max-delay", type=positive_float, default=3600.0, help="cap (%(default)s)")
    worker_cmd.add_argument("--max-attempts", type=positive_int, default=30, help="then dead (%(default)s)")
    worker_cmd.add_argument("--max-age", type=positive_float, default=3 * 24 * 3600.0, help="seconds, then dead")
    add_shutdown_grace(worker_cmd)
    worker_cmd.set_defaults(run=inbox_unavailable_is_one_line(_cmd_worker))
