"""Rows 1-4: in-process verification against the hand-written floor and the peers."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from kreuzberg_webhooks import MemoryStore, Receiver, Verifier
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


def lifecycle_row(*, rounds: int, batch: int) -> Timings:
    """Row 3: ``Receiver.handle`` (verify, claim, no-op handler, complete) vs ``verify`` on the same events.

    Every event is distinct, so each delivery is processed, never a duplicate;
    each round starts with an empty in-memory store.
    """
    inputs = deliveries.unique_deliveries(batch)
    receiver = Receiver(deliveries.SECRET, store=MemoryStore(max_entries=batch + 1))

    @receiver.on()
    def no_op(event: object) -> None:
        return None

    def fresh_store() -> None:
        receiver.store = MemoryStore(max_entries=batch + 1)

    def lifecycle(body: bytes, headers: Any) -> object:
        outcome = receiver.handle(body, headers)
        return outcome

    first = receiver.handle(*inputs[0])
    assert first.reason == "processed", first
    verifier = receiver.verifier
    candidates = {
        "verify": Candidate(verifier.verify, inputs),
        "lifecycle": Candidate(lifecycle, inputs, reset=fresh_store),
    }
    timings = interleave(candidates, rounds=rounds)
    fresh_store()
    assert all(receiver.handle(*delivery).reason == "processed" for delivery in inputs)
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
