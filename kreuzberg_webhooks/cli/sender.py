"""The sender's commands: ``sign``, ``verify``, ``send-test`` and ``simulate``.

Standard library only. A secret never appears in any output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from .. import __version__
from ..events import JobEvent, JobStatus, WebhookEvent, event_type_for
from ..exceptions import ConfigurationError, WebhookError
from ..protocol.signing import Sha256Signature, SignatureScheme, TimestampedSignature
from ..protocol.verify import DEFAULT_MAX_BODY_SIZE, DEFAULT_SIGNATURE_HEADER, ReplayWindow, Verifier
from ..testing import (
    EVENT_TYPES,
    SCHEMES,
    crawl_job_document_payload,
    default_scheme,
    job_document_payload,
    job_event_payload,
    payload_for_event,
    sign_with,
    statuses_for_event,
    webhook_event_payload,
)
from ..testing.simulate import Simulation, redact_url
from .helpers import (
    EXIT_FAILED,
    EXIT_OK,
    PROG,
    SECRET_ENV,
    CommandError,
    CommandIO,
    Formatter,
    UsageError,
    at_most,
    header_name,
    http_url,
    non_negative_float,
    non_negative_int,
    paragraphs,
    positive_float,
    positive_int,
    rate,
    unix_time,
)

__all__ = ["add_sender_commands"]

#: A well-formed wrong secret for ``send-test --wrong-signature``.
_WRONG_SECRET = "kreuzberg-webhooks-send-test-wrong-secret-0000"  # noqa: S105 - deliberately wrong, not a secret
_STATUSES = [status.value for status in JobStatus]
_MAX_SHOWN_ANSWER = 2000
_DEFAULT_WINDOW = ReplayWindow()
_SHAPES = ["event", "document", "crawl", "webhook"]
_ANY_2XX = (200, 299)
#: --no-window: a window wider than any capture (a ReplayWindow is finite by construction).
_NO_WINDOW = ReplayWindow(2.0**40, 2.0**40)

#: Bounds of the sender's numbers: beyond them a run cannot work (threads, memory, the OS's timers).
MAX_EVENTS = 1_000_000
MAX_CONCURRENCY = 1024
MAX_TIMEOUT = 86_400.0
MAX_TIME_SCALE = 1000.0
#: The largest t= a receiver reads as unix seconds (12 digits); a longer one is refused as malformed.
MAX_TIMESTAMP = 999_999_999_999
#: An ``event`` name for --event: the vendor's are ``family.outcome``; an unknown one is sent as given.
_EVENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")


# -- shared input handling -----------------------------------------------------------------


def _read_body(path: str | None, stdin: IO[bytes]) -> bytes:
    if path is None or path == "-":
        if hasattr(stdin, "isatty") and stdin.isatty():
            raise UsageError("no body: give a FILE or pipe the body on stdin")
        return stdin.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path!r}: {error.strerror or type(error).__name__}") from None


def _secrets(args: argparse.Namespace, *, required: bool = True) -> list[str]:
    values: list[str] = []
    given = args.secret
    if isinstance(given, str):
        values.append(given)
    elif given:
        values.extend(given)
    files = [args.secret_file] if isinstance(args.secret_file, str) else args.secret_file or []
    for path in files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not readable UTF-8 text"
            raise UsageError(f"cannot read the secret file {path!r}: {reason}") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise UsageError(f"the secret file {path!r} is empty")
        values.extend(lines)
    if not values and os.environ.get(SECRET_ENV):
        values.append(os.environ[SECRET_ENV])
    if any(not value for value in values):
        raise UsageError("the webhook secret is empty")
    if required and not values:
        raise UsageError(f"no webhook secret: set {SECRET_ENV}, or pass --secret or --secret-file")
    return values


def _expected_status(value: str) -> tuple[int, int]:
    """``2xx``-style classes or one status code, as an inclusive range."""
    text = value.strip().lower()
    if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
        low = int(text[0]) * 100
        return low, low + 99
    if text.isdigit() and text.isascii() and 100 <= int(text) <= 599:
        return int(text), int(text)
    raise argparse.ArgumentTypeError(f"expected a status code (401) or a class (2xx, 4xx), got {value!r}")


def _describe_expected(expected: tuple[int, int]) -> str:
    low, high = expected
    return str(low) if low == high else f"{low // 100}xx"


def _field(value: str) -> tuple[str, Any]:
    name, sep, raw = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {value!r}")
    try:
        return name, json.loads(raw, parse_constant=_not_json)
    except ValueError:
        return name, raw  # not JSON (NaN and Infinity are not either): a plain string


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


@contextlib.contextmanager
def _warnings_as_lines(stderr: IO[str]) -> Iterator[None]:
    """Show warnings (a weak secret, an insecure option) as one line each, without a source line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        print(f"{PROG}: warning: {warning.message}", file=stderr)


