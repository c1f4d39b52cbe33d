"""The lifecycle through the Receiver: keys scoped by the signer, cancellation, coroutines from sync code,
handler types, observers and trusted events."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from kreuzberg_webhooks import (
    ClaimState,
    ConfigurationError,
    Delivery,
    DeliveryReport,
    Event,
    MemoryStore,
    Receiver,
    parse_event,
)
from kreuzberg_webhooks.protocol.keys import delivery_key
from kreuzberg_webhooks.testing import job_document_payload, job_event_payload, signed_delivery
from tests.support import NOW, SECRET, Recorder

PROJECT_A = "1cbb9d72-660a-4df2-ba3d-66d83b6afaff"
PROJECT_B = "2dcc0e83-771b-4e03-8b4e-77e94c7b0b00"
SECRET_A = "tenant-a-secret-0123456789abcdef01234"
SECRET_B = "tenant-b-secret-0123456789abcdef01234"


def tenants_receiver(store: MemoryStore, recorder: Recorder) -> Receiver:
    secrets = {PROJECT_A: SECRET_A, PROJECT_B: SECRET_B}
    receiver = Receiver(lambda project: secrets.get(project or ""), store=store, clock=lambda: NOW)
    receiver.on()(recorder)
    return receiver


# -- item 2: a key is scoped by who signed the delivery ------------------------------------------


def test_one_tenant_cannot_turn_another_tenants_event_into_a_duplicate(recorder: Recorder) -> None:
    receiver = tenants_receiver(MemoryStore(), recorder)
    genuine = job_event_payload(now=NOW, project_id=PROJECT_B)
    # Tenant A signs, with its own secret, a body that copies B's event id and job id.
    copied = dict(genuine, project_id=PROJECT_A)
    forged = receiver.handle(*signed_delivery(SECRET_A, copied))
    answer = receiver.handle(*signed_delivery(SECRET_B, genuine))
    assert (forged.reason, answer.reason) == ("processed", "processed")
    assert [str(e.project_id) for e in recorder.events] == [PROJECT_A, PROJECT_B]  # type: ignore[union-attr]


def test_a_tenant_signing_another_tenants_project_id_is_refused(recorder: Recorder) -> None:
    receiver = tenants_receiver(MemoryStore(), recorder)
    outcome = receiver.handle(*signed_delivery(SECRET_A, job_event_payload(now=NOW, project_id=PROJECT_B)))
    assert (outcome.status_code, outcome.reason) == (401, "signature_mismatch")
    assert recorder.events == []


def test_the_same_job_and_type_is_handled_once_whatever_the_event_id_or_shape(recorder: Recorder) -> None:
    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW)
    receiver.on()(recorder)
    job_id = "550e8400-e29b-41d4-a716-446655440000"
    answers = [
        receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW, job_id=job_id))).reason,
        receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW, job_id=job_id))).reason,
        receiver.handle(*signed_delivery(SECRET, job_document_payload(now=NOW, id=job_id))).reason,
        receiver.handle(
            *signed_delivery(SECRET, job_document_payload(now=NOW, id=job_id, status="partial_success"))
        ).reason,
    ]
    assert answers == ["processed", "duplicate", "duplicate", "duplicate"]
    assert len(recorder.events) == 1
    failed = receiver.handle(*signed_delivery(SECRET, job_document_payload(now=NOW, id=job_id, status="failed")))
    assert failed.reason == "processed"  # another terminal type of the same job is another key


def test_the_key_is_scope_job_and_type() -> None:
    event = parse_event(job_event_payload(now=NOW, status="partial_success"))
    assert delivery_key(event, "p") == f"p|{event.job_id}|job.completed"


# -- item 4: a cancelled request never releases a claim while its code still runs -----------------


def test_a_cancelled_request_lets_its_sync_handler_finish_and_settle(recorder: Recorder) -> None:
    store = MemoryStore()
    receiver = Receiver(SECRET, store=store, clock=lambda: NOW)
    started, proceed = threading.Event(), threading.Event()

    def slow(event: Event) -> None:
        started.set()
        proceed.wait(10)
        recorder(event)

    receiver.on()(slow)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    key = parse_event(json.loads(body)).dedup_key

    async def scenario() -> tuple[str, str]:
        request = asyncio.ensure_future(receiver.handle_async(body, headers))
        await asyncio.to_thread(started.wait, 10)
        request.cancel()  # a timeout middleware, or the server, gives up on the request
        with pytest.raises(asyncio.CancelledError):
            await request
        retry_while_running = (await receiver.handle_async(body, headers)).reason
        proceed.set()
        for _ in range(500):  # the handler ends in its thread, then the flow settles in the background
            if store.claim(key, 1).state is ClaimState.DONE:
                break
            await asyncio.sleep(0.01)
        retry_after = (await receiver.handle_async(body, headers)).reason
        return retry_while_running, retry_after

    assert asyncio.run(scenario()) == ("in_flight", "duplicate")
    assert len(recorder.events) == 1


def test_guard_mode_keeps_the_claim_when_the_request_is_cancelled() -> None:
    store = MemoryStore()
    receiver = Receiver(SECRET, store=store, clock=lambda: NOW)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    delivery = receiver.begin(body, headers)
    assert isinstance(delivery, Delivery)
    assert receiver.settle(delivery, None, cancelled=True) is None
    # The route may still run in a thread: the retry waits for the lease instead of running it twice.
    assert receiver.handle(body, headers).reason == "in_flight"


# -- item 5: a coroutine handler reached through the sync path ---------------------------------------


def test_sync_handle_runs_an_async_handler_from_a_thread_with_a_running_loop(recorder: Recorder) -> None:
    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW)

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        recorder(event)

    receiver.on()(handler)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))

    async def inside_a_loop() -> str:
        return receiver.handle(body, headers).reason  # sync code called from a coroutine

    assert asyncio.run(inside_a_loop()) == "processed"
    assert len(recorder.events) == 1


def test_sync_handle_runs_an_async_handler_without_a_loop(recorder: Recorder) -> None:
    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW)

    async def handler(event: Event) -> None:
        recorder(event)

    receiver.on("job.completed")(handler)
    assert receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW))).reason == "processed"
    assert len(recorder.events) == 1


# -- item 8: handler types that never fire ----------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "hint"),
    [
        pytest.param("job.complted", "did you mean 'job.completed'", id="typo"),
        pytest.param("job.processing", "job.completed", id="not-terminal"),
        pytest.param("completed", "did you mean 'job.completed'", id="no-prefix"),
        pytest.param(42, "job.failed", id="not-a-string"),
    ],
)
def test_a_type_that_never_fires_is_refused_at_registration(event_type: Any, hint: str) -> None:
    receiver = Receiver(SECRET)
    with pytest.raises(ConfigurationError, match=hint):
        receiver.on(event_type)
    with pytest.raises(ConfigurationError, match=hint):
        receiver.add_handler(event_type, print)


def test_partial_success_handlers_run_for_partial_results_only() -> None:
    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW)
    seen: list[tuple[str, str]] = []
    receiver.on("job.partial_success")(lambda e: seen.append(("partial", str(e.status))))  # type: ignore[union-attr]
    receiver.on("job.completed")(lambda e: seen.append(("completed", str(e.status))))  # type: ignore[union-attr]
    receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW, status="partial_success")))
    receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW, status="completed")))
    assert seen == [("partial", "partial_success"), ("completed", "partial_success"), ("completed", "completed")]


# -- observers and trusted events -------------------------------------------------------------------------


def test_every_delivery_reports_once_to_the_observers(recorder: Recorder) -> None:
    reports: list[DeliveryReport] = []
    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW, on_outcome=reports.append)
    receiver.on()(recorder)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    receiver.handle(body, headers)
    receiver.handle(body, headers)
    receiver.handle(body, {"X-Webhook-Signature": "sha256=" + "0" * 64})
    receiver.exchange("GET", {})
    assert [(r.status_code, r.reason, r.duplicate) for r in reports] == [
        (200, "processed", False),
        (200, "duplicate", True),
        (401, "signature_mismatch", False),
        (405, "method_not_allowed", False),
    ]
    first = reports[0]
    assert first.event_type == "job.completed"
    assert first.mode == "endpoint"
    assert first.total_seconds >= first.verify_seconds + first.store_seconds + first.handler_seconds - 1e-6
    assert body.decode() not in repr(reports)


def test_an_observer_that_raises_changes_nothing(recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    def broken(report: DeliveryReport) -> None:
        raise RuntimeError("metrics backend down")

    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW, on_outcome=broken)
    receiver.on()(recorder)
    assert receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW))).reason == "processed"
    assert "observer raised" in caplog.text


def test_a_trusted_event_and_its_webhook_run_the_handlers_once(recorder: Recorder) -> None:
    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW)
    receiver.on()(recorder)
    payload = job_event_payload(now=NOW)
    assert receiver.process(parse_event(job_document_payload(id=payload["job_id"])), via="reconcile").ok
    assert receiver.handle(*signed_delivery(SECRET, payload)).reason == "duplicate"
    assert asyncio.run(receiver.process_async(parse_event(payload))).reason == "duplicate"
    assert len(recorder.events) == 1


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0, -1, True], ids=["inf", "nan", "zero", "neg", "bool"])
def test_a_lease_that_cannot_work_is_refused(value: float) -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        Receiver(SECRET, lease=value)


def test_an_infinite_retention_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="retention"):
        Receiver(SECRET, retention=float("inf"))


def test_sync_adapters_refuse_an_async_store_when_they_are_set_up() -> None:
    from flask import Flask

    from kreuzberg_webhooks.adapters.flask import KreuzbergWebhooks, webhook
    from kreuzberg_webhooks.adapters.wsgi import KreuzbergWebhookMiddleware

    class AsyncStore:
        async def claim(self, key: str, lease: float) -> Any:
            raise AssertionError

        async def complete(self, key: str, token: str, retention: float) -> None:
            raise AssertionError

        async def release(self, key: str, token: str) -> None:
            raise AssertionError

    async def resolver(project: str | None) -> str:
        return SECRET

    for receiver in (Receiver(SECRET, store=AsyncStore()), Receiver(resolver)):  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="async"):
            KreuzbergWebhookMiddleware(lambda environ, start: [], receiver)
        with pytest.raises(ConfigurationError, match="async"):
            webhook(receiver)
        with pytest.raises(ConfigurationError, match="async"):
            KreuzbergWebhooks(Flask(__name__), receiver=receiver)


def test_a_handler_error_outcome_carries_the_exception_and_the_report_the_scope(recorder: Recorder) -> None:
    reports: list[DeliveryReport] = []
    receiver = tenants_receiver(MemoryStore(), recorder)
    receiver.add_observer(reports.append)
    recorder.fail = True
    payload = job_event_payload(now=NOW, project_id=PROJECT_B)
    outcome = receiver.handle(*signed_delivery(SECRET_B, payload))
    assert outcome.reason == "handler_error"
    assert isinstance(outcome.error, RuntimeError)  # kept for the inbox worker, never in the body
    assert b"on purpose" not in outcome.body
    assert [(r.reason, r.scope) for r in reports] == [("handler_error", PROJECT_B)]


def test_a_webhook_closes_a_tracked_job_only_in_the_jobs_own_scope(recorder: Recorder) -> None:
    from kreuzberg_webhooks.cloud import Reconciler
    from kreuzberg_webhooks.cloud.tracking.memory import MemoryTracker

    tracker = MemoryTracker()
    receiver = tenants_receiver(MemoryStore(), recorder)
    reconciler = Reconciler(receiver, None, tracker, scope=PROJECT_B)  # type: ignore[arg-type]
    payload = job_event_payload(now=NOW, project_id=PROJECT_B)
    reconciler.track([payload["job_id"]])
    # Tenant A signs B's job id with its own secret: processed in A's scope, B's tracked job stays open.
    receiver.handle(*signed_delivery(SECRET_A, dict(payload, project_id=PROJECT_A)))
    entry = tracker.get(payload["job_id"])
    assert entry is not None
    assert not entry.closed
    receiver.handle(*signed_delivery(SECRET_B, payload))  # B's own webhook closes it
    entry = tracker.get(payload["job_id"])
    assert entry is not None
    assert entry.closed


@pytest.mark.parametrize(
    ("option", "value"),
    [("lease", 10**400), ("lease", "120"), ("retention", "604800"), ("retention", 10**400)],
    ids=["lease-too-large-for-a-float", "lease-a-string", "retention-a-string", "retention-too-large-for-a-float"],
)
def test_a_duration_that_is_not_a_finite_number_is_refused_with_a_configuration_error(
    option: str, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=option):
        Receiver(SECRET, **{option: value})  # type: ignore[arg-type]
