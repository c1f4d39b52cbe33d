"""The cloud commands of the command line: ``emulate`` (a local Kreuzberg Cloud) and ``reconcile``.

Standard
library only at import (``reconcile`` imports httpx when it runs).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from typing import Any

from ..exceptions import ConfigurationError, StoreUnavailable
from .helpers import (
    EXIT_FAILED,
    EXIT_OK,
    Formatter,
    UsageError,
    http_url,
    non_negative_float,
    non_negative_int,
    paragraphs,
    positive_float,
    positive_int,
    rate,
)

__all__ = ["API_KEY_ENV", "API_URL_ENV", "TRACKER_ENV", "add_cloud_commands"]

API_KEY_ENV = "KREUZBERG_API_KEY"
API_URL_ENV = "KREUZBERG_API_URL"
_SECRET_ENV = "KREUZBERG_WEBHOOK_SECRET"  # noqa: S105 - the variable's name


def _api_key(args: argparse.Namespace) -> str:
    key: str = args.api_key or os.environ.get(API_KEY_ENV, "")
    if not key:
        raise UsageError(f"no API key: set {API_KEY_ENV} or pass --api-key")
    return key


def _port(value: str) -> int:
    port = non_negative_int(value)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (0-65535): {value!r}")
    return port


def _retry_after(value: str) -> int | str:
    """Whole seconds (0 and negative values included), else the header value as it is (an HTTP date)."""
    try:
        return int(value)
    except ValueError:
        return value


def _cmd_emulate(args: argparse.Namespace, io: Any) -> int:
    from ..emulator import Emulator, Faults  # standard library only, but not needed by the other commands

    secret = args.webhook_secret or (os.environ.get(_SECRET_ENV) if args.webhook_url else None)
    try:
        extractor = None
        if args.extractor == "kreuzberg":
            from ..emulator.extract import kreuzberg_extractor

            extractor = kreuzberg_extractor()
        faults = Faults(
            drop=args.drop,
            duplicate=args.duplicates,
            concurrent=args.concurrent,
            api_errors=args.api_errors,
            slow=args.slow,
            slow_seconds=args.slow_seconds,
            retry_after=args.retry_after,
        )
        emulator = Emulator(
            _api_key(args),
            host=args.host,
            port=args.port,
            webhook_url=args.webhook_url,
            webhook_secret=secret,
            inline_format=args.inline_format,
            job_delay=args.job_delay,
            time_scale=args.time_scale,
            failure_rate=args.fail_rate,
            faults=faults,
            seed=args.seed,
            error_style=args.error_style,
            status_case=args.status_case,
            extractor=extractor,
            read_timeout=args.read_timeout,
        )
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        emulator.start()
    except (OSError, OverflowError, ValueError, UnicodeError) as error:  # a busy port, a host that is no address
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {reason}") from None
    try:
        hook = f"; dashboard webhook -> {args.webhook_url}" if args.webhook_url else ""
        print(f"Kreuzberg Cloud emulator on {emulator.base_url}{hook} (Ctrl-C stops it)", file=io.stdout, flush=True)
        print(f"  export {API_URL_ENV}={emulator.base_url}", file=io.stdout, flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop and print the counts
            stop.wait()
    finally:
        emulator.stop()
    stats = emulator.stats
    print(
        f"{stats.jobs} jobs, {stats.api_requests} API requests ({stats.api_faults} answered 503/429 on purpose); "
        f"webhooks: {stats.webhooks_delivered} delivered, {stats.webhooks_dropped} dropped on purpose, "
        f"{stats.webhooks_lost} lost",
        file=io.stdout,
        flush=True,
    )
    return EXIT_OK


TRACKER_ENV = "KREUZBERG_TRACKER_URL"


def _load_receiver(spec: str, app_dir: str | None) -> Any:
    """The receiver named by ``module:attribute`` (as uvicorn names an app)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"APP must be module:attribute (e.g. flask_app:receiver), not {spec!r}")
    if app_dir:
        sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"cannot import {module_name!r}: {error}") from None
    receiver: Any = module
    for name in attribute.split("."):
        receiver = getattr(receiver, name, None)
    if receiver is None or not callable(getattr(receiver, "process", None)):
        raise UsageError(f"{spec!r} is not a kreuzberg_webhooks Receiver")
    return receiver