# -- the commands ----------------------------------------------------------------------------


def _cmd_sign(args: argparse.Namespace, io: CommandIO) -> int:
    if args.timestamp is not None and args.scheme != "t-v1":
        raise UsageError("--timestamp is the t= of a t-v1 signature: add --scheme t-v1")
    secret = _secrets(args)[0]
    body = _read_body(args.file, io.stdin)
    value = sign_with(args.scheme, body, secret, signed_at=args.timestamp)
    print(f"{args.header}: {value}" if args.with_name else value, file=io.stdout)
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace, io: CommandIO) -> int:
    secrets = _secrets(args)
    body = _read_body(args.file, io.stdin)
    window = _NO_WINDOW if args.no_window else ReplayWindow(args.max_age, args.max_future)
    schemes: list[SignatureScheme] = []
    if args.scheme in (None, "sha256"):
        schemes.append(Sha256Signature())
    if args.scheme in (None, "t-v1"):
        # --no-window lifts the t= window too: a capture's t is as old as its body.
        schemes.append(TimestampedSignature(window) if args.no_window else TimestampedSignature())
    with _warnings_as_lines(io.stderr):
        try:
            verifier = Verifier(secrets, window=window, max_body_size=args.max_body_size, schemes=schemes)
        except ConfigurationError as error:
            raise UsageError(str(error)) from None
    try:
        event = verifier.verify(body, {verifier.header: args.signature}, now=args.now)
    except WebhookError as error:
        print(
            f"{PROG} verify: rejected: {error.reason} ({error.detail}) - a receiver answers {error.status_code}",
            file=io.stderr,
        )
        return EXIT_FAILED
    if isinstance(event, JobEvent):
        where = f"event_id={event.event_id} job_id={event.job_id} attempt={event.attempt_count}"
    elif isinstance(event, WebhookEvent):
        results = "inline" if event.has_inline_results else ("fetch" if event.must_fetch_results else "none")
        where = f"event_id={event.event_id or '-'} job_id={event.job_id} results={results} (WebhookEvent)"
    else:
        event_id = getattr(event, "event_id", None)
        ids = [f"event_id={event_id}"] if event_id else []
        ids += [f"job_id={event.job_id}"] if event.job_id is not None else []
        where = f"{' '.join(ids)} ({type(event).__name__})"
    print(f"ok: {event.type} status={getattr(event, 'status', '-')} {where}", file=io.stdout)
    return EXIT_OK


def _event_name(value: str) -> str:
    if value != "all" and not _EVENT_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not an event name: {value!r} (e.g. crawl.completed)")
    return value


def _check_event_status(event: str, status: str | None) -> None:
    allowed = statuses_for_event(event)
    if status is not None and allowed and status not in allowed:
        raise UsageError(f"--event {event} does not carry --status {status}: expected {' or '.join(allowed)}")


def _build_payload(
    shape: str | None, status: str | None, fields: Sequence[tuple[str, Any]], event: str | None = None
) -> dict[str, Any]:
    overrides = dict(fields)
    if event is not None:
        if shape not in (None, "webhook"):
            raise UsageError(f"--event sends a webhook of the event's family: it does not go with --shape {shape}")
        _check_event_status(event, status)
        return payload_for_event(event, status=status, **overrides)
    shape = shape or "event"
    status = status or "completed"
    if shape == "document":
        return job_document_payload(status=status, **overrides)
    if shape == "crawl":
        return crawl_job_document_payload(status=status, **overrides)
    if shape == "webhook":
        overrides.setdefault("event", event_type_for(status))
        return webhook_event_payload(**overrides)
    if status == "failed":
        overrides.setdefault("error_message", "extraction failed: OCR timeout")
    return job_event_payload(status=status, **overrides)


def _expand_event(name: str) -> tuple[str, ...]:
    return EVENT_TYPES if name == "all" else (name,)


