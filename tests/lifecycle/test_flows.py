"""The lifecycle's flows (``kreuzberg_webhooks.lifecycle.flows``) driven by hand: no receiver, no store, no I/O.

Each flow yields the steps it needs and is sent their results (or thrown their
errors), so every decision can be read off the steps it asks for.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import Claim, ClaimState, DeliveryReport, parse_event
from kreuzberg_webhooks.exceptions import SignatureMismatch
from kreuzberg_webhooks.lifecycle import flows
from kreuzberg_webhooks.lifecycle.flows import Delivery, Enqueue
from kreuzberg_webhooks.lifecycle.outcome import Outcome, Timings
from kreuzberg_webhooks.protocol.keys import delivery_key
from kreuzberg_webhooks.testing import job_event_payload

EVENT = parse_event(job_event_payload(now=1_800_000_000))
KEY = delivery_key(EVENT, "")
LEASE, RETENTION = 120.0, 600.0


def drive(flow: flows.Flow[Any], answers: list[Any]) -> tuple[list[flows.DeliveryStep], Any]:
    """Send *answers* in turn (an exception is thrown in); the steps the flow yielded and what it returned."""
    steps: list[flows.DeliveryStep] = []
    step = next(flow)
    for answer in answers:
        steps.append(step)
        try:
            step = flow.throw(answer) if isinstance(answer, Exception) else flow.send(answer)
        except StopIteration as stop:
            return steps, stop.value
    raise AssertionError(f"the flow asked for more: {step!r}")


def test_a_delivery_is_verified_claimed_handled_and_completed() -> None:
    reports: list[DeliveryReport] = []
    flow = flows.deliver(EVENT, "", b"{}", {}, False, LEASE, RETENTION, [reports.append], None)
    steps, outcome = drive(flow, [Claim(ClaimState.NEW, "t1"), None, None])
    assert steps == [("claim", KEY, LEASE), ("handlers", EVENT, KEY, "t1"), ("complete", KEY, "t1", RETENTION)]
    assert (outcome.status_code, outcome.reason) == (200, "processed")
    assert [(r.mode, r.reason) for r in reports] == [("endpoint", "processed")]


def test_a_refused_signature_is_answered_without_a_step() -> None:
    reports: list[DeliveryReport] = []
    outcome = flows.refused(SignatureMismatch(), "endpoint", [reports.append], None)
    assert (outcome.status_code, outcome.reason) == (401, "signature_mismatch")
    assert [(r.mode, r.reason) for r in reports] == [("endpoint", "signature_mismatch")]


def test_a_claim_that_finds_the_event_done_answers_duplicate_and_runs_nothing() -> None:
    flow = flows.deliver(EVENT, "", b"{}", {}, False, LEASE, RETENTION, (), None)
    steps, outcome = drive(flow, [Claim(ClaimState.DONE)])
    assert steps == [("claim", KEY, LEASE)]
    assert outcome.duplicate


def test_a_handler_error_releases_the_claim_and_answers_500() -> None:
    flow = flows.handle_trusted(EVENT, "", "inbox", LEASE, RETENTION, (), None)
    failure = RuntimeError("boom")
    steps, outcome = drive(flow, [Claim(ClaimState.NEW, "t"), failure, None])
    assert steps[-1] == ("release", KEY, "t")
    assert (outcome.status_code, outcome.reason, outcome.error) == (500, "handler_error", failure)


def test_a_store_outage_at_mark_done_is_tried_again_after_each_delay() -> None:
    flow = flows.handle_trusted(EVENT, "", "inbox", LEASE, RETENTION, (), None)
    down = ConnectionError("down")
    steps, outcome = drive(flow, [Claim(ClaimState.NEW, "t"), None, down, None, down, None, None])
    assert steps == [
        ("claim", KEY, LEASE),
        ("handlers", EVENT, KEY, "t"),
        ("complete", KEY, "t", RETENTION),
        ("sleep", flows.COMPLETE_RETRY_DELAYS[0]),
        ("complete", KEY, "t", RETENTION),
        ("sleep", flows.COMPLETE_RETRY_DELAYS[1]),
        ("complete", KEY, "t", RETENTION),
    ]
    assert outcome.reason == "processed"


def test_inbox_mode_writes_the_delivery_and_answers_202() -> None:
    flow = flows.deliver(EVENT, "proj", b"body", {"h": "v"}, True, LEASE, RETENTION, (), None)
    steps, outcome = drive(flow, [True])
    ((what, *written),) = steps
    assert what == "enqueue"
    (enqueue,) = written
    assert isinstance(enqueue, Enqueue)
    assert (enqueue.event, enqueue.key, enqueue.scope, enqueue.body) == (
        EVENT,
        delivery_key(EVENT, "proj"),
        "proj",
        b"body",
    )
    assert (outcome.status_code, outcome.reason) == (202, "queued")


def test_guard_mode_hands_the_claimed_delivery_back_and_settles_a_2xx_as_done() -> None:
    steps, delivery = drive(flows.begin(EVENT, "", LEASE, (), None), [Claim(ClaimState.NEW, "g")])
    assert delivery == Delivery(EVENT, KEY, "g", "")
    steps, answer = drive(flows.settle(delivery, 204, None, False, RETENTION, ()), [None])
    assert answer is None
    assert steps == [("complete", KEY, "g", RETENTION)]


@pytest.mark.parametrize(("status", "error"), [(500, None), (None, RuntimeError("view failed"))])
def test_guard_mode_releases_the_claim_on_anything_but_a_2xx(status: int | None, error: Exception | None) -> None:
    delivery = Delivery(EVENT, KEY, "g")
    steps, answer = drive(flows.settle(delivery, status, error, False, RETENTION, ()), [None])
    assert steps == [("release", KEY, "g")]
    assert (answer is None) is (error is None)
    assert answer is None or (isinstance(answer, Outcome) and answer.status_code == 500)


def test_a_cancelled_guard_request_keeps_its_claim() -> None:
    reports: list[DeliveryReport] = []
    flow = flows.settle(Delivery(EVENT, KEY, "g"), None, None, True, RETENTION, [reports.append])
    with pytest.raises(StopIteration):
        next(flow)  # no store call at all: the claim is left to its lease
    assert [(r.status_code, r.reason) for r in reports] == [(499, "cancelled")]


PACKAGE = Path(__file__).resolve().parents[2] / "kreuzberg_webhooks" / "lifecycle"


@pytest.mark.parametrize("module", ["flows.py", "drivers.py", "outcome.py", "exchange.py"])
def test_the_flows_drivers_outcome_and_exchange_never_import_the_receiver(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not any(name.split(".")[-1] == "receiver" for name in imported), imported


def test_a_delivery_is_equal_by_what_was_claimed_not_by_its_timings() -> None:
    delivery = Delivery(EVENT, KEY, "g", "proj", Timings())
    assert delivery == Delivery(EVENT, KEY, "g", "proj")
    assert delivery != Delivery(EVENT, KEY, "other-token", "proj")
    assert "Timings" not in repr(delivery)
