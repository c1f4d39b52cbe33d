"""The Receiver: every row of docs/contract.md §4 through both drivers, guard mode, handlers, store failures."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from kreuzberg_webhooks import (
    Claim,
    ClaimState,
    ConfigurationError,
    Delivery,
    DeliveryReport,
    Event,
    JobDocument,
    MemoryStore,
    MethodNotAllowed,
    Outcome,
    PayloadTooLarge,
    Receiver,
    ReplayWindow,
    StoreUnavailable,
    UnknownEvent,
    Verifier,
    sign,
)
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.testing import job_document_payload, job_event_payload, signed_delivery
from tests.support import DownStore, Recorder

SECRET = "receiver-test-secret-0123456789abcdef01"
NOW = 1_800_000_000.0
WINDOW = ReplayWindow(max_age=600, max_future=60)
LIMIT = 8192


# -- two drivers, one set of cases ----------------------------------------------------------------


class Driver:
    """Runs a receiver's sync or async entry points from synchronous test code."""

    name = "abstract"

    def handle(self, receiver: Receiver, body: bytes, headers: dict[str, str]) -> Outcome:
        raise NotImplementedError

    def begin(self, receiver: Receiver, body: bytes, headers: dict[str, str]) -> Delivery | Outcome:
        raise NotImplementedError

    def settle(self, receiver: Receiver, delivery: Delivery, status: int) -> None:
        raise NotImplementedError


class SyncDriver(Driver):
    name = "sync"

    def handle(self, receiver: Receiver, body: bytes, headers: dict[str, str]) -> Outcome:
        return receiver.handle(body, headers)

    def begin(self, receiver: Receiver, body: bytes, headers: dict[str, str]) -> Delivery | Outcome:
        return receiver.begin(body, headers)

    def settle(self, receiver: Receiver, delivery: Delivery, status: int) -> None:
        receiver.settle(delivery, status)


class AsyncDriver(Driver):
    name = "async"

    def handle(self, receiver: Receiver, body: bytes, headers: dict[str, str]) -> Outcome:
        return asyncio.run(receiver.handle_async(body, headers))

    def begin(self, receiver: Receiver, body: bytes, headers: dict[str, str]) -> Delivery | Outcome:
        return asyncio.run(receiver.begin_async(body, headers))

    def settle(self, receiver: Receiver, delivery: Delivery, status: int) -> None:
        asyncio.run(receiver.settle_async(delivery, status))