def _describe_payload(payload: dict[str, Any], shape: str | None, status: str | None) -> str:
    """``event status=failed``, ``webhook event=job.failed``, ``crawl event=crawl.completed status=…``."""
    event = payload.get("event")
    if event is None:
        return f"{shape or 'event'} status={payload.get('status', status)}"
    family = str(event).split(".", 1)[0] if str(event) in EVENT_TYPES else "unknown"
    label = {"job": "webhook", "auto_tune": "auto-tune"}.get(family, family)
    extra = f" status={payload['status']}" if family == "crawl" else ""
    return f"{label} event={event}{extra}"


def _cmd_send_test(args: argparse.Namespace, io: CommandIO) -> int:
    secrets = [] if args.unsigned else _secrets(args)
    if args.event == "all":
        raise UsageError("--event all is for simulate: send-test sends one event")
    payload = _build_payload(args.shape, args.status, args.field, args.event)
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"kreuzberg-webhook/send-test ({PROG} {__version__})"}
    if "event_id" in payload and "event" not in payload:
        headers["X-Idempotency-Key"] = str(payload["event_id"])
    scheme = args.scheme or default_scheme(payload)
    if args.wrong_signature:
        headers[args.header] = sign_with(scheme, body, _WRONG_SECRET)
    elif secrets:
        headers[args.header] = sign_with(scheme, body, secrets[0])
    # A negative check expects the refusal: exit 0 when the endpoint refuses
    # a forgery, 1 when it accepts one (a CI gate), unless --expect says otherwise.
    forged = "wrongly signed" if args.wrong_signature else "unsigned" if args.unsigned else None
    expected = args.expect or ((401, 401) if forged else _ANY_2XX)
    ident = f"event_id={payload['event_id']}" if "event_id" in payload else f"job_id={payload.get('id')}"
    kind = _describe_payload(payload, args.shape, args.status)
    print(f"POST {redact_url(args.url)}  {kind}  {scheme}  {ident}", file=io.stdout)
    if args.show_body:
        print(body.decode(), file=io.stdout)
    answer = io.transport(args.url, body, headers, args.timeout)
    if answer.status is None:
        raise CommandError(
            f"no answer from {redact_url(args.url)}: {answer.error} after {answer.latency * 1000:.0f} ms"
        )
    print(f"{answer.status} {answer.reason}  {answer.latency * 1000:.1f} ms", file=io.stdout)
    text = answer.body.decode("utf-8", "replace")
    if text:
        print(text if len(text) <= _MAX_SHOWN_ANSWER else text[:_MAX_SHOWN_ANSWER] + " [...]", file=io.stdout)
    wanted = _describe_expected(expected)
    if expected[0] <= answer.status <= expected[1]:
        if expected != _ANY_2XX:
            refused = f"the {forged} delivery was refused" if forged else "answered"
            print(f"ok: {refused} as expected ({wanted})", file=io.stdout)
        return EXIT_OK
    if 200 <= answer.status < 300 and expected[0] >= 300:
        what = f"a {forged} delivery" if forged else "a delivery it should refuse"
        raise CommandError(f"expected {wanted}, got {answer.status}: the endpoint ACCEPTED {what}")
    raise CommandError(f"expected {wanted}, got {answer.status}")


def _cmd_simulate(args: argparse.Namespace, io: CommandIO) -> int:
    secrets = [] if args.unsigned else _secrets(args)
    if args.concurrent_duplicates > args.events:
        raise UsageError(
            f"--concurrent-duplicates ({args.concurrent_duplicates}) is more than --events ({args.events})"
        )
    event_types: tuple[str, ...] | None = None
    if args.event:
        if args.shape not in (None, "webhook"):
            raise UsageError(
                f"--event sends webhooks of the events' families: it does not go with --shape {args.shape}"
            )
        event_types = tuple(dict.fromkeys(name for given in args.event for name in _expand_event(given)))
        for event in event_types:
            _check_event_status(event, args.status)
    simulation = Simulation(
        args.url,
        secrets[0] if secrets else None,
        events=args.events,
        concurrency=args.concurrency,
        time_scale=args.time_scale,
        timeout=args.timeout,
        duplicates=args.duplicates,
        concurrent_duplicates=args.concurrent_duplicates,
        shape=args.shape or "event",
        event_types=event_types,
        status=args.status,
        seed=args.seed,
        scheme=args.scheme,
        header=args.header,
        user_agent=f"kreuzberg-webhook/simulate ({PROG} {__version__})",
        transport=io.transport,
    )
    report = simulation.run(progress=None if args.no_progress else io.stderr)
    print(report.render(), file=io.stdout)
    return EXIT_FAILED if report.lost else EXIT_OK