def _cmd_reconcile(args: argparse.Namespace, io: Any) -> int:
    try:
        importlib.import_module("..cloud", __package__)  # needs httpx: the [cloud] extra
    except ImportError:
        raise UsageError('reconcile needs the [cloud] extra: pip install "kreuzberg-webhooks[cloud]"') from None

    tracker_url = (
        args.tracker
        or os.environ.get(TRACKER_ENV)
        or os.environ.get("KREUZBERG_REDIS_URL")
        or os.environ.get("KREUZBERG_STORE_URL")
    )
    if not tracker_url:
        raise UsageError(f"no tracker: pass --tracker URL or set {TRACKER_ENV} (the app's replay-store URL works)")
    receiver = _load_receiver(args.app, args.app_dir)
    try:
        return _reconcile_passes(args, io, receiver, tracker_url)
    except StoreUnavailable as error:  # the tracker is down or unreachable: a transient failure, one line
        print(f"reconcile: {error}", file=io.stderr, flush=True)
        return EXIT_FAILED


def _reconcile_passes(args: argparse.Namespace, io: Any, receiver: Any, tracker_url: str) -> int:
    from ..cloud import JobsAPIError, JobsClient, Reconciler, open_tracker

    try:
        tracker = open_tracker(tracker_url)
        client = JobsClient(args.api_key, args.api_url)
        reconciler = Reconciler(
            receiver,
            client,
            tracker,
            scope=args.scope,
            grace=args.grace,
            concurrency=args.concurrency,
            observe=False,
            max_age=args.max_age,
            not_found_grace=args.not_found_grace,
        )
    except ConfigurationError as error:
        raise UsageError(str(error)) from None
    failed = False
    with client:
        while True:
            try:
                report = reconciler.run_once()
            except JobsAPIError as error:  # a bad key ends the pass: every job would fail the same way
                print(f"reconcile: {error}", file=io.stderr, flush=True)
                return EXIT_FAILED
            print(report.summary(), file=io.stdout, flush=True)
            for job_id, reason in report.failed:
                print(f"  failed {job_id}: {reason}", file=io.stdout, flush=True)
            for job_id, reason in report.abandoned:
                print(f"  given up {job_id}: {reason}", file=io.stdout, flush=True)
            failed = failed or bool(report.failed) or bool(report.abandoned)
            if args.interval is None:
                break
            time.sleep(args.interval)
    return EXIT_FAILED if failed else EXIT_OK


