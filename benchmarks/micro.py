"""Rows 1-4: in-process verification against the hand-written floor and the peers."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kreuzberg_webhooks import MemoryStore, Receiver, Verifier, WebhookError
from kreuzberg_webhooks.protocol.keys import delivery_key
from kreuzberg_webhooks.protocol.signing import verify_signature

from . import deliveries
from .timing import Candidate, Timings, interleave

_KEY = deliveries.SECRET.encode()
PEERS = ("standardwebhooks", "svix", "stripe")


def floor(body: bytes, signature: str) -> Any:
    """The thirty hand-written lines, reduced to their cost: HMAC, compare, parse."""
    expected = "sha256=" + hmac.new(_KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise ValueError("bad signature")
    return json.loads(body)


def floor_timestamped(body: bytes, signature: str) -> Any:
    """The same hand-written lines for ``t=…,v1=…``: split the header, HMAC over ``t.`` + body, compare, parse."""
    parts = dict(part.split("=", 1) for part in signature.split(","))
    expected = hmac.new(_KEY, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(parts["v1"], expected):
        raise ValueError("bad signature")
    return json.loads(body)


def floor_signature(body: bytes, signature: str) -> None:
    expected = "sha256=" + hmac.new(_KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise ValueError("bad signature")


@dataclass(frozen=True)
class VerifyResult:
    timings: Timings
    body_size: int
    peers: tuple[str, ...]


def verify_rows(*, rounds: int, batch: int) -> VerifyResult:
    """Rows 1 and 2: *batch* distinct deliveries (new event, new job, one project), each
    verified by every library in its own signature scheme."""
    bodies = [deliveries.event_body() for _ in range(batch)]
    verifier = Verifier(deliveries.SECRET)
    ours_inputs = [(body, deliveries.ours(body)) for body in bodies]

    def ours(body: bytes, headers: Any) -> object:
        return verifier.verify(body, headers)

    candidates = {
        "floor": Candidate(floor, [(body, headers["X-Webhook-Signature"]) for body, headers in ours_inputs]),
        "ours": Candidate(ours, ours_inputs),
    }
    from standardwebhooks.webhooks import Webhook as StandardWebhook
    from stripe import Webhook as StripeWebhook
    from svix.webhooks import Webhook as SvixWebhook

    standard = StandardWebhook(deliveries.PEER_SECRET)
    svix = SvixWebhook(deliveries.PEER_SECRET)

    def svix_verify(body: bytes, headers: Any) -> object:
        svix.verify(body, headers)  # returns None: the caller parses
        return json.loads(body)

    def stripe_verify(body: bytes, header: Any) -> object:
        return StripeWebhook.construct_event(body, header, deliveries.SECRET)

    candidates["standardwebhooks"] = Candidate(
        standard.verify, [(body, deliveries.standard_webhooks(body)) for body in bodies]
    )
    candidates["svix"] = Candidate(svix_verify, [(body, deliveries.svix(body)) for body in bodies])
    candidates["stripe"] = Candidate(stripe_verify, [(body, deliveries.stripe(body)) for body in bodies])
    for candidate in candidates.values():  # every candidate accepts every delivery before it is timed
        for delivery in candidate.inputs:
            candidate.fn(*delivery)
    sizes = sorted(len(body) for body in bodies)
    return VerifyResult(interleave(candidates, rounds=rounds), sizes[len(sizes) // 2], PEERS)


def timestamped_verify_row(*, rounds: int, batch: int) -> VerifyResult:
    """Row 1 for the inline webhook's format: *batch* distinct ``WebhookEvent`` deliveries
    signed ``t=…,v1=…``, verified by a default :class:`Verifier` and by the floor."""
    bodies = [deliveries.webhook_event_body() for _ in range(batch)]
    verifier = Verifier(deliveries.SECRET)
    inputs = [(body, deliveries.timestamped(body)) for body in bodies]
    candidates = {
        "floor": Candidate(floor_timestamped, [(body, headers["X-Webhook-Signature"]) for body, headers in inputs]),
        "ours": Candidate(verifier.verify, inputs),
    }
    for candidate in candidates.values():  # both accept every delivery before they are timed
        for delivery in candidate.inputs:
            candidate.fn(*delivery)
    sizes = sorted(len(body) for body in bodies)
    return VerifyResult(interleave(candidates, rounds=rounds), sizes[len(sizes) // 2], ())


def slot_build_row(*, rounds: int, batch: int) -> Timings:
    """Row 1 slots: a ``JobEvent`` built as ``parse_job_event`` builds it (its slots' setters,
    ``_hot.slot_setter``) against the dataclass's own constructor, from the same field values."""
    from dataclasses import fields

    from kreuzberg_webhooks._hot import slot_setter
    from kreuzberg_webhooks.events import JobEvent, parse_job_event

    names = [field.name for field in fields(JobEvent)]
    setters = [slot_setter(JobEvent, name) for name in names]
    values = [
        tuple(getattr(parse_job_event(json.loads(deliveries.event_body())), name) for name in names)
        for _ in range(batch)
    ]

    event_id, job_id, project_id, status, error_message, timestamp, attempt_count, raw = setters

    def through_slots(built: Any, _: Any) -> object:  # as parse_job_event does it, setter by setter
        event = JobEvent.__new__(JobEvent)
        event_id(event, built[0])
        job_id(event, built[1])
        project_id(event, built[2])
        status(event, built[3])
        error_message(event, built[4])
        timestamp(event, built[5])
        attempt_count(event, built[6])
        raw(event, built[7])
        return event

    def through_constructor(built: Any, _: Any) -> object:
        return JobEvent(*built)

    inputs = [(built, None) for built in values]
    candidates = {
        "slots": Candidate(through_slots, inputs),
        "constructor": Candidate(through_constructor, inputs),
    }
    return interleave(candidates, rounds=rounds)


