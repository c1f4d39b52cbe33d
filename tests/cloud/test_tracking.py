"""Job trackers: one contract, run against memory, SQLite, a real redis-server and a real PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kreuzberg_webhooks import ConfigurationError
from kreuzberg_webhooks.cloud import JobTracker, MemoryTracker, SQLiteTracker, TrackedJob, open_tracker

pytest_plugins = ["tests.redis_server", "tests.postgres_server"]

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.slow),
    pytest.param("postgres", marks=pytest.mark.slow),
]


@pytest.fixture(params=BACKENDS)
def make_tracker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], JobTracker]]:
    kind = request.param
    if kind == "memory":
        tracker = MemoryTracker()
        yield lambda: tracker
    elif kind == "sqlite":
        yield lambda: SQLiteTracker(tmp_path / "tracked.sqlite3")
    elif kind == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{{{uuid.uuid4().hex}}}:"
        from kreuzberg_webhooks.cloud.tracking.redis import RedisTracker

        yield lambda: RedisTracker.from_url(url, prefix=prefix)
    else:
        from tests.postgres_server import new_database

        url = new_database(request.getfixturevalue("postgres_url"))
        yield lambda: open_tracker(url)


def job(now: float, delay: float = 10.0, scope: str = "") -> TrackedJob:
    return TrackedJob(str(uuid.uuid4()), scope, now, now + delay)


def test_a_tracked_job_is_due_after_its_delay_and_then_leased(make_tracker: Callable[[], JobTracker]) -> None:
    tracker = make_tracker()
    now = time.time()
    entry = job(now, 10, scope="project-a")
    tracker.track([entry])
    assert tracker.due(now + 5, 100, 60) == []
    [due] = tracker.due(now + 10, 100, 60)
    assert (due.job_id, due.scope, due.checks, due.closed) == (entry.job_id, "project-a", 0, False)
    assert due.tracked_at == pytest.approx(now)
    assert tracker.due(now + 20, 100, 60) == []  # leased by the first pass
    assert [e.job_id for e in tracker.due(now + 71, 100, 60)] == [entry.job_id]  # the lease ran out


def test_due_is_oldest_first_and_bounded(make_tracker: Callable[[], JobTracker]) -> None:
    tracker = make_tracker()
    now = time.time()
    entries = [job(now, delay) for delay in (5, 1, 3, 2, 4)]
    tracker.track(entries)
    first = tracker.due(now + 10, 3, 60)
    second = tracker.due(now + 10, 3, 60)
    assert [e.next_check for e in first] == sorted(now + d for d in (1, 2, 3))
    assert len(second) == 2
    assert {e.job_id for e in first + second} == {e.job_id for e in entries}


def test_tracking_again_keeps_the_entry(make_tracker: Callable[[], JobTracker]) -> None:
    tracker = make_tracker()
    now = time.time()
    entry = job(now, 1)
    tracker.track([entry])
    tracker.reschedule([TrackedJob(entry.job_id, "", now, now + 50, checks=3)])
    tracker.track([TrackedJob(entry.job_id, "other", now + 2, now + 2)])
    current = tracker.get(entry.job_id)
    assert current is not None
    assert (current.scope, current.checks, current.next_check) == ("", 3, pytest.approx(now + 50))


def test_a_job_closed_before_it_is_tracked_stays_closed(make_tracker: Callable[[], JobTracker]) -> None:
    tracker = make_tracker()
    now = time.time()
    entry = job(now, 1)
    tracker.close([entry.job_id], now + 3600)
    tracker.track([entry])
    current = tracker.get(entry.job_id)
    assert current is not None
    assert current.closed
    assert tracker.due(now + 100, 10, 60) == []


def test_closed_jobs_are_not_rescheduled_and_are_forgotten(make_tracker: Callable[[], JobTracker]) -> None:
    tracker = make_tracker()
    now = time.time()
    kept, closed = job(now, 1), job(now, 1)
    tracker.track([kept, closed])
    tracker.close([closed.job_id], now - 1)  # already past its time to be forgotten
    tracker.reschedule([TrackedJob(closed.job_id, "", now, now + 2, 1)])
    assert [e.job_id for e in tracker.due(now + 5, 10, 60)] == [kept.job_id]
    assert tracker.get(closed.job_id) is None


def test_concurrent_passes_never_take_the_same_job(make_tracker: Callable[[], JobTracker]) -> None:
    first = make_tracker()
    now = time.time()
    entries = [job(now, 0) for _ in range(200)]
    first.track(entries)
    taken: list[list[TrackedJob]] = []
    lock = threading.Lock()

    def take() -> None:
        tracker = make_tracker()
        while True:
            batch = tracker.due(now + 1, 7, 600)
            if not batch:
                return
            with lock:
                taken.append(batch)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [e.job_id for batch in taken for e in batch]
    assert sorted(ids) == sorted(e.job_id for e in entries)


def test_open_tracker_refuses_unknown_schemes(tmp_path: Path) -> None:
    assert isinstance(open_tracker("memory://"), MemoryTracker)
    assert isinstance(open_tracker(f"sqlite:///{tmp_path / 'x.db'}"), SQLiteTracker)
    with pytest.raises(ConfigurationError):
        open_tracker("mongodb://x")
    with pytest.raises(ConfigurationError):
        SQLiteTracker(":memory:")


RECONCILE_KEY = "tracking-reconcile-key-0123456789"


class _Reported:
    """The reconciler's outcome hook for jobs it gives up on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, entry: TrackedJob, reason: str) -> None:
        self.calls.append((entry.job_id, reason))