# -- the commands' arguments --------------------------------------------------------------


def add_sender_commands(commands: Any, prog: str) -> None:
    """Add sign, verify, send-test and simulate to *commands* (the parser's sub-parsers)."""

    def secret_options(command: argparse.ArgumentParser, *, several: bool = False) -> None:
        group = command.add_argument_group("secret")
        if several:
            group.add_argument(
                "--secret",
                action="append",
                metavar="SECRET",
                help=f"a webhook secret; repeat it for rotation (default: ${SECRET_ENV})",
            )
            group.add_argument(
                "--secret-file",
                action="append",
                metavar="PATH",
                help="read secrets from a file, one a line (repeatable)",
            )
        else:
            group.add_argument("--secret", metavar="SECRET", help=f"the webhook secret (default: ${SECRET_ENV})")
            group.add_argument("--secret-file", metavar="PATH", help="read the secret from a file")

    def scheme_option(command: argparse._ActionsContainer, default: str | None, text: str) -> None:
        command.add_argument("--scheme", choices=SCHEMES, default=default, help=text)

    def header_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--header",
            type=header_name,
            default=DEFAULT_SIGNATURE_HEADER,
            metavar="NAME",
            help="the signature header's name (default: %(default)s)",
        )

    # sign
    sign_cmd = commands.add_parser(
        "sign",
        help="print the signature header value for a body",
        description=paragraphs(
            "Print the X-Webhook-Signature value for a body, read from FILE or stdin exactly as it is, "
            "byte for byte: sha256=<hex HMAC-SHA256 of the body> (dashboard webhooks, the default), or "
            "with --scheme t-v1 t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body> (inline webhooks)."
        ),
        epilog=f"""examples:
  {prog} sign body.json
  {prog} sign webhook_event.json --scheme t-v1
  {prog} sign webhook_event.json --scheme t-v1 --timestamp 1764651600
  printf '{{"event_id": "01J..."}}' | {prog} sign
  curl -H "X-Webhook-Signature: $({prog} sign body.json)" --data-binary @body.json URL""",
        formatter_class=Formatter,
    )
    sign_cmd.add_argument("file", nargs="?", metavar="FILE", help="the body (default: stdin; '-' for stdin)")
    sign_cmd.add_argument(
        "--with-name", action="store_true", help="print the whole header line, 'X-Webhook-Signature: sha256=...'"
    )
    scheme_option(sign_cmd, "sha256", "the signature format (default: %(default)s)")
    sign_cmd.add_argument(
        "--timestamp",
        type=at_most(non_negative_int, MAX_TIMESTAMP),
        metavar="UNIX",
        help="the t= of a t-v1 signature (default: now)",
    )
    header_option(sign_cmd)
    secret_options(sign_cmd)
    sign_cmd.set_defaults(run=_cmd_sign)

    # verify
    verify_cmd = commands.add_parser(
        "verify",
        help="check a body and its signature as a receiver would",
        description=paragraphs(
            "Verify a body and its signature header value with the same checks a receiver runs: "
            "signature, JSON shape, replay window. Prints 'ok' with the event type and id and exits 0; "
            "otherwise prints the reason code (signature_mismatch, stale_timestamp, missing_field...) "
            "and the status a receiver would answer, and exits 1. Both signature formats verify "
            "(sha256=<hex>, and t=<unix seconds>,v1=<hex> whose t must be within 5 minutes), "
            "and every payload shape: the small event, the job documents, and the webhooks of every family "
            "(job, crawl, auto-tune, and an event this version does not know, by its event_id)."
        ),
        epilog=f"""examples:
  {prog} verify body.json --signature sha256=4f2c...
  {prog} verify webhook_event.json --signature "t=1764651600,v1=9ab0..." --now 1764651660
  {prog} verify body.json --signature "$SIG" --secret-file old.key --secret-file new.key
  {prog} verify captured.json --signature "$SIG" --no-window     # a capture from last week""",
        formatter_class=Formatter,
    )
    verify_cmd.add_argument("file", nargs="?", metavar="FILE", help="the body (default: stdin; '-' for stdin)")
    verify_cmd.add_argument(
        "--signature",
        required=True,
        metavar="VALUE",
        help="the signature header's value: sha256=<64 hex> or t=<unix seconds>,v1=<64 hex>",
    )
    scheme_option(verify_cmd, None, "accept only this format (default: both, as a receiver does)")
    window = verify_cmd.add_argument_group("replay window")
    window.add_argument(
        "--max-age",
        type=positive_float,
        default=_DEFAULT_WINDOW.max_age,
        metavar="SECONDS",
        help="oldest timestamp accepted (default: %(default)g, 24 h)",
    )
    window.add_argument(
        "--max-future",
        type=non_negative_float,
        default=_DEFAULT_WINDOW.max_future,
        metavar="SECONDS",
        help="clock skew accepted ahead of now (default: %(default)g)",
    )
    window.add_argument(
        "--no-window", action="store_true", help="skip the timestamp checks, the body's and t='s (old captures)"
    )
    window.add_argument("--now", type=unix_time, metavar="UNIX", help="check the window at this unix time")
    verify_cmd.add_argument(
        "--max-body-size",
        type=positive_int,
        default=DEFAULT_MAX_BODY_SIZE,
        metavar="BYTES",
        help="largest body accepted (default: %(default)d)",
    )
    secret_options(verify_cmd, several=True)
    verify_cmd.set_defaults(run=_cmd_verify)

    # send-test
    send_cmd = commands.add_parser(
        "send-test",
        help="post one realistic signed delivery to your endpoint",
        description=paragraphs(
            "The dashboard's 'Send test' button, on your own machine: post one realistic, signed "
            "delivery to URL and print the status, the answer and the latency. Exits 0 when the answer is the "
            "expected one: a 2xx, or 401 for --wrong-signature and --unsigned (a forgery must be refused), or "
            "what --expect says; exits 1 otherwise, naming an endpoint that accepted a forgery."
        ),
        epilog=f"""examples:
  {prog} send-test http://127.0.0.1:8000/webhooks/kreuzberg
  {prog} send-test URL --status failed --field error_message='"OCR timeout"'
  {prog} send-test URL --shape document                # the per-request webhook's job document
  {prog} send-test URL --shape webhook                 # the inline webhook's WebhookEvent, signed t=,v1=
  {prog} send-test URL --shape event --scheme t-v1     # the small event in the other signature format
  {prog} send-test URL --event crawl.completed --status partial_success   # a crawl webhook
  {prog} send-test URL --event auto_tune.failed        # an auto-tune webhook
  {prog} send-test URL --event document.indexed        # an event this version does not know
  {prog} send-test URL --wrong-signature               # exits 0 on 401: forgeries must be refused
  {prog} send-test URL --field timestamp=0 --expect 400  # a stale capture must be refused""",
        formatter_class=Formatter,
    )
    send_cmd.add_argument("url", type=http_url, metavar="URL", help="the receiver's endpoint")
    payload = send_cmd.add_argument_group("payload")
    payload.add_argument(
        "--event",
        type=_event_name,
        metavar="EVENT",
        help="a webhook of EVENT's family, signed t=,v1=: job.completed, job.failed, job.cancelled (WebhookEvent), "
        "crawl.completed, crawl.failed (CrawlWebhookEvent), auto_tune.completed, auto_tune.failed "
        "(AutoTuneWebhookEvent), or any other name: an event this version does not know",
    )
    payload.add_argument(
        "--status",
        choices=_STATUSES,
        metavar="STATUS",
        help="the job status (default: completed; with --event, the one it implies: "
        "crawl.completed takes partial_success too)",
    )
    payload.add_argument(
        "--shape",
        choices=_SHAPES,
        help="the small event (default), a job document, a crawl-job document, or the inline webhook's WebhookEvent",
    )
    payload.add_argument(
        "--field",
        type=_field,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a payload field; VALUE is JSON if it parses, else a string (repeatable)",
    )
    payload.add_argument("--show-body", action="store_true", help="print the body sent")
    signing = send_cmd.add_argument_group("signature")
    signing.add_argument("--unsigned", action="store_true", help="send no signature header")
    signing.add_argument("--wrong-signature", action="store_true", help="sign with a wrong secret")
    scheme_option(signing, None, "the signature format (default: t-v1 for --event and --shape webhook, else sha256)")
    header_option(send_cmd)
    send_cmd.add_argument(
        "--expect",
        type=_expected_status,
        metavar="STATUS",
        help="the answer that counts as success: a code (401) or a class (2xx, 4xx); "
        "default 2xx, or 401 with --wrong-signature or --unsigned",
    )
    send_cmd.add_argument(
        "--timeout",
        type=at_most(positive_float, MAX_TIMEOUT, " seconds"),
        default=30.0,
        metavar="SECONDS",
        help="default: %(default)g",
    )
    secret_options(send_cmd)
    send_cmd.set_defaults(run=_cmd_send_test)

    # simulate
    simulate_cmd = commands.add_parser(
        "simulate",
        help="deliver many events like the real sender, retries included",
        description=paragraphs(
            "Deliver events to URL the way Kreuzberg Cloud does: at-least-once, up to 5 attempts "
            "with a backoff of 5 s, 30 s, 5 min and 5 min, a 30 s time-out, a stop on 2xx and on any 4xx "
            "other than 429, a retry on 429, 5xx, time-outs and connection errors. Each attempt is re-signed: "
            "with the next attempt_count (same event_id and timestamp), and with a fresh t in the t-v1 format "
            "(--scheme, the default for --shape webhook). Ends with a table of outcomes and "
            "exits 1 if any event was lost (permanently rejected or dead-lettered)."
        ),
        epilog=f"""examples:
  {prog} simulate URL --events 100 --time-scale 0.01        # the whole schedule in seconds
  {prog} simulate URL --duplicates 0.2 --concurrent-duplicates 5
  {prog} simulate URL --event all --duplicates 0.5        # every family the vendor sends
  {prog} simulate URL --events 1000 --concurrency 16 --time-scale 0.001 --timeout 2""",
        formatter_class=Formatter,
    )
    simulate_cmd.add_argument("url", type=http_url, metavar="URL", help="the receiver's endpoint")
    load = simulate_cmd.add_argument_group("load")
    load.add_argument(
        "--events",
        type=at_most(positive_int, MAX_EVENTS),
        default=20,
        metavar="N",
        help=f"events to send (default: 20, at most {MAX_EVENTS:,})",
    )
    load.add_argument(
        "--concurrency",
        type=at_most(positive_int, MAX_CONCURRENCY),
        default=4,
        metavar="N",
        help=f"events in flight at once (default: 4, at most {MAX_CONCURRENCY})",
    )
    load.add_argument(
        "--duplicates",
        type=rate,
        default=0.0,
        metavar="RATE",
        help="fraction of delivered events delivered once more (0-1, default: 0)",
    )
    load.add_argument(
        "--concurrent-duplicates",
        type=at_most(non_negative_int, MAX_EVENTS),
        default=0,
        metavar="K",
        help="events whose first attempt is sent twice at the same moment (default: 0)",
    )
    timing = simulate_cmd.add_argument_group("timing")
    timing.add_argument(
        "--time-scale",
        type=at_most(positive_float, MAX_TIME_SCALE),
        default=1.0,
        metavar="FACTOR",
        help="multiply the backoff and the time-out (default: 1, the real schedule; 0.01: seconds; at most 1000)",
    )
    timing.add_argument(
        "--timeout",
        type=at_most(positive_float, MAX_TIMEOUT, " seconds"),
        metavar="SECONDS",
        help="per-request time-out (default: 30 s scaled, >= 1 s; at most a day)",
    )
    payload = simulate_cmd.add_argument_group("payload")
    payload.add_argument(
        "--event",
        type=_event_name,
        action="append",
        metavar="EVENT",
        help="send webhooks of EVENT's family (repeatable: a mix; 'all': every event the vendor sends, "
        "job, crawl and auto-tune)",
    )
    payload.add_argument("--status", choices=_STATUSES, metavar="STATUS", help="every event's status (default: a mix)")
    payload.add_argument("--shape", choices=_SHAPES, help="default: event")
    payload.add_argument("--seed", type=int, metavar="N", help="repeat the same statuses and injected duplicates")
    simulate_cmd.add_argument("--unsigned", action="store_true", help="send no signature header")
    scheme_option(
        simulate_cmd, None, "the signature format (default: t-v1 for --event and --shape webhook, else sha256)"
    )
    simulate_cmd.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    header_option(simulate_cmd)
    secret_options(simulate_cmd)
    simulate_cmd.set_defaults(run=_cmd_simulate)