@pytest.fixture(params=[SyncDriver(), AsyncDriver()], ids=["handle", "handle_async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    driver: Driver = request.param
    return driver


class FlakyStore(MemoryStore):
    """A memory store that fails at chosen operations."""

    def __init__(self, failing: set[str]) -> None:
        super().__init__()
        self.failing = failing

    def complete(self, key: str, token: str, retention: float) -> None:
        if "complete" in self.failing:
            raise ConnectionError("lost the connection while completing")
        super().complete(key, token, retention)

    def release(self, key: str, token: str) -> None:
        if "release" in self.failing:
            raise ConnectionError("lost the connection while releasing")
        super().release(key, token)


def make_receiver(store: Any = None, **options: Any) -> Receiver:
    options.setdefault("clock", lambda: NOW)
    options.setdefault("window", WINDOW)
    options.setdefault("max_body_size", LIMIT)
    return Receiver(SECRET, store=MemoryStore() if store is None else store, **options)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(message="handler failed: db password hunter2")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def receiver(store: MemoryStore, recorder: Recorder) -> Receiver:
    receiver = make_receiver(store)
    receiver.on()(recorder)
    return receiver


def delivery(**overrides: Any) -> tuple[bytes, dict[str, str]]:
    return signed_delivery(SECRET, job_event_payload(now=NOW, **overrides))


def assert_error(outcome: Outcome, status: int, reason: str) -> None:
    assert (outcome.status_code, outcome.reason) == (status, reason), outcome
    assert ("content-type", "application/json") in outcome.headers
    assert json.loads(outcome.body)["error"] == reason
    assert not outcome.ok


# -- docs/contract.md §4, row by row ----------------------------------------------------------------------

REJECTED = [
    pytest.param(lambda: signed_delivery(SECRET, job_event_payload(now=NOW, pad="x" * LIMIT)), 413,
                 "payload_too_large", id="413-too-large"),
    pytest.param(lambda: signed_delivery(None, job_event_payload(now=NOW)), 401, "missing_signature",
                 id="401-unsigned"),
    pytest.param(lambda: signed_delivery(None, job_event_payload(now=NOW), signature="sha1=abc"), 401,
                 "malformed_signature", id="401-malformed"),
    pytest.param(lambda: signed_delivery("another-secret-0123456789abcdef012345", job_event_payload(now=NOW)), 401,
                 "signature_mismatch", id="401-forged"),
    pytest.param(lambda: signed_delivery(SECRET, b"{not json"), 400, "invalid_json", id="400-not-json"),
    pytest.param(lambda: signed_delivery(SECRET, b"[]"), 400, "not_an_object", id="400-not-an-object"),
    pytest.param(lambda: delivery(job_id=42), 400, "invalid_field", id="400-field-type"),
    pytest.param(lambda: signed_delivery(SECRET, {"event_id": "e-1"}), 400, "missing_field", id="400-field-missing"),
    pytest.param(lambda: delivery(timestamp=int(NOW) - 601), 400, "stale_timestamp", id="400-stale"),
    pytest.param(lambda: delivery(timestamp=int(NOW) + 61), 400, "future_timestamp", id="400-future"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "status", "reason"), REJECTED)
def test_rejected_deliveries_never_reach_the_handler_or_the_store(
    driver: Driver,
    receiver: Receiver,
    recorder: Recorder,
    store: MemoryStore,
    make: Callable[[], tuple[bytes, dict[str, str]]],
    status: int,
    reason: str,
) -> None:
    body, headers = make()
    outcome = driver.handle(receiver, body, headers)
    assert_error(outcome, status, reason)
    assert outcome.event is None
    assert recorder.events == []
    assert len(store) == 0


def test_a_valid_first_delivery_runs_the_handler_once(driver: Driver, receiver: Receiver, recorder: Recorder) -> None:
    body, headers = delivery()
    outcome = driver.handle(receiver, body, headers)
    assert (outcome.status_code, outcome.reason, outcome.ok) == (200, "processed", True)
    assert json.loads(outcome.body) == {"status": "processed"}
    assert ("content-type", "application/json") in outcome.headers
    assert [e.event_id for e in recorder.events] == [json.loads(body)["event_id"]]
    assert outcome.event is recorder.events[0]


def test_the_same_event_again_is_a_2xx_duplicate_and_the_handler_does_not_rerun(
    driver: Driver, receiver: Receiver, recorder: Recorder
) -> None:
    payload = job_event_payload(now=NOW)
    first = driver.handle(receiver, *signed_delivery(SECRET, payload))
    again = driver.handle(receiver, *signed_delivery(SECRET, payload))
    retry = driver.handle(receiver, *signed_delivery(SECRET, dict(payload, attempt_count=2, timestamp=int(NOW) - 5)))
    assert first.status_code == 200
    for outcome in (again, retry):
        assert (outcome.status_code, outcome.reason, outcome.duplicate) == (200, "duplicate", True)
        assert json.loads(outcome.body) == {"status": "duplicate"}
        assert ("x-kreuzberg-duplicate", "true") in outcome.headers
    assert len(recorder.events) == 1


def test_deduplication_ignores_the_unsigned_idempotency_header(
    driver: Driver, receiver: Receiver, recorder: Recorder
) -> None:
    body, headers = delivery()
    driver.handle(receiver, body, headers)
    other_body, other_headers = delivery()
    other_headers["X-Idempotency-Key"] = headers["X-Idempotency-Key"]  # a forged or reused header
    assert driver.handle(receiver, other_body, other_headers).reason == "processed"
    assert len(recorder.events) == 2


def test_a_job_document_is_processed_once(driver: Driver, receiver: Receiver, recorder: Recorder) -> None:
    body, headers = signed_delivery(SECRET, job_document_payload(now=NOW, metadata={"request_id": "r-7"}))
    assert driver.handle(receiver, body, headers).reason == "processed"
    assert driver.handle(receiver, body, headers).reason == "duplicate"
    (event,) = recorder.events
    assert isinstance(event, JobDocument)
    assert event.metadata == {"request_id": "r-7"}


def test_a_new_status_of_the_same_job_document_is_a_new_event(
    driver: Driver, receiver: Receiver, recorder: Recorder
) -> None:
    payload = job_document_payload(now=NOW, status="failed")
    driver.handle(receiver, *signed_delivery(SECRET, payload))
    driver.handle(receiver, *signed_delivery(SECRET, dict(payload, status="cancelled", result=None)))
    assert [e.type for e in recorder.events] == ["job.failed", "job.cancelled"]


def test_a_copy_in_flight_gets_429_with_retry_after(driver: Driver, store: MemoryStore, recorder: Recorder) -> None:
    receiver = make_receiver(store)
    body, headers = delivery()
    answers: list[Outcome] = []
    # While the first request is inside its handler, the sender's retry arrives.
    recorder.also = lambda _event: answers.append(SyncDriver().handle(receiver, body, headers))
    receiver.on()(recorder)
    first = driver.handle(receiver, body, headers)
    assert first.reason == "processed"
    (second,) = answers
    assert_error(second, 429, "in_flight")
    retry_after = dict(second.headers)["retry-after"]
    assert 1 <= int(retry_after) <= 120
    assert len(recorder.events) == 1
    assert driver.handle(receiver, body, headers).reason == "duplicate"


def test_retry_after_is_what_is_left_of_the_lease(driver: Driver, recorder: Recorder) -> None:
    clock = [0.0]
    store = MemoryStore(clock=lambda: clock[0])
    receiver = make_receiver(store, lease=90)
    receiver.on()(recorder)
    payload = job_event_payload(now=NOW)
    store.claim(parse_event(payload).dedup_key, 90)
    clock[0] = 29.5
    outcome = driver.handle(receiver, *signed_delivery(SECRET, payload))
    assert dict(outcome.headers)["retry-after"] == "61"  # 60.5 s left, rounded up
    assert recorder.events == []


def test_an_unknown_status_and_fields_reach_the_handler_with_the_raw_payload(
    driver: Driver, receiver: Receiver, recorder: Recorder
) -> None:
    outcome = driver.handle(receiver, *delivery(status="archived", shard={"region": "eu-2"}))
    assert (outcome.status_code, outcome.reason) == (200, "processed")
    (event,) = recorder.events
    assert (event.status, event.type) == ("archived", "job.archived")
    assert event.raw["shard"] == {"region": "eu-2"}


def test_a_failing_handler_is_500_and_the_retry_is_processed(
    driver: Driver, receiver: Receiver, recorder: Recorder
) -> None:
    body, headers = delivery()
    recorder.fail = True
    failed = driver.handle(receiver, body, headers)
    assert_error(failed, 500, "handler_error")
    assert b"hunter2" not in failed.body
    recorder.fail = False
    retry = driver.handle(receiver, body, headers)
    assert (retry.status_code, retry.reason) == (200, "processed")
    assert len(recorder.events) == 2  # the failed run and the retry


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ConnectionError("redis://:s3cr3t-pw@cache:6379 refused"), id="connection-error"),
        pytest.param(StoreUnavailable("s3cr3t: database is locked"), id="store-unavailable"),
        pytest.param(TimeoutError(), id="timeout"),
    ],
)
def test_an_unreachable_store_is_503_and_the_handler_does_not_run(
    driver: Driver, recorder: Recorder, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    receiver = make_receiver(DownStore(error))
    receiver.on()(recorder)
    body, headers = delivery()
    outcome = driver.handle(receiver, body, headers)
    assert_error(outcome, 503, "store_unavailable")
    assert outcome.event is not None
    assert recorder.events == []
    assert b"s3cr3t" not in outcome.body
    assert json.loads(outcome.body)["detail"] == StoreUnavailable.message
    if not isinstance(error, StoreUnavailable):
        assert "s3cr3t" not in caplog.text  # a foreign exception's text may hold a connection URL
    assert json.loads(body)["event_id"] in caplog.text


def test_a_store_unavailable_detail_is_logged_for_the_operator(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = make_receiver(DownStore(StoreUnavailable("SQLite replay store: database is locked")))
    outcome = receiver.handle(*delivery())
    assert b"locked" not in outcome.body
    assert "database is locked" in caplog.text


def test_a_store_failing_at_complete_still_answers_2xx(driver: Driver, recorder: Recorder) -> None:
    # Documented choice: the work is done, so a 5xx would only make the sender redo it.
    # The lease expires by itself; until then a retry gets 429.
    store = FlakyStore({"complete"})
    receiver = make_receiver(store)
    receiver.on()(recorder)
    body, headers = delivery()
    assert (driver.handle(receiver, body, headers).status_code, len(recorder.events)) == (200, 1)
    assert driver.handle(receiver, body, headers).reason == "in_flight"
    assert len(recorder.events) == 1


def test_a_store_failing_at_release_still_answers_500(driver: Driver, recorder: Recorder) -> None:
    receiver = make_receiver(FlakyStore({"release"}))
    recorder.fail = True
    receiver.on()(recorder)
    assert_error(driver.handle(receiver, *delivery()), 500, "handler_error")


def test_a_sync_store_under_an_async_receiver_runs_in_a_worker_thread(recorder: Recorder) -> None:
    threads: list[int] = []

    class BlockingStore(MemoryStore):
        nonblocking = False

        def claim(self, key: str, lease: float) -> Claim:
            threads.append(threading.get_ident())
            return super().claim(key, lease)

    receiver = make_receiver(BlockingStore())
    receiver.on()(recorder)

    async def run() -> tuple[Outcome, int]:
        return await receiver.handle_async(*delivery()), threading.get_ident()

    outcome, loop_thread = asyncio.run(run())
    assert outcome.reason == "processed"
    assert threads
    assert threads[0] != loop_thread


def test_a_nonblocking_store_is_called_on_the_event_loop(recorder: Recorder) -> None:
    threads: list[int] = []

    class InlineStore(MemoryStore):
        def claim(self, key: str, lease: float) -> Claim:
            threads.append(threading.get_ident())
            return super().claim(key, lease)

    receiver = make_receiver(InlineStore())

    async def run() -> tuple[Outcome, int]:
        return await receiver.handle_async(*delivery()), threading.get_ident()

    outcome, loop_thread = asyncio.run(run())
    assert outcome.reason == "processed"
    assert threads == [loop_thread]


@pytest.mark.parametrize(("status", "settled"), [(200, ["complete", "complete"]), (500, ["release"])])
def test_a_nonblocking_store_claims_and_settles_a_guarded_delivery_on_the_event_loop(
    status: int, settled: list[str]
) -> None:
    calls: list[tuple[str, int]] = []

    class InlineStore(MemoryStore):
        failures = 1  # the first complete fails: it is tried again after an (awaited) pause

        def claim(self, key: str, lease: float) -> Claim:
            calls.append(("claim", threading.get_ident()))
            return super().claim(key, lease)

        def complete(self, key: str, token: str, retention: float) -> None:
            calls.append(("complete", threading.get_ident()))
            if self.failures:
                self.failures -= 1
                raise ConnectionError("lost the connection while completing")
            super().complete(key, token, retention)

        def release(self, key: str, token: str) -> None:
            calls.append(("release", threading.get_ident()))
            super().release(key, token)

    receiver = make_receiver(InlineStore())
    body, headers = delivery()

    async def run() -> tuple[Delivery | Outcome, int]:
        began = await receiver.begin_async(body, headers)
        assert isinstance(began, Delivery)
        assert await receiver.settle_async(began, status) is None
        return await receiver.begin_async(body, headers), threading.get_ident()

    retry, loop_thread = asyncio.run(run())
    assert [name for name, _ in calls] == ["claim", *settled, "claim"]
    assert {thread for _, thread in calls} == {loop_thread}
    if status == 200:
        assert isinstance(retry, Outcome)
        assert retry.duplicate
    else:
        assert isinstance(retry, Delivery)  # released: the sender's retry is processed


@pytest.mark.parametrize("resolver_kind", ["sync", "async"])
def test_guard_mode_verifies_with_either_kind_of_secret_resolver_and_counts_the_time(resolver_kind: str) -> None:
    project = "1cbb9d72-660a-4df2-ba3d-66d83b6afaff"

    def sync_resolver(scope: str | None) -> str | None:
        return SECRET if scope == project else None

    async def async_resolver(scope: str | None) -> str | None:
        await asyncio.sleep(0)
        return sync_resolver(scope)

    reports: list[DeliveryReport] = []
    resolver = sync_resolver if resolver_kind == "sync" else async_resolver
    receiver = Receiver(resolver, store=MemoryStore(), clock=lambda: NOW, window=WINDOW, on_outcome=reports.append)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW, project_id=project))
    forged = dict(headers, **{"X-Webhook-Signature": "sha256=" + "0" * 64})

    async def run() -> tuple[Delivery | Outcome, Delivery | Outcome]:
        began = await receiver.begin_async(body, headers)
        assert isinstance(began, Delivery)
        await receiver.settle_async(began, 200)
        return began, await receiver.begin_async(body, forged)

    began, refused = asyncio.run(run())
    assert isinstance(began, Delivery)
    assert began.scope == project
    assert isinstance(refused, Outcome)
    assert (refused.status_code, refused.reason) == (401, "signature_mismatch")
    assert [(report.reason, report.scope) for report in reports] == [("processed", project), ("signature_mismatch", "")]
    assert all(report.verify_seconds > 0 for report in reports)