@pytest.mark.slow
def test_a_job_that_never_finishes_is_reported_and_dropped_after_the_age_limit(
    make_tracker: Callable[[], JobTracker], caplog: pytest.LogCaptureFixture
) -> None:
    from kreuzberg_webhooks import Receiver
    from kreuzberg_webhooks.cloud import JobsClient, Reconciler
    from kreuzberg_webhooks.emulator import Emulator
    from kreuzberg_webhooks.testing import FrozenClock

    tracker = make_tracker()
    clock = FrozenClock(time.time())
    reported = _Reported()
    receiver = Receiver("tracking-reconcile-secret-0123456789abcdef")
    with Emulator(RECONCILE_KEY, job_delay=3600) as cloud, JobsClient(RECONCILE_KEY, cloud.base_url) as client:
        [stuck] = cloud.submit([("stuck.pdf", b"x")])
        reconciler = Reconciler(
            receiver, client, tracker, grace=10, max_age=100, on_abandoned=reported, clock=clock, observe=False
        )
        reconciler.track([stuck])
        clock.advance(11)
        first = reconciler.run_once()
        clock.advance(100)
        with caplog.at_level(logging.WARNING, logger="kreuzberg_webhooks.cloud"):
            second = reconciler.run_once()
        clock.advance(1000)
        third = reconciler.run_once()
    assert (first.pending, first.abandoned) == (1, [])
    assert [job_id for job_id, _ in second.abandoned] == [stuck]
    assert reported.calls == [(stuck, second.abandoned[0][1])]
    assert "still pending" in reported.calls[0][1]
    assert any(stuck in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert third.checked == 0  # dropped from tracking: never polled again
    entry = tracker.get(stuck)
    assert entry is None or entry.closed


@pytest.mark.slow
def test_a_404_closes_a_job_only_after_the_not_found_grace(make_tracker: Callable[[], JobTracker]) -> None:
    from kreuzberg_webhooks import Receiver
    from kreuzberg_webhooks.cloud import JobsClient, Reconciler
    from kreuzberg_webhooks.emulator import Emulator
    from kreuzberg_webhooks.testing import FrozenClock

    tracker = make_tracker()
    clock = FrozenClock(time.time())
    receiver = Receiver("tracking-reconcile-secret-0123456789abcdef")
    lagging = str(uuid.uuid4())  # the API does not know it yet
    with Emulator(RECONCILE_KEY) as cloud, JobsClient(RECONCILE_KEY, cloud.base_url) as client:
        reconciler = Reconciler(receiver, client, tracker, grace=10, not_found_grace=120, clock=clock, observe=False)
        reconciler.track([lagging])
        clock.advance(11)
        early = reconciler.run_once()
        open_entry = tracker.get(lagging)
        clock.advance(200)
        late = reconciler.run_once()
    assert (early.retried, early.failed) == (1, [])
    assert open_entry is not None
    assert not open_entry.closed
    assert [job_id for job_id, _ in late.failed] == [lagging]
    assert "404" in late.failed[0][1]


def test_job_ids_are_tracked_in_their_canonical_form_ulids_included() -> None:
    from kreuzberg_webhooks import Receiver
    from kreuzberg_webhooks.cloud import JobsClient, Reconciler

    tracker = MemoryTracker()
    with JobsClient("key", "http://127.0.0.1:9") as client:
        reconciler = Reconciler(Receiver("s" * 32), client, tracker, observe=False)
        upper = uuid.uuid4()
        reconciler.track(["01JDQ8Z6W1N3K4M5P6Q7R8S9T0", str(upper).upper(), upper])
        with pytest.raises(ConfigurationError):
            reconciler.track([""])
    assert tracker.get("01JDQ8Z6W1N3K4M5P6Q7R8S9T0") is not None
    assert tracker.get(str(upper)) is not None
    assert len(tracker) == 2
