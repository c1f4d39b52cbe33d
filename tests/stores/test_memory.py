"""MemoryStore: the store contract, plus its bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    Claim,
    ClaimState,
    ConfigurationError,
    MemoryStore,
    Receiver,
    ReplayStore,
    StoreUnavailable,
)
from kreuzberg_webhooks.testing import signed_delivery

from .contract import NOW, SECRET, FrozenClock, StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return MemoryStore(clock=clock)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def test_a_store_full_of_keys_in_flight_refuses_new_keys(clock: FrozenClock) -> None:
    store = MemoryStore(3, clock=clock)
    for key in ("a", "b", "c"):
        store.claim(key, 30)
    with pytest.raises(StoreUnavailable):
        store.claim("d", 30)
    assert len(store) == 3
    assert store.claim("a", 30).state is ClaimState.IN_FLIGHT  # the refusal let go of the store's lock


def test_a_full_store_still_answers_for_the_keys_it_holds(clock: FrozenClock) -> None:
    store = MemoryStore(2, when_full="refuse", clock=clock)
    token = store.claim("a", 30).token
    assert token is not None
    store.complete("a", token, 600)
    store.claim("b", 30)
    assert store.claim("a", 30).state is ClaimState.DONE
    assert store.claim("b", 30).state is ClaimState.IN_FLIGHT


def test_expired_keys_make_room(clock: FrozenClock) -> None:
    store = MemoryStore(2, clock=clock)
    store.claim("a", 30)
    store.claim("b", 60)
    clock.advance(31)
    assert store.claim("c", 30).state is ClaimState.NEW
    assert len(store) == 2


def test_a_key_added_after_a_purge_that_expires_first_still_makes_room(clock: FrozenClock) -> None:
    # The purge schedule must follow the earliest expiry, including entries added after the last purge.
    store = MemoryStore(2, clock=clock)
    store.claim("short", 30)
    token = store.claim("long", 30).token
    assert token is not None
    store.complete("long", token, 1000)
    clock.advance(31)
    assert store.claim("c", 30).state is ClaimState.NEW  # purges "short"; "long" lives on
    clock.advance(31)
    assert store.claim("d", 30).state is ClaimState.NEW  # "c" has expired in the meantime


def test_released_keys_make_room(clock: FrozenClock) -> None:
    store = MemoryStore(1, clock=clock)
    token = store.claim("a", 30).token
    assert token is not None
    store.release("a", token)
    assert store.claim("b", 30).state is ClaimState.NEW


def test_a_full_store_makes_the_receiver_answer_503() -> None:
    store = MemoryStore(1)
    store.claim("someone-else", 120)  # in flight: never evicted
    receiver = Receiver(SECRET, store=store, clock=lambda: NOW)
    seen: list[object] = []
    receiver.on()(seen.append)
    body, headers = signed_delivery(SECRET, now=NOW)
    outcome = receiver.handle(body, headers)
    assert (outcome.status_code, outcome.reason) == (503, "store_unavailable")
    assert seen == []


def test_clear_forgets_everything(clock: FrozenClock) -> None:
    store = MemoryStore(clock=clock)
    store.claim("a", 30)
    store.clear()
    assert len(store) == 0
    assert store.claim("a", 30).state is ClaimState.NEW


def _done(store: MemoryStore, key: str) -> None:
    token = store.claim(key, 30).token
    assert token is not None
    store.complete(key, token, 600)


def test_a_full_store_forgets_the_oldest_processed_key_for_a_new_one(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(3, clock=clock)
    _done(store, "a")
    _done(store, "b")
    store.claim("in-flight", 30)
    assert store.claim("new", 30).state is ClaimState.NEW  # "a", the oldest processed key, made room
    assert len(store) == 3
    assert store.claim("b", 30).state is ClaimState.DONE
    assert store.claim("in-flight", 30).state is ClaimState.IN_FLIGHT  # never evicted
    assert store.claim("a", 30).state is ClaimState.NEW  # forgotten: "b" goes this time
    with pytest.raises(StoreUnavailable):  # three keys in flight: nothing may be forgotten
        store.claim("b", 30)
    assert "forgot the oldest processed event" in caplog.text


def test_completion_order_decides_which_key_is_oldest(clock: FrozenClock) -> None:
    store = MemoryStore(2, clock=clock)
    first = store.claim("claimed-first", 30).token
    _done(store, "done-first")
    assert first is not None
    store.complete("claimed-first", first, 600)  # done last, so kept longest
    assert store.claim("new", 30).state is ClaimState.NEW
    assert store.claim("claimed-first", 30).state is ClaimState.DONE


def test_the_store_warns_long_before_it_is_full(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore(10, clock=clock)
    for n in range(7):
        _done(store, f"k{n}")
    assert "replay store holds" not in caplog.text
    _done(store, "k7")  # 8 of 10
    assert "holds 8 of its 10 keys" in caplog.text


def test_the_store_warns_that_it_is_filling_up_once(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore(10, when_full="refuse", clock=clock)
    for n in range(10):
        _done(store, f"k{n}")
    clock.advance(601)  # every key expires: the next claims purge them and fill the store again
    for n in range(10, 19):
        _done(store, f"k{n}")
    assert caplog.text.count("replay store holds") == 1


def test_a_new_claim_is_a_claim_like_any_other(clock: FrozenClock) -> None:
    claim = MemoryStore(clock=clock).claim("k", 30)
    assert type(claim) is Claim
    assert claim == Claim(ClaimState.NEW, claim.token) == (ClaimState.NEW, claim.token, 0.0)
    assert (claim.state, claim.retry_after) == (ClaimState.NEW, 0.0)
    assert claim._asdict() == {"state": ClaimState.NEW, "token": claim.token, "retry_after": 0.0}


def test_the_default_receiver_never_turns_a_new_event_into_503_at_ordinary_load() -> None:
    # A small bound stands in for 100,000 events in a day: every new event is still processed.
    receiver = Receiver(SECRET, store=MemoryStore(5), clock=lambda: NOW)
    seen: list[object] = []
    receiver.on()(seen.append)
    answers = [receiver.handle(*signed_delivery(SECRET, now=NOW)).status_code for _ in range(20)]
    assert answers == [200] * 20
    assert len(seen) == 20


def test_refuse_keeps_every_live_key_and_answers_503(clock: FrozenClock) -> None:
    store = MemoryStore(1, when_full="refuse", clock=clock)
    _done(store, "a")
    with pytest.raises(StoreUnavailable):
        store.claim("b", 30)
    assert store.claim("a", 30).state is ClaimState.DONE


def test_an_unknown_when_full_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="when_full"):
        MemoryStore(when_full="drop")  # type: ignore[arg-type]


@pytest.mark.parametrize("max_entries", [0, -1, 1.5, "10"], ids=["zero", "negative", "float", "str"])
def test_invalid_bounds_are_refused(max_entries: object) -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore(max_entries)  # type: ignore[arg-type]


def test_is_called_inline_by_the_async_receiver() -> None:
    assert MemoryStore.nonblocking is True


# -- renew against a tiny model --------------------------------------------------------------

KEYS = ("a", "b")
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.sampled_from(KEYS), st.integers(1, 5)),
        st.tuples(st.just("renew"), st.sampled_from(KEYS), st.integers(0, 6), st.integers(1, 5)),
        st.tuples(st.just("complete"), st.sampled_from(KEYS), st.integers(0, 6), st.integers(1, 20)),
        st.tuples(st.just("release"), st.sampled_from(KEYS), st.integers(0, 6)),
        st.tuples(st.just("advance"), st.integers(0, 6)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_operations)
def test_claims_renewals_completions_and_releases_follow_the_model(operations: list[tuple[object, ...]]) -> None:
    # The model: key -> (holder token, or None once done; expires_at). A claim is live while
    # expires_at > now; an expired entry still belongs to its token until someone claims the key.
    clock = FrozenClock(0.0)
    store = MemoryStore(clock=clock)
    model: dict[str, tuple[str | None, float]] = {}
    tokens: list[str] = []

    def token_at(index: object) -> str:
        assert isinstance(index, int)
        return tokens[index] if index < len(tokens) else f"never-issued-{index}"

    for operation in operations:
        name, now = operation[0], clock()
        if name == "advance":
            assert isinstance(operation[1], int)
            clock.advance(operation[1])
            continue
        key = operation[1]
        assert isinstance(key, str)
        entry = model.get(key)
        if name == "claim":
            lease = operation[2]
            assert isinstance(lease, int)
            claim = store.claim(key, lease)
            if entry is not None and entry[1] > now:
                if entry[0] is None:
                    assert claim == Claim(ClaimState.DONE)
                else:
                    assert claim == Claim(ClaimState.IN_FLIGHT, None, entry[1] - now)
            else:
                assert claim.state is ClaimState.NEW
                assert claim.token is not None
                assert claim.token not in tokens
                tokens.append(claim.token)
                model[key] = (claim.token, now + lease)
        elif name == "renew":
            token, lease = token_at(operation[2]), operation[3]
            assert isinstance(lease, int)
            holds = entry is not None and entry[0] == token
            assert store.renew(key, token, lease) is holds
            if holds:
                model[key] = (token, now + lease)
        elif name == "complete":
            retention = operation[3]
            assert isinstance(retention, int)
            store.complete(key, token_at(operation[2]), retention)
            model[key] = (None, now + retention)
        else:
            token = token_at(operation[2])
            store.release(key, token)
            if entry is not None and entry[0] == token:
                del model[key]
