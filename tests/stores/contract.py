"""The contract every replay store honours, as one class of test cases.

How to plug a store in
----------------------

Subclass :class:`StoreContract` in ``tests/stores/test_<name>.py`` (the class
name must start with ``Test``) and implement :meth:`StoreContract.make_store`::

    class TestMemoryStore(StoreContract):
        def make_store(self, clock: FrozenClock) -> ReplayStore:
            return MemoryStore(clock=clock)

Time. Every case that needs time to pass calls ``self.advance(clock, s)``.
The default moves the injected :class:`FrozenClock`, so a store that takes a
``clock=`` argument is tested instantly and exactly. A store whose time lives
elsewhere (Redis keeps TTLs on the server) ignores *clock*, overrides
:meth:`StoreContract.advance` to let real time pass, and scales the durations
down through the class attributes::

    class TestRedisStore(StoreContract):
        LEASE, RETENTION, TICK = 0.4, 0.8, 0.15   # seconds of real time

        def make_store(self, clock: FrozenClock) -> ReplayStore:
            return RedisStore(client)             # real server, clock unused

        def advance(self, clock: FrozenClock, seconds: float) -> None:
            time.sleep(seconds)                   # waiting for a TTL, not for a race

``TICK`` is the smallest step the cases rely on: "just before expiry" is
``LEASE - TICK`` and "just after" is ``LEASE + TICK``.

Other hooks, all optional: :meth:`StoreContract.make_async_store` (the store
the async-receiver cases use; default: ``make_store``, which the receiver runs
in a worker thread or inline) and :meth:`StoreContract.close_store`.

Every case uses fresh random keys, so a store backed by a shared server needs
no flushing between cases.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kreuzberg_webhooks import (
    AsyncReplayStore,
    Claim,
    ClaimState,
    Event,
    Outcome,
    Receiver,
    ReplayStore,
    ReplayWindow,
    testing,
)
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery

__all__ = ["FrozenClock", "StoreContract"]

SECRET = "store-contract-secret-0123456789abcdef"
NOW = 1_800_000_000.0


class FrozenClock(testing.FrozenClock):
    """The package's frozen clock, starting at this suite's fixed time."""

    def __init__(self, now: float = NOW) -> None:
        super().__init__(now)


def new_key() -> str:
    return f"|contract-{uuid.uuid4().hex}|job.completed"


async def _call(store: ReplayStore | AsyncReplayStore, name: str, *args: Any) -> Any:
    result = getattr(store, name)(*args)
    return await result if inspect.isawaitable(result) else result


class StoreContract:
    """Cases every replay store passes; subclasses implement :meth:`make_store`."""

    #: Seconds a claim is leased for in these cases.
    LEASE: float = 30.0
    #: Seconds a completed key is remembered in these cases.
    RETENTION: float = 600.0
    #: The smallest step of time the cases rely on.
    TICK: float = 1.0
    #: Threads racing for one key.
    THREADS: int = 50

    # -- hooks -----------------------------------------------------------------

    def make_store(self, clock: FrozenClock) -> ReplayStore:
        """A fresh store reading time from *clock* (or ignoring it, see the module docstring)."""
        raise NotImplementedError

    def make_async_store(self, clock: FrozenClock) -> ReplayStore | AsyncReplayStore:
        """The store the async-receiver cases use."""
        return self.make_store(clock)

    def advance(self, clock: FrozenClock, seconds: float) -> None:
        """Let *seconds* pass for the store."""
        clock.advance(seconds)

    def close_store(self, store: ReplayStore | AsyncReplayStore) -> None:
        """Release what the store holds (connections, files)."""
        close = getattr(store, "close", None)
        if close is not None and not inspect.iscoroutinefunction(close):
            close()

    # -- fixtures --------------------------------------------------------------

    @pytest.fixture
    def clock(self) -> FrozenClock:
        return FrozenClock()

    @pytest.fixture
    def store(self, clock: FrozenClock) -> Iterator[ReplayStore]:
        store = self.make_store(clock)
        yield store
        self.close_store(store)

    # -- one key's life --------------------------------------------------------

    def test_first_claim_is_new_with_a_token(self, store: ReplayStore) -> None:
        claim = store.claim(new_key(), self.LEASE)
        assert claim.state is ClaimState.NEW
        assert isinstance(claim.token, str)
        assert claim.token

    def test_second_claim_while_leased_is_in_flight(self, store: ReplayStore) -> None:
        key = new_key()
        store.claim(key, self.LEASE)
        claim = store.claim(key, self.LEASE)
        assert claim.state is ClaimState.IN_FLIGHT
        assert claim.token is None
        assert 0 < claim.retry_after <= self.LEASE

    def test_in_flight_retry_after_is_what_is_left_of_the_lease(self, store: ReplayStore, clock: FrozenClock) -> None:
        key = new_key()
        store.claim(key, self.LEASE)
        self.advance(clock, self.LEASE / 2)
        claim = store.claim(key, self.LEASE)
        assert claim.state is ClaimState.IN_FLIGHT
        assert 0 < claim.retry_after <= self.LEASE / 2 + self.TICK / 10

    def test_completed_key_is_done(self, store: ReplayStore) -> None:
        key = new_key()
        token = store.claim(key, self.LEASE).token
        assert token is not None
        store.complete(key, token, self.RETENTION)
        assert store.claim(key, self.LEASE).state is ClaimState.DONE

    def test_new_then_in_flight_then_done(self, store: ReplayStore) -> None:
        key = new_key()
        first = store.claim(key, self.LEASE)
        second = store.claim(key, self.LEASE)
        assert first.token is not None
        store.complete(key, first.token, self.RETENTION)
        third = store.claim(key, self.LEASE)
        assert [first.state, second.state, third.state] == [ClaimState.NEW, ClaimState.IN_FLIGHT, ClaimState.DONE]

    def test_keys_are_independent(self, store: ReplayStore) -> None:
        key_a, key_b = new_key(), new_key()
        token = store.claim(key_a, self.LEASE).token
        assert token is not None
        assert store.claim(key_b, self.LEASE).state is ClaimState.NEW
        store.complete(key_a, token, self.RETENTION)
        assert store.claim(key_b, self.LEASE).state is ClaimState.IN_FLIGHT

    # -- release ---------------------------------------------------------------

    def test_release_by_the_owner_frees_the_key(self, store: ReplayStore) -> None:
        key = new_key()
        token = store.claim(key, self.LEASE).token
        assert token is not None
        store.release(key, token)
        assert store.claim(key, self.LEASE).state is ClaimState.NEW

    def test_release_with_a_wrong_token_keeps_the_claim(self, store: ReplayStore) -> None:
        key = new_key()
        store.claim(key, self.LEASE)
        store.release(key, "not-the-token")
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT

    def test_release_after_complete_keeps_the_key_done(self, store: ReplayStore) -> None:
        key = new_key()
        token = store.claim(key, self.LEASE).token
        assert token is not None
        store.complete(key, token, self.RETENTION)
        store.release(key, token)
        assert store.claim(key, self.LEASE).state is ClaimState.DONE

    def test_release_of_an_unknown_key_is_harmless(self, store: ReplayStore) -> None:
        key = new_key()
        store.release(key, "whatever")
        assert store.claim(key, self.LEASE).state is ClaimState.NEW

    @pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf")], ids=["zero", "negative", "nan", "inf"])
    def test_a_lease_or_retention_that_cannot_work_is_refused(self, store: ReplayStore, seconds: float) -> None:
        # Refused when handed over, not stored to fail later:
        # an infinite retention or lease must never reach the store's expiry.
        key = new_key()
        with pytest.raises(ValueError, match="lease"):
            store.claim(key, seconds)
        claim = store.claim(key, self.LEASE)
        assert claim.state is ClaimState.NEW
        assert claim.token is not None
        with pytest.raises(ValueError, match="retention"):
            store.complete(key, claim.token, seconds)
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT  # the claim is as it was

    def test_tokens_differ_between_claims(self, store: ReplayStore) -> None:
        key = new_key()
        first = store.claim(key, self.LEASE).token
        assert first is not None
        store.release(key, first)
        second = store.claim(key, self.LEASE).token
        assert second is not None
        assert first != second

    # -- time ------------------------------------------------------------------

    def test_lease_holds_until_it_expires(self, store: ReplayStore, clock: FrozenClock) -> None:
        key = new_key()
        store.claim(key, self.LEASE)
        self.advance(clock, self.LEASE - self.TICK)
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT

    def test_expired_lease_can_be_claimed_again(self, store: ReplayStore, clock: FrozenClock) -> None:
        key = new_key()
        store.claim(key, self.LEASE)
        self.advance(clock, self.LEASE + self.TICK)
        claim = store.claim(key, self.LEASE)
        assert claim.state is ClaimState.NEW
        assert claim.token is not None

    def test_the_dead_owner_cannot_release_a_reclaimed_key(self, store: ReplayStore, clock: FrozenClock) -> None:
        # A worker that outlived its lease must not free the key its successor holds.
        key = new_key()
        stale = store.claim(key, self.LEASE).token
        assert stale is not None
        self.advance(clock, self.LEASE + self.TICK)
        assert store.claim(key, self.LEASE).state is ClaimState.NEW
        store.release(key, stale)
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT

    def test_done_is_remembered_for_the_retention(self, store: ReplayStore, clock: FrozenClock) -> None:
        key = new_key()
        token = store.claim(key, self.LEASE).token
        assert token is not None
        store.complete(key, token, self.RETENTION)
        self.advance(clock, self.RETENTION - self.TICK)
        assert store.claim(key, self.LEASE).state is ClaimState.DONE

    def test_done_is_forgotten_after_the_retention(self, store: ReplayStore, clock: FrozenClock) -> None:
        key = new_key()
        token = store.claim(key, self.LEASE).token
        assert token is not None
        store.complete(key, token, self.RETENTION)
        self.advance(clock, self.RETENTION + self.TICK)
        assert store.claim(key, self.LEASE).state is ClaimState.NEW

    def test_retention_counts_from_completion_not_from_the_claim(self, store: ReplayStore, clock: FrozenClock) -> None:
        key = new_key()
        token = store.claim(key, self.LEASE).token
        assert token is not None
        self.advance(clock, self.LEASE - self.TICK)
        store.complete(key, token, self.RETENTION)
        self.advance(clock, self.RETENTION - self.TICK)
        assert store.claim(key, self.LEASE).state is ClaimState.DONE

    # -- renew (the receiver's heartbeat while the handlers run) ---------------

    def _held(self, store: ReplayStore) -> tuple[str, str]:
        key = new_key()
        token = store.claim(key, self.LEASE).token
        assert token is not None
        return key, token

    def test_renew_keeps_a_claim_past_its_original_lease(self, store: ReplayStore, clock: FrozenClock) -> None:
        key, token = self._held(store)
        self.advance(clock, self.LEASE - self.TICK)
        assert store.renew(key, token, self.LEASE) is True
        self.advance(clock, 2 * self.TICK)  # past the original lease, inside the renewed one
        claim = store.claim(key, self.LEASE)
        assert claim.state is ClaimState.IN_FLIGHT
        assert 0 < claim.retry_after <= self.LEASE

    def test_renewals_keep_a_claim_through_several_leases(self, store: ReplayStore, clock: FrozenClock) -> None:
        key, token = self._held(store)
        for _ in range(3):
            self.advance(clock, self.LEASE / 2)
            assert store.renew(key, token, self.LEASE) is True
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT

    def test_a_renewed_claim_ends_with_its_lease(self, store: ReplayStore, clock: FrozenClock) -> None:
        key, token = self._held(store)
        self.advance(clock, self.LEASE / 2)
        assert store.renew(key, token, self.LEASE) is True
        self.advance(clock, self.LEASE + self.TICK)  # no renewal since: a dead worker's claim is freed
        assert store.claim(key, self.LEASE).state is ClaimState.NEW

    def test_renew_with_a_wrong_token_is_false_and_changes_nothing(
        self, store: ReplayStore, clock: FrozenClock
    ) -> None:
        key, _ = self._held(store)
        self.advance(clock, self.LEASE - self.TICK)
        assert store.renew(key, "not-the-token", self.LEASE) is False
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT
        self.advance(clock, 2 * self.TICK)  # the original lease ran out: the renewal did not move it
        assert store.claim(key, self.LEASE).state is ClaimState.NEW

    def test_renew_after_complete_is_false_and_the_key_stays_done(self, store: ReplayStore, clock: FrozenClock) -> None:
        key, token = self._held(store)
        store.complete(key, token, self.RETENTION)
        assert store.renew(key, token, self.LEASE) is False
        self.advance(clock, self.LEASE + self.TICK)  # the renewal did not shorten the retention to a lease
        assert store.claim(key, self.LEASE).state is ClaimState.DONE

    def test_renew_after_release_is_false_and_the_key_stays_free(self, store: ReplayStore) -> None:
        key, token = self._held(store)
        store.release(key, token)
        assert store.renew(key, token, self.LEASE) is False
        assert store.claim(key, self.LEASE).state is ClaimState.NEW

    def test_renew_of_an_unknown_key_is_false(self, store: ReplayStore) -> None:
        key = new_key()
        assert store.renew(key, "whatever", self.LEASE) is False
        assert store.claim(key, self.LEASE).state is ClaimState.NEW

    def test_renew_after_an_expiry_and_a_takeover_is_false(self, store: ReplayStore, clock: FrozenClock) -> None:
        # A worker that outlived its lease must not extend the claim its successor holds.
        key, stale = self._held(store)
        self.advance(clock, self.LEASE + self.TICK)
        successor = store.claim(key, self.LEASE)
        assert successor.state is ClaimState.NEW
        assert successor.token is not None
        assert store.renew(key, stale, self.LEASE) is False
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT
        store.release(key, stale)  # the stale token holds nothing: the successor keeps its claim
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT
        assert store.renew(key, successor.token, self.LEASE) is True

    def test_renew_of_an_expired_claim_nobody_took_is_true_only_if_it_still_holds(
        self, store: ReplayStore, clock: FrozenClock
    ) -> None:
        # Either answer is allowed (a store may already have forgotten it), but the answer must be true.
        key, token = self._held(store)
        self.advance(clock, self.LEASE + self.TICK)
        renewed = store.renew(key, token, self.LEASE)
        assert isinstance(renewed, bool)
        assert store.claim(key, self.LEASE).state is (ClaimState.IN_FLIGHT if renewed else ClaimState.NEW)

    def test_a_renewed_claim_is_completed_and_released_by_its_token(self, store: ReplayStore) -> None:
        done_key, done_token = self._held(store)
        assert store.renew(done_key, done_token, self.LEASE) is True
        store.complete(done_key, done_token, self.RETENTION)
        assert store.claim(done_key, self.LEASE).state is ClaimState.DONE
        freed_key, freed_token = self._held(store)
        assert store.renew(freed_key, freed_token, self.LEASE) is True
        store.release(freed_key, freed_token)
        assert store.claim(freed_key, self.LEASE).state is ClaimState.NEW

    @pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf")], ids=["zero", "negative", "nan", "inf"])
    def test_a_renewal_lease_that_cannot_work_is_refused(self, store: ReplayStore, seconds: float) -> None:
        key, token = self._held(store)
        with pytest.raises(ValueError, match="lease"):
            store.renew(key, token, seconds)
        assert store.claim(key, self.LEASE).state is ClaimState.IN_FLIGHT  # the claim is as it was
        assert store.renew(key, token, self.LEASE) is True

    def test_the_async_store_renews_a_claim(self, clock: FrozenClock) -> None:
        async def scenario() -> tuple[bool, bool, bool, ClaimState, ClaimState]:
            store = self.make_async_store(clock)
            key = new_key()
            claim = await _call(store, "claim", key, self.LEASE)
            assert claim.token is not None
            renewed = await _call(store, "renew", key, claim.token, self.LEASE)
            wrong = await _call(store, "renew", key, "not-the-token", self.LEASE)
            held = (await _call(store, "claim", key, self.LEASE)).state
            await _call(store, "complete", key, claim.token, self.RETENTION)
            after_complete = await _call(store, "renew", key, claim.token, self.LEASE)
            done = (await _call(store, "claim", key, self.LEASE)).state
            await self._aclose(store)
            return renewed, wrong, after_complete, held, done

        assert asyncio.run(scenario()) == (True, False, False, ClaimState.IN_FLIGHT, ClaimState.DONE)

    # -- concurrency -----------------------------------------------------------

    def test_threads_racing_for_one_key_get_exactly_one_new(self, store: ReplayStore) -> None:
        key = new_key()
        barrier = threading.Barrier(self.THREADS)

        def claim() -> Claim:
            barrier.wait(timeout=30)
            return store.claim(key, self.LEASE)

        with ThreadPoolExecutor(self.THREADS) as pool:
            claims = list(pool.map(lambda _: claim(), range(self.THREADS)))
        states = [c.state for c in claims]
        assert states.count(ClaimState.NEW) == 1
        assert states.count(ClaimState.IN_FLIGHT) == self.THREADS - 1

    def test_threads_racing_for_many_keys_get_one_new_per_key(self, store: ReplayStore) -> None:
        keys = [new_key() for _ in range(20)]
        workers = 8
        barrier = threading.Barrier(workers)

        def claim_all(_: int) -> list[ClaimState]:
            barrier.wait(timeout=30)
            return [store.claim(key, self.LEASE).state for key in keys]

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(claim_all, range(workers)))
        for index in range(len(keys)):
            assert [states[index] for states in results].count(ClaimState.NEW) == 1

    # -- through the receiver's async path -------------------------------------

    def _receiver(self, store: ReplayStore | AsyncReplayStore) -> Receiver:
        return Receiver(
            SECRET, store=store, lease=self.LEASE, clock=lambda: NOW, window=ReplayWindow(max_age=60, max_future=60)
        )

    def test_async_receiver_runs_the_handler_once_for_concurrent_copies(self, clock: FrozenClock) -> None:
        copies = 10

        async def scenario() -> tuple[list[Outcome], Outcome, list[Event]]:
            store = self.make_async_store(clock)
            receiver = self._receiver(store)
            seen: list[Event] = []
            gate = asyncio.Event()

            @receiver.on()
            async def handler(event: Event) -> None:
                seen.append(event)
                await gate.wait()

            body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
            tasks = [asyncio.create_task(receiver.handle_async(body, headers)) for _ in range(copies)]
            # The owner blocks in the handler; wait (with a deadline) for every other copy to be refused.
            async with asyncio.timeout(30):
                while sum(task.done() for task in tasks) < copies - 1:
                    await asyncio.sleep(0.005)
            gate.set()
            outcomes = await asyncio.gather(*tasks)
            again = await receiver.handle_async(body, headers)
            await self._aclose(store)
            return outcomes, again, seen

        outcomes, again, seen = asyncio.run(scenario())
        assert sorted(o.status_code for o in outcomes) == [200] + [429] * (copies - 1)
        assert all(dict(o.headers)["retry-after"].isdigit() for o in outcomes if o.status_code == 429)
        assert (again.status_code, again.reason) == (200, "duplicate")
        assert len(seen) == 1

    def test_async_receiver_releases_the_claim_when_the_handler_fails(self, clock: FrozenClock) -> None:
        async def scenario() -> tuple[Outcome, Outcome, Outcome, int]:
            store = self.make_async_store(clock)
            receiver = self._receiver(store)
            calls = 0

            @receiver.on("job.completed")
            async def handler(event: Event) -> None:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise RuntimeError("first attempt fails")

            body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
            first = await receiver.handle_async(body, headers)
            retry = await receiver.handle_async(body, headers)
            again = await receiver.handle_async(body, headers)
            await self._aclose(store)
            return first, retry, again, calls

        first, retry, again, calls = asyncio.run(scenario())
        assert (first.status_code, first.reason) == (500, "handler_error")
        assert (retry.status_code, retry.reason) == (200, "processed")
        assert (again.status_code, again.reason) == (200, "duplicate")
        assert calls == 2

    def test_sync_receiver_answers_in_flight_while_another_request_holds_the_event(self, store: ReplayStore) -> None:
        receiver = self._receiver(store)
        payload = job_event_payload(now=NOW)
        body, headers = signed_delivery(SECRET, payload)
        holder = store.claim(parse_event(payload).dedup_key, self.LEASE)
        assert holder.state is ClaimState.NEW
        outcome = receiver.handle(body, headers)
        assert (outcome.status_code, outcome.reason) == (429, "in_flight")
        assert 1 <= int(dict(outcome.headers)["retry-after"]) <= max(1, int(self.LEASE) + 1)

    async def _aclose(self, store: ReplayStore | AsyncReplayStore) -> None:
        for name in ("aclose", "close"):
            close = getattr(store, name, None)
            if close is not None:
                await _call(store, name)
                return