class AsyncMemoryStore:
    """An async store (coroutines), as a Redis asyncio store would be."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.calls: list[str] = []

    async def claim(self, key: str, lease: float) -> Claim:
        self.calls.append("claim")
        await asyncio.sleep(0)
        return self.inner.claim(key, lease)

    async def complete(self, key: str, token: str, retention: float) -> None:
        self.calls.append("complete")
        self.inner.complete(key, token, retention)

    async def release(self, key: str, token: str) -> None:
        self.calls.append("release")
        self.inner.release(key, token)


def test_an_async_store_serves_the_async_paths(recorder: Recorder) -> None:
    store = AsyncMemoryStore()
    receiver = make_receiver(store)
    receiver.on()(recorder)
    body, headers = delivery()
    first = asyncio.run(receiver.handle_async(body, headers))
    again = asyncio.run(receiver.handle_async(body, headers))
    assert (first.reason, again.reason) == ("processed", "duplicate")
    assert store.calls == ["claim", "complete", "claim"]


def test_an_async_store_refuses_the_sync_paths() -> None:
    receiver = make_receiver(AsyncMemoryStore())
    with pytest.raises(ConfigurationError, match="handle_async"):
        receiver.handle(*delivery())
    with pytest.raises(ConfigurationError, match="begin_async"):
        receiver.begin(*delivery())


# -- handlers -----------------------------------------------------------------------------------------


def test_sync_and_async_handlers_both_run(driver: Driver) -> None:
    receiver = make_receiver()
    seen: list[str] = []

    @receiver.on("job.completed")
    def sync_handler(event: Event) -> None:
        seen.append("sync")

    @receiver.on("job.completed")
    async def async_handler(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append("async")

    assert driver.handle(receiver, *delivery()).reason == "processed"
    assert seen == ["sync", "async"]


def test_a_failing_async_handler_is_500(driver: Driver) -> None:
    receiver = make_receiver()
    calls: list[str] = []

    @receiver.on()
    async def handler(event: Event) -> None:
        calls.append(event.dedup_key)
        if len(calls) == 1:
            raise ValueError("boom")

    body, headers = delivery()
    assert_error(driver.handle(receiver, body, headers), 500, "handler_error")
    # The claim was released: the sender's retry of the same delivery is processed.
    assert driver.handle(receiver, body, headers).reason == "processed"
    assert len(calls) == 2


def test_handlers_for_the_type_run_before_catch_alls(driver: Driver) -> None:
    receiver = make_receiver()
    order: list[str] = []
    receiver.on()(lambda event: order.append("catch-all"))
    receiver.on("job.completed")(lambda event: order.append("completed"))
    receiver.on("job.failed")(lambda event: order.append("failed"))
    receiver.on("*")(lambda event: order.append("star"))
    driver.handle(receiver, *delivery(status="partial_success"))
    assert order == ["completed", "catch-all", "star"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("completed", ["completed"], id="completed"),
        pytest.param("partial_success", ["completed"], id="partial-success"),
        pytest.param("failed", ["failed"], id="failed"),
        pytest.param("cancelled", ["cancelled"], id="cancelled"),
        pytest.param("archived", [], id="unknown-status-only-catch-alls"),
    ],
)
def test_handlers_are_chosen_by_event_type(driver: Driver, status: str, expected: list[str]) -> None:
    receiver = make_receiver()
    ran: list[str] = []
    for kind in ("completed", "failed", "cancelled"):
        receiver.on(f"job.{kind}")(lambda event, kind=kind: ran.append(kind))
    outcome = driver.handle(receiver, *delivery(status=status))
    assert outcome.reason == "processed"
    assert ran == expected


def test_a_delivery_without_handlers_is_acknowledged(driver: Driver) -> None:
    receiver = make_receiver()
    body, headers = delivery()
    assert driver.handle(receiver, body, headers).reason == "processed"
    assert driver.handle(receiver, body, headers).reason == "duplicate"


def test_sync_handlers_run_off_the_event_loop_and_async_ones_on_it() -> None:
    receiver = make_receiver()
    where: dict[str, int] = {}
    receiver.on()(lambda event: where.__setitem__("sync", threading.get_ident()))

    @receiver.on()
    async def on_loop(event: Event) -> None:
        where["async"] = threading.get_ident()

    async def run() -> int:
        await receiver.handle_async(*delivery())
        return threading.get_ident()

    loop_thread = asyncio.run(run())
    assert where["async"] == loop_thread
    assert where["sync"] != loop_thread


def test_a_callable_object_with_an_async_call_is_awaited(driver: Driver) -> None:
    seen: list[Event] = []

    class AsyncCallable:
        async def __call__(self, event: Event) -> None:
            seen.append(event)

    receiver = make_receiver()
    receiver.add_handler("job.completed", AsyncCallable())
    assert driver.handle(receiver, *delivery()).reason == "processed"
    assert len(seen) == 1


@pytest.mark.parametrize(
    "event_type", ["completed", "order.created", "", 5], ids=["no-prefix", "other", "empty", "int"]
)
def test_unknown_event_types_are_refused_at_registration(event_type: Any) -> None:
    with pytest.raises(ConfigurationError):
        make_receiver().on(event_type)


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(ConfigurationError):
        make_receiver().add_handler("job.completed", "not a function")  # type: ignore[arg-type]


def test_on_returns_the_function_unchanged() -> None:
    receiver = make_receiver()

    def handler(event: Event) -> None: ...

    assert receiver.on("job.failed")(handler) is handler


# -- guard mode: begin / settle ---------------------------------------------------------------------------


def test_guard_mode_2xx_completes_the_event(driver: Driver) -> None:
    receiver = make_receiver()
    body, headers = delivery()
    started = driver.begin(receiver, body, headers)
    assert isinstance(started, Delivery)
    assert started.event.event_id == json.loads(body)["event_id"]
    assert started.key == started.event.dedup_key
    while_running = driver.begin(receiver, body, headers)
    assert isinstance(while_running, Outcome)
    assert_error(while_running, 429, "in_flight")
    driver.settle(receiver, started, 204)
    again = driver.begin(receiver, body, headers)
    assert isinstance(again, Outcome)
    assert (again.status_code, again.reason) == (200, "duplicate")


@pytest.mark.parametrize("status", [500, 503, 400, 302, 429], ids=lambda s: str(s))
def test_guard_mode_non_2xx_releases_the_claim(driver: Driver, status: int) -> None:
    receiver = make_receiver()
    body, headers = delivery()
    started = driver.begin(receiver, body, headers)
    assert isinstance(started, Delivery)
    driver.settle(receiver, started, status)
    assert isinstance(driver.begin(receiver, body, headers), Delivery)


@pytest.mark.parametrize(("make", "status", "reason"), REJECTED)
def test_guard_mode_rejections_are_outcomes(
    driver: Driver, make: Callable[[], tuple[bytes, dict[str, str]]], status: int, reason: str
) -> None:
    outcome = driver.begin(make_receiver(), *make())
    assert isinstance(outcome, Outcome)
    assert_error(outcome, status, reason)


def test_guard_mode_with_the_store_down_is_503(driver: Driver) -> None:
    outcome = driver.begin(make_receiver(DownStore()), *delivery())
    assert isinstance(outcome, Outcome)
    assert_error(outcome, 503, "store_unavailable")


def test_guard_mode_settle_survives_a_store_failure(driver: Driver, caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(set())
    receiver = make_receiver(store)
    started = driver.begin(receiver, *delivery())
    assert isinstance(started, Delivery)
    store.failing = {"complete", "release"}
    driver.settle(receiver, started, 200)
    driver.settle(receiver, started, 500)
    assert "replay store failed to settle a delivery" in caplog.text


def test_finish_is_the_deprecated_name_of_settle() -> None:
    receiver = make_receiver()
    body, headers = delivery()
    started = receiver.begin(body, headers)
    assert isinstance(started, Delivery)
    with pytest.deprecated_call(match="use Receiver.settle"):
        receiver.finish(started, 200)
    again = receiver.begin(body, headers)
    assert isinstance(again, Outcome)
    assert again.duplicate  # finish settled it as done, as settle does
    other_body, other_headers = delivery()
    other = asyncio.run(receiver.begin_async(other_body, other_headers))
    assert isinstance(other, Delivery)
    with pytest.deprecated_call(match="use Receiver.settle_async"):
        asyncio.run(receiver.finish_async(other, 500))
    assert isinstance(receiver.begin(other_body, other_headers), Delivery)  # released, as settle_async does


class _AsyncInbox:
    async def enqueue(self, entry: Any) -> bool:
        raise AssertionError("a guarded delivery is never enqueued")


async def _async_resolver(scope: str | None) -> str | None:
    return SECRET


@pytest.mark.parametrize(
    "options",
    [{"secrets": _async_resolver}, {"inbox": _AsyncInbox()}],
    ids=["async-secret-resolver", "async-inbox"],
)
@pytest.mark.parametrize("status", [200, 500])
def test_settle_needs_only_a_sync_store(options: dict[str, Any], status: int) -> None:
    # Settling neither verifies nor enqueues: an async resolver or inbox does not stop the sync settle
    # of a delivery begun on the async path (as process, it needs a sync store only).
    receiver = Receiver(**{"secrets": SECRET, **options}, store=MemoryStore(), clock=lambda: NOW, window=WINDOW)
    body, headers = delivery()
    began = asyncio.run(receiver.begin_async(body, headers))
    assert isinstance(began, Delivery)
    assert receiver.settle(began, status) is None
    again = asyncio.run(receiver.begin_async(body, headers))
    if status == 200:
        assert isinstance(again, Outcome)
        assert again.duplicate
    else:
        assert isinstance(again, Delivery)  # released: the retry is processed


def test_settle_still_refuses_an_async_store() -> None:
    store = AsyncMemoryStore()
    receiver = make_receiver(store)
    began = asyncio.run(receiver.begin_async(*delivery()))
    assert isinstance(began, Delivery)
    with pytest.raises(ConfigurationError, match="settle_async"):
        receiver.settle(began, 200)
    assert store.calls == ["claim"]


# -- configuration -----------------------------------------------------------------------------------------


def test_a_ready_verifier_can_be_passed() -> None:
    verifier = Verifier(SECRET, clock=lambda: NOW, window=WINDOW)
    receiver = Receiver(verifier=verifier)
    assert receiver.verifier is verifier
    assert receiver.handle(*delivery()).reason == "processed"


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"secrets": SECRET}, id="secrets-too"),
        pytest.param({"max_body_size": 10}, id="verifier-options-too"),
    ],
)
def test_a_verifier_excludes_secrets_and_verifier_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Receiver(verifier=Verifier(SECRET), **options)


@pytest.mark.parametrize("lease", [0, -1, float("nan")], ids=["zero", "negative", "nan"])
def test_a_lease_must_be_positive(lease: float) -> None:
    with pytest.raises(ConfigurationError):
        Receiver(SECRET, lease=lease)


def test_the_defaults() -> None:
    receiver = Receiver(SECRET)
    assert isinstance(receiver.store, MemoryStore)
    assert receiver.lease == 120
    assert receiver.retention == receiver.verifier.max_span == 7 * 24 * 3600 + 300  # the document window


def test_verifier_options_pass_through() -> None:
    receiver = Receiver(SECRET, header="X-Custom-Signature", max_body_size=100)
    assert receiver.verifier.header == "X-Custom-Signature"
    assert receiver.verifier.max_body_size == 100


# -- outcomes ---------------------------------------------------------------------------------------------


def test_method_not_allowed_answers_405_with_allow() -> None:
    outcome = Outcome.from_error(MethodNotAllowed())
    assert_error(outcome, 405, "method_not_allowed")
    assert ("allow", "POST") in outcome.headers


def test_outcome_header_names_are_lower_case(driver: Driver, receiver: Receiver) -> None:
    body, headers = delivery()
    outcomes = [driver.handle(receiver, body, headers), driver.handle(receiver, body, headers)]
    outcomes.append(Outcome.from_error(PayloadTooLarge()))
    for outcome in outcomes:
        assert all(name == name.lower() for name, _ in outcome.headers)


def test_error_bodies_never_echo_the_secret_the_signature_or_the_body(driver: Driver, receiver: Receiver) -> None:
    payload = job_event_payload(now=NOW, job_id="looks-secret-0042", error_message="PRIVATE-TEXT", attempt_count=0)
    body, headers = signed_delivery("wrong-secret-0123456789abcdef0123456", payload)
    good = sign(body, SECRET)
    for outcome in (driver.handle(receiver, body, headers), driver.handle(receiver, *signed_delivery(SECRET, payload))):
        assert outcome.status_code in (400, 401)
        for needle in (SECRET, good, good[7:], "looks-secret-0042", "PRIVATE-TEXT"):
            assert needle.encode() not in outcome.body


# -- logging ------------------------------------------------------------------------------------------------


def test_receiver_rejections_log_one_line_with_the_event_id(
    driver: Driver, receiver: Receiver, store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    payload = job_event_payload(now=NOW)
    store.claim(parse_event(payload).dedup_key, 120)
    caplog.set_level(logging.INFO, logger="kreuzberg_webhooks")
    driver.handle(receiver, *signed_delivery(SECRET, payload))
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1
    assert "in_flight" in lines[0]
    assert payload["event_id"] in lines[0]


def test_a_failing_handler_is_logged_with_its_traceback_and_event_id(
    driver: Driver, receiver: Receiver, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.fail = True
    body, headers = delivery()
    driver.handle(receiver, body, headers)
    (record,) = [r for r in caplog.records if "handler raised" in r.getMessage()]
    assert record.exc_info is not None
    assert json.loads(body)["event_id"] in record.getMessage()


def test_the_store_sees_the_signed_dedup_key(driver: Driver, receiver: Receiver, store: MemoryStore) -> None:
    payload = job_event_payload(now=NOW)
    driver.handle(receiver, *signed_delivery(SECRET, payload))
    assert store.claim(parse_event(payload).dedup_key, 120).state is ClaimState.DONE


# -- the handler registry ----------------------------------------------------------


def test_a_handler_added_after_deliveries_runs_for_the_next_one() -> None:
    secret = "hot-path-test-secret-0123456789abcdef"
    receiver = Receiver(secret)
    seen: list[str] = []
    receiver.on("job.completed")(lambda event: seen.append("completed"))
    assert receiver.handle(*signed_delivery(secret, status="completed")).reason == "processed"
    receiver.on()(lambda event: seen.append("catch-all"))
    receiver.on("job.completed")(lambda event: seen.append("completed-2"))
    assert receiver.handle(*signed_delivery(secret, status="partial_success")).reason == "processed"
    assert seen == ["completed", "completed", "completed-2", "catch-all"]
    event = receiver.verifier.verify(*signed_delivery(secret, status="failed"))
    handlers = receiver.handlers_for(event)
    handlers.clear()  # a copy: the receiver's own table is untouched
    assert len(receiver.handlers_for(event)) == 1


def test_each_event_gets_the_handlers_of_its_own_registration_whatever_was_looked_up_before() -> None:
    receiver = Receiver("registry-test-secret-0123456789abcdef")
    for name in ("job.completed", "job.partial_success", "unknown", "*"):
        receiver.on(name)(lambda event, name=name: name)
    completed = parse_event(job_event_payload(status="completed"))
    partial = parse_event(job_event_payload(status="partial_success"))
    # A family this version does not know, whose type happens to read like a known one.
    unknown = UnknownEvent(type="job.completed", event_id="evt-1", timestamp=None, raw={})

    def names(event: Any) -> list[str]:
        return [handler(event) for handler in receiver.handlers_for(event)]

    for _ in range(2):  # the second time from the receiver's cache
        assert names(completed) == ["job.completed", "*"]
        assert names(partial) == ["job.partial_success", "job.completed", "*"]
        assert names(unknown) == ["unknown", "*"]


# -- a subclass's dispatch wraps the handlers on every path -----------------------------------------


class Wrapping(Receiver):
    """Wraps every run of the handlers (as an application would in a transaction or a span)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs: list[str] = []

    def dispatch(self, event: Event) -> None:
        self.runs.append("dispatch")
        super().dispatch(event)

    async def dispatch_async(self, event: Event) -> None:
        self.runs.append("dispatch_async")
        await super().dispatch_async(event)


