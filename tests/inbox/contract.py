"""The contract every inbox honours, as one class of test cases.

Subclass :class:`InboxContract` in ``tests/inbox/test_<name>.py`` (the class
name must start with ``Test``) and implement :meth:`InboxContract.make_inbox`::

    class TestSQLiteInbox(InboxContract):
        def make_inbox(self, clock: FrozenClock) -> Inbox:
            return SQLiteInbox(self.tmp / "inbox.db", clock=clock)

Every inbox takes a ``clock=``: the cases move a :class:`FrozenClock` to let
leases expire and retries fall due, instantly and exactly. An inbox on a shared
server must keep its cases apart (a fresh table, key prefix or database per
case): :meth:`make_inbox` is called once per case.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from kreuzberg_webhooks import ConfigurationError
from kreuzberg_webhooks.inbox import DeliveryState, Inbox, InboxClaim, InboxEntry
from tests.stores.contract import NOW, FrozenClock

__all__ = ["InboxContract", "make_entry"]

LEASE = 60.0


def make_entry(*, key: str | None = None, event_id: str | None = None, received_at: float = NOW) -> InboxEntry:
    """A delivery as the receiver writes it, with fresh ids."""
    job_id = str(uuid.uuid4())
    return InboxEntry(
        key=key or f"|{job_id}|job.completed",
        scope="",
        event_id=event_id if event_id is not None else f"evt_{uuid.uuid4().hex}",
        event_type="job.completed",
        job_id=job_id,
        body=b'{"status": "completed", "bytes": "\xff\x00"}',
        headers=(("x-webhook-signature", "sha256=" + "ab" * 32), ("x-idempotency-key", "evt")),
        received_at=received_at,
    )


class InboxContract:
    """Cases every inbox passes; subclasses implement :meth:`make_inbox`."""

    def make_inbox(self, clock: FrozenClock) -> Inbox:
        """A fresh, empty inbox reading time from *clock*."""
        raise TypeError(f"{type(self).__name__} must define make_inbox()")

    def close_inbox(self, inbox: Inbox) -> None:
        """Release what the inbox holds (connections, files)."""
        close = getattr(inbox, "close", None)
        if close is not None:
            close()

    @pytest.fixture
    def clock(self) -> FrozenClock:
        return FrozenClock()

    @pytest.fixture
    def inbox(self, clock: FrozenClock) -> Iterator[Inbox]:
        inbox = self.make_inbox(clock)
        yield inbox
        self.close_inbox(inbox)

    def _claim_one(self, inbox: Inbox) -> InboxClaim:
        claims = inbox.claim_due(LEASE)
        assert len(claims) == 1
        return claims[0]

    # -- writing -----------------------------------------------------------------

    def test_a_new_delivery_is_written_queued(self, inbox: Inbox) -> None:
        entry = make_entry()
        assert inbox.enqueue(entry) is True
        record = inbox.get(entry.key)
        assert record is not None
        assert record.entry == entry
        assert (record.state, record.attempts, record.last_error) == (DeliveryState.QUEUED, 0, None)
        assert record.next_attempt_at == NOW
        assert record.lease_expires_at is None

    def test_the_body_and_headers_come_back_byte_for_byte(self, inbox: Inbox) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        record = inbox.get(entry.key)
        assert record is not None
        assert record.entry.body == entry.body
        assert record.entry.headers == entry.headers

    @pytest.mark.parametrize("settle", ["queued", "running", "done", "dead"])
    def test_a_copy_of_a_known_delivery_is_not_written_again(self, inbox: Inbox, settle: str) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        if settle != "queued":
            claim = self._claim_one(inbox)
            if settle == "done":
                inbox.complete(claim.key, claim.token)
            elif settle == "dead":
                inbox.fail(claim.key, claim.token, "boom", None)
        assert inbox.enqueue(entry) is False
        record = inbox.get(entry.key)
        assert record is not None
        assert record.state == DeliveryState(settle)

    # -- claiming ------------------------------------------------------------------

    def test_a_claim_leases_the_delivery_and_counts_an_attempt(self, inbox: Inbox, clock: FrozenClock) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        assert claim.key == entry.key
        assert claim.token
        assert (claim.record.state, claim.record.attempts) == (DeliveryState.RUNNING, 1)
        assert claim.record.lease_expires_at == NOW + LEASE
        stored = inbox.get(entry.key)
        assert stored is not None
        assert (stored.state, stored.attempts, stored.lease_expires_at) == (DeliveryState.RUNNING, 1, NOW + LEASE)

    def test_a_leased_delivery_is_not_claimed_twice(self, inbox: Inbox, clock: FrozenClock) -> None:
        inbox.enqueue(make_entry())
        self._claim_one(inbox)
        clock.advance(LEASE - 1)
        assert inbox.claim_due(LEASE) == []

    def test_an_expired_lease_gives_the_delivery_back(self, inbox: Inbox, clock: FrozenClock) -> None:
        # The worker holding it was killed: another one takes it after the lease.
        entry = make_entry()
        inbox.enqueue(entry)
        first = self._claim_one(inbox)
        clock.advance(LEASE + 1)
        second = self._claim_one(inbox)
        assert second.key == entry.key
        assert second.token != first.token
        assert second.record.attempts == 2
        assert inbox.complete(entry.key, first.token) is False  # the killed worker's token is void
        assert inbox.complete(entry.key, second.token) is True

    def test_claim_due_takes_at_most_limit_oldest_due_first(self, inbox: Inbox, clock: FrozenClock) -> None:
        entries = []
        for _ in range(5):
            entries.append(make_entry())
            inbox.enqueue(entries[-1])
            clock.advance(1)
        claims = inbox.claim_due(LEASE, limit=3)
        assert [c.key for c in claims] == [e.key for e in entries[:3]]
        assert [c.key for c in inbox.claim_due(LEASE, limit=10)] == [e.key for e in entries[3:]]

    def test_an_empty_inbox_has_nothing_due(self, inbox: Inbox) -> None:
        assert inbox.claim_due(LEASE, limit=10) == []

    def test_claim_by_key_takes_a_queued_delivery_even_before_it_is_due(self, inbox: Inbox, clock: FrozenClock) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        inbox.fail(claim.key, claim.token, "boom", NOW + 3600)
        again = inbox.claim(entry.key, LEASE)
        assert again is not None
        assert again.record.attempts == 2

    @pytest.mark.parametrize("settle", ["running", "done", "dead", "unknown"])
    def test_claim_by_key_refuses_what_is_not_queued(self, inbox: Inbox, settle: str) -> None:
        entry = make_entry()
        if settle != "unknown":
            inbox.enqueue(entry)
            claim = self._claim_one(inbox)
            if settle == "done":
                inbox.complete(claim.key, claim.token)
            elif settle == "dead":
                inbox.fail(claim.key, claim.token, "boom", None)
        assert inbox.claim(entry.key, LEASE) is None

    def test_claim_by_key_takes_over_an_expired_lease(self, inbox: Inbox, clock: FrozenClock) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        self._claim_one(inbox)
        clock.advance(LEASE + 1)
        assert inbox.claim(entry.key, LEASE) is not None

    @pytest.mark.parametrize("lease", [0, -1, float("inf"), float("nan")], ids=["zero", "negative", "inf", "nan"])
    def test_a_lease_that_is_not_a_positive_time_is_refused(self, inbox: Inbox, lease: float) -> None:
        with pytest.raises(ConfigurationError):
            inbox.claim_due(lease)
        with pytest.raises(ConfigurationError):
            inbox.claim("x", lease)

    # -- settling -----------------------------------------------------------------

    def test_complete_marks_the_delivery_done(self, inbox: Inbox) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        assert inbox.complete(claim.key, claim.token) is True
        record = inbox.get(entry.key)
        assert record is not None
        assert (record.state, record.attempts, record.lease_expires_at) == (DeliveryState.DONE, 1, None)
        assert inbox.claim_due(LEASE) == []

    def test_settling_with_a_wrong_token_changes_nothing(self, inbox: Inbox) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        self._claim_one(inbox)
        assert inbox.complete(entry.key, "not-the-token") is False
        assert inbox.fail(entry.key, "not-the-token", "x", None) is False
        assert inbox.release(entry.key, "not-the-token", NOW) is False
        record = inbox.get(entry.key)
        assert record is not None
        assert record.state is DeliveryState.RUNNING

    def test_a_failure_queues_the_delivery_for_later_with_its_error(self, inbox: Inbox, clock: FrozenClock) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        assert inbox.fail(claim.key, claim.token, "RuntimeError: downstream is down", NOW + 100) is True
        record = inbox.get(entry.key)
        assert record is not None
        assert (record.state, record.attempts, record.next_attempt_at) == (DeliveryState.QUEUED, 1, NOW + 100)
        assert record.last_error == "RuntimeError: downstream is down"
        clock.advance(99)
        assert inbox.claim_due(LEASE) == []
        clock.advance(1)
        assert self._claim_one(inbox).record.attempts == 2

    def test_a_failure_without_a_retry_parks_the_delivery_as_dead(self, inbox: Inbox, clock: FrozenClock) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        assert inbox.fail(claim.key, claim.token, "gave up", None) is True
        record = inbox.get(entry.key)
        assert record is not None
        assert (record.state, record.last_error) == (DeliveryState.DEAD, "gave up")
        clock.advance(10**6)
        assert inbox.claim_due(LEASE) == []

    def test_the_last_error_is_cleared_when_the_delivery_is_done(self, inbox: Inbox, clock: FrozenClock) -> None:
        # A done delivery shows no error: the failure it had is history, not its state.
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        inbox.fail(claim.key, claim.token, "first try failed", NOW)
        claim = self._claim_one(inbox)
        inbox.complete(claim.key, claim.token)
        record = inbox.get(entry.key)
        assert record is not None
        assert (record.state, record.attempts, record.last_error) == (DeliveryState.DONE, 2, None)

    def test_renew_extends_the_lease_only_for_its_holder(self, inbox: Inbox, clock: FrozenClock) -> None:
        # A worker whose handler runs longer than the lease renews it (a heartbeat), so
        # only a dead worker's claim runs out.
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        clock.advance(LEASE - 1)
        assert inbox.renew(claim.key, claim.token, LEASE) is True
        assert inbox.renew(claim.key, "not-the-token", LEASE) is False
        clock.advance(LEASE - 1)
        assert inbox.claim_due(LEASE) == []
        assert inbox.claim(entry.key, LEASE) is None
        record = inbox.get(entry.key)
        assert record is not None
        assert (record.state, record.attempts) == (DeliveryState.RUNNING, 1)
        assert record.lease_expires_at == NOW + 2 * LEASE - 1
        assert inbox.complete(claim.key, claim.token) is True
        assert inbox.renew(claim.key, claim.token, LEASE) is False  # done: nothing to renew

    def test_a_long_error_is_shortened(self, inbox: Inbox) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        inbox.fail(claim.key, claim.token, "x" * 100_000, None)
        record = inbox.get(entry.key)
        assert record is not None
        assert record.last_error is not None
        assert 100 < len(record.last_error) <= 2000

    def test_release_gives_the_claim_back_without_counting_it(self, inbox: Inbox, clock: FrozenClock) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        assert inbox.release(claim.key, claim.token, NOW + 5) is True
        record = inbox.get(entry.key)
        assert record is not None
        assert (record.state, record.attempts, record.next_attempt_at) == (DeliveryState.QUEUED, 0, NOW + 5)
        clock.advance(5)
        assert self._claim_one(inbox).record.attempts == 1

    # -- operations ----------------------------------------------------------------

    def test_get_finds_a_delivery_by_its_event_id(self, inbox: Inbox) -> None:
        entry = make_entry(event_id="evt_findme_" + uuid.uuid4().hex)
        inbox.enqueue(entry)
        record = inbox.get(entry.event_id or "")
        assert record is not None
        assert record.key == entry.key
        assert inbox.get("nothing-like-this") is None

    def test_list_filters_by_state_latest_first(self, inbox: Inbox, clock: FrozenClock) -> None:
        entries = [make_entry(received_at=NOW + i) for i in range(4)]
        for entry in entries:
            inbox.enqueue(entry)
        claim = inbox.claim(entries[0].key, LEASE)
        assert claim is not None
        inbox.fail(claim.key, claim.token, "boom", None)
        assert [r.key for r in inbox.list()] == [e.key for e in reversed(entries)]
        assert [r.key for r in inbox.list(DeliveryState.DEAD)] == [entries[0].key]
        assert [r.key for r in inbox.list(DeliveryState.QUEUED, limit=2)] == [entries[3].key, entries[2].key]
        assert inbox.list(DeliveryState.DONE) == []

    def test_list_leaves_the_bodies_out_and_get_brings_them(self, inbox: Inbox) -> None:
        # Listing 20 deliveries of 16 MiB must not load 320 MiB: a listed record's body is empty.
        entries = [make_entry(received_at=NOW + i) for i in range(3)]
        for entry in entries:
            inbox.enqueue(entry)
        listed = inbox.list()
        assert [r.key for r in listed] == [e.key for e in reversed(entries)]
        assert {r.entry.body for r in listed} == {b""}
        assert [(r.entry.event_id, r.entry.job_id, r.entry.headers) for r in listed] == [
            (e.event_id, e.job_id, e.headers) for e in reversed(entries)
        ]
        record = inbox.get(entries[0].key)
        assert record is not None
        assert record.entry.body == entries[0].body

    def test_counts_per_state(self, inbox: Inbox) -> None:
        for _ in range(3):
            inbox.enqueue(make_entry())
        claim = self._claim_one(inbox)
        inbox.complete(claim.key, claim.token)
        counts = inbox.counts()
        assert counts == {
            DeliveryState.QUEUED: 2,
            DeliveryState.RUNNING: 0,
            DeliveryState.DONE: 1,
            DeliveryState.DEAD: 0,
        }

    def test_retry_queues_dead_deliveries_now_with_a_fresh_count(self, inbox: Inbox, clock: FrozenClock) -> None:
        dead = [make_entry(), make_entry()]
        for entry in dead:
            inbox.enqueue(entry)
            claim = inbox.claim(entry.key, LEASE)
            assert claim is not None
            inbox.fail(claim.key, claim.token, "boom", None)
        alive = make_entry()
        inbox.enqueue(alive)
        clock.advance(10)
        assert inbox.retry(state=DeliveryState.DEAD) == 2
        for entry in dead:
            record = inbox.get(entry.key)
            assert record is not None
            assert (record.state, record.attempts, record.next_attempt_at) == (DeliveryState.QUEUED, 0, NOW + 10)
            assert record.last_error == "boom"
        assert {c.key for c in inbox.claim_due(LEASE, limit=10)} == {e.key for e in [*dead, alive]}

    def test_retry_by_key_or_event_id(self, inbox: Inbox) -> None:
        by_key, by_event, untouched = make_entry(), make_entry(), make_entry()
        for entry in (by_key, by_event, untouched):
            inbox.enqueue(entry)
            claim = inbox.claim(entry.key, LEASE)
            assert claim is not None
            inbox.fail(claim.key, claim.token, "boom", None)
        assert inbox.retry([by_key.key, by_event.event_id or "", "unknown"]) == 2
        states = {e.key: r.state for e in (by_key, by_event, untouched) if (r := inbox.get(e.key))}
        assert states == {
            by_key.key: DeliveryState.QUEUED,
            by_event.key: DeliveryState.QUEUED,
            untouched.key: DeliveryState.DEAD,
        }

    def test_retry_leaves_a_running_delivery_alone(self, inbox: Inbox) -> None:
        entry = make_entry()
        inbox.enqueue(entry)
        claim = self._claim_one(inbox)
        assert inbox.retry([entry.key]) == 0
        assert inbox.retry(state=DeliveryState.RUNNING) == 0
        assert inbox.complete(claim.key, claim.token) is True

    def test_purge_deletes_old_deliveries_in_one_state(self, inbox: Inbox, clock: FrozenClock) -> None:
        old, new, queued = make_entry(), make_entry(), make_entry()
        for entry in (old, new, queued):
            inbox.enqueue(entry)
        claim = inbox.claim(old.key, LEASE)
        assert claim is not None
        inbox.complete(claim.key, claim.token)
        clock.advance(100)
        claim = inbox.claim(new.key, LEASE)
        assert claim is not None
        inbox.complete(claim.key, claim.token)
        assert inbox.purge(DeliveryState.DONE, older_than=50) == 1
        assert inbox.get(old.key) is None
        assert inbox.get(new.key) is not None
        assert inbox.purge(DeliveryState.DONE) == 1
        assert inbox.get(queued.key) is not None
        assert inbox.enqueue(old) is True  # purged: a copy arriving now is new to the inbox

    def test_purge_refuses_running_deliveries(self, inbox: Inbox) -> None:
        with pytest.raises(ValueError, match="running"):
            inbox.purge(DeliveryState.RUNNING)

    # -- concurrency -----------------------------------------------------------------

    def test_threads_racing_to_enqueue_one_delivery_write_it_once(self, inbox: Inbox) -> None:
        entry, threads = make_entry(), 16
        barrier = threading.Barrier(threads)

        def write(_: int) -> bool:
            barrier.wait(timeout=30)
            return inbox.enqueue(entry)

        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(write, range(threads)))
        assert results.count(True) == 1

    def test_threads_racing_to_claim_take_each_delivery_once(self, inbox: Inbox) -> None:
        entries = [make_entry() for _ in range(40)]
        for entry in entries:
            inbox.enqueue(entry)
        threads = 8
        barrier = threading.Barrier(threads)

        def drain(_: int) -> list[str]:
            barrier.wait(timeout=30)
            taken: list[str] = []
            while claims := inbox.claim_due(LEASE, limit=3):
                taken.extend(c.key for c in claims)
            return taken

        with ThreadPoolExecutor(threads) as pool:
            taken = [key for keys in pool.map(drain, range(threads)) for key in keys]
        assert sorted(taken) == sorted(e.key for e in entries)