#: The limit's answers, built once: (status, body).
PROCESSED = (200, b'{"status":"processed"}')
DUPLICATE = (200, b'{"status":"duplicate"}')
IN_FLIGHT = (429, b'{"status":"in_flight"}')
HANDLER_FAILED = (500, b'{"status":"handler_error"}')


@dataclass(frozen=True)
class Limit:
    """Row 3's limit: the least a receiver with ``Receiver.handle``'s guarantees must do per delivery."""

    receive: Callable[[bytes, Any], tuple[int, bytes]]
    #: Forget every key (a fresh store, as each round of row 3 starts with).
    clear: Callable[[], None]


def limit(verifier: Verifier, handler: Callable[[Any], object], *, lease: float, retention: float) -> Limit:
    """Row 3's limit, written inline: no flow, no driver, no store class, no answer object.

    What a receiver with row 3's guarantees cannot leave out: verify (with the
    signer's scope), the delivery key, a claim under a lock (a new or expired key
    gets a token and a lease from the monotonic clock; a live one is refused:
    thread-safe, leased, tokened, exactly once per key), the handler with its
    claim held for a heartbeat to renew meanwhile, the claim released by its
    token if the handler raises, the key marked done for
    *retention* counted from completion, and an answer built beforehand. Nothing
    else: no bound on the keys kept, no log line, no observers, no handler
    look-up by event type, integer tokens.
    """
    entries: dict[str, tuple[int | None, float]] = {}  # key -> (token, or None once done; expiry)
    running: dict[tuple[str, int], None] = {}  # the claims a heartbeat would renew (its thread is not timed)
    lock = threading.Lock()
    tokens = itertools.count(1)
    verify_scoped = verifier.verify_scoped
    monotonic = time.monotonic

    def receive(body: bytes, headers: Any) -> tuple[int, bytes]:
        try:
            event, scope = verify_scoped(body, headers)
        except WebhookError as error:
            return error.status_code, b'{"status":"rejected"}'
        key = delivery_key(event, scope)
        lock.acquire()
        try:
            now = monotonic()
            entry = entries.get(key)
            if entry is not None and entry[1] > now:
                return DUPLICATE if entry[0] is None else IN_FLIGHT
            token = next(tokens)
            entries[key] = (token, now + lease)
        finally:
            lock.release()
        running[key, token] = None  # renewed by a heartbeat while the handler runs
        try:
            handler(event)
        except Exception:
            with lock:
                if entries.get(key, (None, 0.0))[0] == token:
                    del entries[key]  # released: the sender's retry is processed
            return HANDLER_FAILED
        finally:
            del running[key, token]
        lock.acquire()
        try:
            entries[key] = (None, monotonic() + retention)
        finally:
            lock.release()
        return PROCESSED

    return Limit(receive, entries.clear)


def lifecycle_row(*, rounds: int, batch: int) -> Timings:
    """Row 3: ``Receiver.handle`` (verify, claim, no-op handler, complete) vs ``verify`` on the same events,
    and the limit (:func:`limit`) in the same rounds.

    Every event is distinct, so each delivery is processed, never a duplicate;
    each round starts with an empty in-memory store (and the limit with no keys).
    """
    inputs = deliveries.unique_deliveries(batch)
    receiver = Receiver(deliveries.SECRET, store=MemoryStore(max_entries=batch + 1))

    @receiver.on()
    def no_op(event: object) -> None:
        return None

    store = receiver.store
    assert isinstance(store, MemoryStore)

    def fresh_store() -> None:
        # Emptied, not replaced: a receiver keeps its store (and the heartbeat thread that renews
        # its claims, started with the first claim held) for its life, not for 2,000 deliveries.
        store.clear()

    def lifecycle(body: bytes, headers: Any) -> object:
        outcome = receiver.handle(body, headers)
        return outcome

    first = receiver.handle(*inputs[0])
    assert first.reason == "processed", first
    verifier = receiver.verifier
    least = limit(verifier, no_op, lease=receiver.lease, retention=receiver.retention)
    assert least.receive(*inputs[0]) == PROCESSED
    candidates = {
        "verify": Candidate(verifier.verify, inputs),
        "lifecycle": Candidate(lifecycle, inputs, reset=fresh_store),
        "limit": Candidate(least.receive, inputs, reset=least.clear),
    }
    timings = interleave(candidates, rounds=rounds)
    fresh_store()
    assert all(receiver.handle(*delivery).reason == "processed" for delivery in inputs)
    # The limit did what ours did: every delivery processed once, and once only.
    least.clear()
    assert all(least.receive(*delivery) == PROCESSED for delivery in inputs)
    assert all(least.receive(*delivery) == DUPLICATE for delivery in inputs)
    return timings


def throughput_row(size: int, *, rounds: int, batch: int) -> Timings:
    """Row 4: the signature check of a large body vs ``hmac`` over the same bytes."""
    body = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    signature = deliveries.ours(body)["X-Webhook-Signature"]
    keys = (_KEY,)

    def ours(body: bytes, signature: Any) -> object:
        return verify_signature(body, signature, keys)

    candidates = {
        "hmac": Candidate(floor_signature, [(body, signature)] * batch),
        "ours": Candidate(ours, [(body, signature)] * batch),
    }
    return interleave(candidates, rounds=rounds)