@pytest.mark.parametrize("kind", ["plain", "coroutine"])
@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
@pytest.mark.parametrize("entry", ["handle", "process", "handle_async", "process_async"])
def test_a_subclass_dispatch_runs_the_handlers_on_every_path(
    tmp_path: Any, entry: str, store_kind: str, kind: str
) -> None:
    from kreuzberg_webhooks.stores.sqlite import SQLiteStore

    store = MemoryStore() if store_kind == "memory" else SQLiteStore(tmp_path / "replay.db")
    receiver = Wrapping(SECRET, store=store, clock=lambda: NOW, window=WINDOW)
    seen: list[str] = []
    if kind == "plain":
        receiver.on()(lambda event: seen.append(event.event_id))
    else:

        @receiver.on()
        async def record(event: Event) -> None:
            seen.append(event.event_id)

    body, headers = delivery()
    if entry == "handle":
        outcome = receiver.handle(body, headers)
    elif entry == "handle_async":
        outcome = asyncio.run(receiver.handle_async(body, headers))
    else:
        event = receiver.verifier.verify(body, headers)
        run = receiver.process if entry == "process" else receiver.process_async
        outcome = run(event) if entry == "process" else asyncio.run(run(event))  # type: ignore[arg-type]
    assert outcome.reason == "processed", outcome
    assert len(seen) == 1
    # Exactly one run of the handlers, through the subclass's override of the path taken: the sync
    # dispatch in a thread (a sync driver, or an async caller's delivery run in a worker thread),
    # dispatch_async on the loop.
    assert len(receiver.runs) == 1, receiver.runs
    assert receiver.runs[0] in ("dispatch", "dispatch_async")
    if entry in ("handle", "process"):
        assert receiver.runs == ["dispatch"]