def add_cloud_commands(commands: Any, prog: str) -> None:
    """Add ``emulate`` and ``reconcile`` to the command line's subparsers."""
    reconcile = commands.add_parser(
        "reconcile",
        help="dispatch tracked jobs whose webhook never came (for cron)",
        description=paragraphs(
            "Check every job the app tracked that no webhook closed within the grace period: one "
            "GET /v1/jobs/{id} each, and every terminal one goes through the app's receiver "
            "(receiver.process), whose replay store keeps each job's handlers to once. APP names the "
            "receiver as module:attribute. Needs the [cloud] extra. Exits 1 when a job failed "
            "permanently (404 after --not-found-grace, 400), was given up after --max-age, or the API key is refused."
        ),
        epilog=f"""examples:
  export {API_KEY_ENV}=... {API_URL_ENV}=https://api.kreuzberg.dev
  {prog} reconcile --app-dir examples flask_app:receiver --tracker sqlite:///kreuzberg-webhooks.sqlite3
  {prog} reconcile myapp.hooks:receiver --tracker redis://localhost:6379/0 --interval 60""",
        formatter_class=Formatter,
    )
    reconcile.add_argument("app", metavar="APP", help="the receiver, module:attribute")
    reconcile.add_argument("--app-dir", metavar="DIR", help="import APP from this directory")
    reconcile.add_argument(
        "--tracker",
        metavar="URL",
        help=f"sqlite:///, redis://, postgresql://, django:// (default: ${TRACKER_ENV}, else the store's)",
    )
    reconcile.add_argument(
        "--api-url", metavar="URL", help=f"default: ${API_URL_ENV}, else https://api.kreuzberg.dev (the vendor's)"
    )
    reconcile.add_argument("--api-key", metavar="KEY", help=f"default: ${API_KEY_ENV}")
    reconcile.add_argument("--scope", default="", help="the events' dedupe scope (a project id with a resolver)")
    reconcile.add_argument(
        "--grace", type=positive_float, default=900.0, metavar="SECONDS", help="wait after tracking (default: 900)"
    )
    reconcile.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="default: 8")
    reconcile.add_argument(
        "--max-age",
        type=positive_float,
        default=86400.0,
        metavar="SECONDS",
        help="give up on a job still not finished this long after tracking (default: 86400)",
    )
    reconcile.add_argument(
        "--not-found-grace",
        type=non_negative_float,
        default=300.0,
        metavar="SECONDS",
        help="a 404 this soon after tracking is checked again (default: 300)",
    )
    reconcile.add_argument(
        "--interval", type=positive_float, metavar="SECONDS", help="run a pass every SECONDS (default: one pass)"
    )
    reconcile.set_defaults(run=_cmd_reconcile)

    emulate = commands.add_parser(
        "emulate",
        help="run a local Kreuzberg Cloud (jobs API and webhooks)",
        description=paragraphs(
            "Run a local Kreuzberg Cloud on 127.0.0.1: POST /v1/extract, GET /v1/jobs/{id}, GET /v1/jobs/{id}/result, "
            "GET /v1/jobs and DELETE /v1/jobs/{id}, behind an API key, for the vendor's own clients too. Jobs finish "
            "after --job-delay seconds with the uploaded text as their content (--extractor kreuzberg: what the "
            "kreuzberg library reads); "
            "their webhooks go to --webhook-url (the dashboard's small event, signed sha256=) and to the webhook "
            "block of each request, on the sender's retry schedule (5 s, 30 s, 5 min, 5 min; times --time-scale). "
            "Faults are fractions between 0 and 1. The API key and secrets never appear in any output."
        ),
        epilog=f"""examples:
  export {API_KEY_ENV}=dev-key
  {prog} emulate --port 8400 --webhook-url http://127.0.0.1:8000/webhooks/kreuzberg
  {prog} emulate --drop 0.4 --duplicates 0.2 --api-errors 0.1 --time-scale 0.01""",
        formatter_class=Formatter,
    )
    emulate.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    emulate.add_argument("--port", type=_port, default=8400, help="default: %(default)s (0: any free)")
    emulate.add_argument("--api-key", metavar="KEY", help=f"the API key clients must send (default: ${API_KEY_ENV})")
    hooks = emulate.add_argument_group("webhooks")
    hooks.add_argument("--webhook-url", type=http_url, metavar="URL", help="the project's dashboard webhook")
    hooks.add_argument("--webhook-secret", metavar="SECRET", help=f"its secret (default: ${_SECRET_ENV})")
    hooks.add_argument(
        "--inline-format",
        choices=["event", "document"],
        default="event",
        help="what a request's own webhook block gets: the WebhookEvent signed t=,v1= (default) or the job document",
    )
    emulate.add_argument(
        "--extractor",
        choices=["text", "kreuzberg"],
        default="text",
        help="text: the upload decoded (default); kreuzberg: the kreuzberg library (the [kreuzberg] extra)",
    )
    timing = emulate.add_argument_group("timing")
    timing.add_argument("--job-delay", type=non_negative_float, default=0.5, metavar="SECONDS", help="default: 0.5")
    timing.add_argument(
        "--time-scale", type=positive_float, default=1.0, metavar="FACTOR", help="scales the retry schedule"
    )
    timing.add_argument(
        "--read-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="an unfinished request body gets 408, an idle connection is closed (default: 10)",
    )
    faults = emulate.add_argument_group("faults")
    faults.add_argument("--fail-rate", type=rate, default=0.0, metavar="RATE", help="jobs that end failed")
    faults.add_argument("--drop", type=rate, default=0.0, metavar="RATE", help="webhooks never sent")
    faults.add_argument("--duplicates", type=rate, default=0.0, metavar="RATE", help="webhooks sent twice")
    faults.add_argument("--concurrent", type=rate, default=0.0, metavar="RATE", help="first tries sent twice at once")
    faults.add_argument("--api-errors", type=rate, default=0.0, metavar="RATE", help="API requests answered 503/429")
    faults.add_argument("--slow", type=rate, default=0.0, metavar="RATE", help="API requests answered slowly")
    faults.add_argument("--slow-seconds", type=non_negative_float, default=1.0, metavar="SECONDS", help="default: 1")
    faults.add_argument(
        "--retry-after",
        type=_retry_after,
        default=1,
        metavar="VALUE",
        help="429's Retry-After: seconds (0 or negative too) or an HTTP date (default: 1)",
    )
    faults.add_argument("--seed", type=int, metavar="N", help="repeat the same faults")
    api = emulate.add_argument_group("API flavour")
    api.add_argument("--error-style", choices=["envelope", "flat"], default="envelope", help="error bodies")
    api.add_argument("--status-case", choices=["lower", "upper"], default="lower", help="upper: as the Pro API")
    emulate.set_defaults(run=_cmd_emulate)
