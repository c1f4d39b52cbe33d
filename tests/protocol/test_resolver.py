"""Per-project secret resolvers: bounded work before the signature, and every kind of answer handled evenly.

A forged body costs a resolver-backed verifier what it costs with a static
secret; a misconfigured resolver is loud and retryable, never a permanent 401;
async resolvers run on the async path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tracemalloc
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import kreuzberg_webhooks.protocol.verify as verify_module
from kreuzberg_webhooks import (
    ConfigurationError,
    JobEvent,
    MemoryStore,
    ProjectMismatch,
    Receiver,
    Verifier,
    WebhookError,
    sign,
)
from kreuzberg_webhooks.protocol.resolver import PROJECT_ID_SCAN_LIMIT, is_async_resolver, peek_project_id
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery

SECRET = "resolver-test-secret-0123456789abcdef0123"
OTHER = "resolver-other-secret-0123456789abcdef012"
NOW = 1_800_000_000.0
PROPERTIES = settings(max_examples=300, deadline=None)


def make_verifier(resolver: Any) -> Verifier:
    return Verifier(resolver, clock=lambda: NOW)


def rejection(verifier: Verifier, body: bytes, headers: dict[str, str]) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        verifier.verify(body, headers)
    return caught.value


def async_rejection(verifier: Verifier, body: bytes, headers: dict[str, str]) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        asyncio.run(verifier.verify_async(body, headers))
    return caught.value


# -- item 1: the project_id is read from a bounded prefix ----------------------------------------------

_JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Keys that look like project_id in some spelling, or are near misses.
_KEYS = st.one_of(st.sampled_from(["project_id", "Project_id", "project_id ", "projectid", "id"]), st.text(max_size=12))


def _encode(pairs: list[tuple[str, Any]], ensure_ascii: bool, spacing: str) -> bytes:
    """A JSON object written member by member, so that duplicate keys survive."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii)

    members = [dump(key) + ":" + spacing + dump(value) for key, value in pairs]
    return ("{" + spacing + ("," + spacing).join(members) + spacing + "}").encode()


@PROPERTIES
@given(
    pairs=st.lists(st.tuples(_KEYS, _JSON), max_size=6),
    project=st.one_of(st.text(), _JSON),
    position=st.integers(min_value=0, max_value=6),
    ensure_ascii=st.booleans(),
    spacing=st.sampled_from(["", " ", "\n\t", "\r\n  "]),
    bom=st.booleans(),
)
@example(pairs=[("project_id", "a"), ("x", [1, {"project_id": "b"}])], project=5, position=1, ensure_ascii=True,
         spacing="", bom=False)  # fmt: skip
def test_the_bounded_reader_agrees_with_json_loads(
    pairs: list[tuple[str, Any]], project: Any, position: int, ensure_ascii: bool, spacing: str, bom: bool
) -> None:
    pairs = [*pairs[:position], ("project_id", project), *pairs[position:]]
    body = (b"\xef\xbb\xbf" if bom else b"") + _encode(pairs, ensure_ascii, spacing)
    assert len(body) <= PROJECT_ID_SCAN_LIMIT
    expected = json.loads(body.decode("utf-8-sig")).get("project_id")
    assert peek_project_id(body) == (expected if type(expected) is str else None)


@PROPERTIES
@given(body=st.binary(max_size=200) | st.text(alphabet='{}[]",:\\ "0123456789aeflnrstu_pjid').map(str.encode))
@example(body=b'{"project_id":"\\ud800"}')
@example(body=b'{"project_id":"a\x01"}')
def test_the_bounded_reader_never_raises_and_agrees_whenever_json_does(body: bytes) -> None:
    found = peek_project_id(body)
    try:
        decoded = json.loads(body.decode("utf-8"))
    except ValueError:
        return  # not JSON: refused after the signature check, whatever was read
    if type(decoded) is dict:
        expected = decoded.get("project_id")
        assert found == (expected if type(expected) is str else None)
    else:
        assert found is None


def test_a_project_id_past_the_limit_is_not_read() -> None:
    padding = "x" * PROJECT_ID_SCAN_LIMIT
    assert peek_project_id(json.dumps({"padding": padding, "project_id": "p"}).encode()) is None
    assert peek_project_id(json.dumps({"project_id": "p", "padding": padding}).encode()) == "p"


class Spy:
    """Counts the calls of the function it wraps."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.function(*args)


def _peak_bytes(call: Callable[[], object]) -> int:
    tracemalloc.start()
    with contextlib.suppress(WebhookError):
        call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda size: json.dumps({"project_id": "p-1", "x": "a" * size}).encode(), id="long-string"),
        pytest.param(lambda size: b'{"project_id":"p-1","x":[' + b"[" * size + b"]}", id="deep-nesting"),
        pytest.param(lambda size: b'{"project_id":"p-1","x":[' + b"1," * (size // 2) + b"1]}", id="many-numbers"),
    ],
)
def test_a_forged_large_body_is_401_with_bounded_work_before_the_signature(
    forged: Callable[[int], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = forged(16 * 1024 * 1024)
    resolver = Resolver({"p-1": SECRET})
    decode = Spy(verify_module.decode_json)
    monkeypatch.setattr(verify_module, "decode_json", decode)
    verifier = make_verifier(resolver)
    headers = {"X-Webhook-Signature": sign(body, OTHER)}
    peak = _peak_bytes(lambda: verifier.verify(body, headers))
    error = rejection(verifier, body, headers)
    assert (error.status_code, error.reason) == (401, "signature_mismatch")
    assert resolver.asked == ["p-1", "p-1"]  # the project was still found
    assert decode.calls == 0  # nothing of the body was decoded before the signature failed
    # Fixed memory: the scanned prefix and small change, whatever the body's size
    # (decoding it whole took more than the body itself).
    assert peak < 4 * PROJECT_ID_SCAN_LIMIT, peak


def test_the_static_secret_and_the_resolver_peak_alike() -> None:
    body = json.dumps({"project_id": "p-1", "x": "a" * (8 * 1024 * 1024)}).encode()
    headers = {"X-Webhook-Signature": sign(body, OTHER)}
    static = _peak_bytes(lambda: make_verifier(SECRET).verify(body, headers))
    resolved = _peak_bytes(lambda: make_verifier(Resolver({"p-1": SECRET})).verify(body, headers))
    assert resolved < static + 4 * PROJECT_ID_SCAN_LIMIT


def test_a_second_project_id_past_the_prefix_is_401_project_mismatch() -> None:
    # A tenant signs, with its own secret, a body naming its project first and
    # another one last: json keeps the last, the secrets were chosen by the first.
    body = b'{"project_id":"tenant-a","padding":"' + b"x" * PROJECT_ID_SCAN_LIMIT + b'","project_id":"tenant-b"}'
    resolver = Resolver({"tenant-a": SECRET, "tenant-b": OTHER})
    error = rejection(make_verifier(resolver), body, {"X-Webhook-Signature": sign(body, SECRET)})
    assert isinstance(error, ProjectMismatch)
    assert (error.status_code, error.reason) == (401, "project_mismatch")


def test_a_project_id_past_the_prefix_is_401_not_trusted() -> None:
    payload = {**job_event_payload(now=NOW), "padding": "x" * PROJECT_ID_SCAN_LIMIT}
    project = payload.pop("project_id")
    payload["project_id"] = project  # written last, past the prefix
    body, headers = signed_delivery(SECRET, payload)
    resolver = Resolver({None: SECRET, project: OTHER})
    error = rejection(make_verifier(resolver), body, headers)
    assert error.reason == "project_mismatch"
    assert resolver.asked == [None]


def test_a_valid_delivery_still_verifies_and_the_resolver_sees_the_same_project() -> None:
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    resolver = Resolver({payload["project_id"]: SECRET})
    assert isinstance(make_verifier(resolver).verify(body, headers), JobEvent)
    assert resolver.asked == [payload["project_id"]]


def test_an_unsigned_delivery_is_401_before_the_resolver_is_asked() -> None:
    body, _ = signed_delivery(SECRET, job_event_payload(now=NOW))
    resolver = Resolver({})
    error = rejection(make_verifier(resolver), body, {})
    assert error.reason == "missing_signature"
    assert resolver.asked == []


# -- item 12: what a resolver may answer ----------------------------------------------------------------


class Resolver:
    """Records the project ids it is asked about; answers from a table."""

    def __init__(self, table: dict[str | None, Any]) -> None:
        self.table = table
        self.asked: list[str | None] = []

    def __call__(self, project_id: str | None) -> Any:
        self.asked.append(project_id)
        return self.table.get(project_id)


async def _coroutine() -> str:
    return SECRET


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        pytest.param(lambda: {12345: SECRET}, "mapping keyed by a int", id="mapping-keyed-by-a-number"),
        pytest.param(lambda: {"project-a": 12345}, "for project 'project-a' a int", id="mapping-to-a-number"),
        pytest.param(lambda: 12345, "int", id="int"),
        pytest.param(lambda: [SECRET, 12345], "list holding a int", id="list-with-an-int"),
        pytest.param(lambda: (SECRET, None), "tuple holding a NoneType", id="tuple-with-none"),
        pytest.param(_coroutine, "awaitable", id="coroutine-from-a-sync-call"),
    ],
)
def test_a_misconfigured_resolver_is_a_loud_503_never_a_401(
    answer: Callable[[], Any], named: str, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" either
        error = rejection(make_verifier(lambda _project: answer()), body, headers)
    assert (error.status_code, error.reason) == (503, "secrets_unavailable")
    assert error.retryable  # the sender keeps the event while someone fixes the resolver
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert named in record.getMessage()
    assert "must return str, bytes, an iterable of them, or None" in record.getMessage()
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(SECRET, id="str"),
        pytest.param(SECRET.encode(), id="bytes"),
        pytest.param([OTHER, SECRET], id="list"),
        pytest.param((OTHER.encode(), SECRET), id="tuple-mixed"),
        pytest.param(frozenset({SECRET}), id="frozenset"),
        pytest.param(bytearray(SECRET.encode()), id="bytearray"),
        pytest.param(memoryview(SECRET.encode()), id="memoryview"),
        pytest.param([OTHER, bytearray(SECRET.encode())], id="list-of-bytearray"),
        pytest.param({"project-a": [OTHER, memoryview(SECRET.encode())]}, id="mapping-of-projects"),
        pytest.param("generator", id="generator"),
    ],
)
def test_every_accepted_answer_verifies(answer: Any) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))

    def resolver(_project: str | None) -> Any:
        return (s for s in [OTHER, SECRET]) if answer == "generator" else answer

    assert isinstance(make_verifier(resolver).verify(body, headers), JobEvent)
    assert isinstance(asyncio.run(make_verifier(resolver).verify_async(body, headers)), JobEvent)


class AsyncResolver:
    """An object whose ``__call__`` is a coroutine function."""

    def __init__(self, table: dict[str | None, Any]) -> None:
        self.table = table

    async def __call__(self, project_id: str | None) -> Any:
        await asyncio.sleep(0)
        return self.table.get(project_id)


def _async_function(table: dict[str | None, Any]) -> Callable[[str | None], Awaitable[Any]]:
    async def resolve(project_id: str | None) -> Any:
        return table.get(project_id)

    return resolve


@pytest.mark.parametrize("make", [AsyncResolver, _async_function], ids=["async-call-object", "async-function"])
def test_an_async_resolver_is_awaited_on_the_async_path(make: Callable[[dict[str | None, Any]], Any]) -> None:
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    verifier = make_verifier(make({payload["project_id"]: [OTHER, SECRET]}))
    assert verifier.is_async
    assert is_async_resolver(verifier._resolver)
    event = asyncio.run(verifier.verify_async(body, headers))
    assert isinstance(event, JobEvent)
    assert str(event.project_id) == payload["project_id"]
    unknown = async_rejection(make_verifier(make({})), body, headers)
    assert (unknown.status_code, unknown.reason) == (401, "unknown_project")


@pytest.mark.parametrize("make", [AsyncResolver, _async_function], ids=["async-call-object", "async-function"])
def test_the_sync_path_refuses_an_async_resolver_as_a_configuration_error(
    make: Callable[[dict[str | None, Any]], Any],
) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    verifier = make_verifier(make({}))
    with pytest.raises(ConfigurationError, match="verify_async"):
        verifier.verify(body, headers)


def test_a_sync_resolver_works_on_the_async_path_and_an_awaitable_answer_is_awaited() -> None:
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    assert not make_verifier(Resolver({})).is_async
    assert isinstance(
        asyncio.run(make_verifier(Resolver({payload["project_id"]: SECRET})).verify_async(body, headers)), JobEvent
    )
    # A lambda returning a coroutine cannot be told apart before it is called: awaited here.
    assert isinstance(asyncio.run(make_verifier(lambda _project: _coroutine()).verify_async(body, headers)), JobEvent)


def test_a_raising_async_resolver_is_503_with_the_traceback_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def failing(_project: str | None) -> str:
        raise ConnectionError("the secrets vault is down")

    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    error = async_rejection(make_verifier(failing), body, headers)
    assert (error.status_code, error.reason) == (503, "secrets_unavailable")
    (record,) = [r for r in caplog.records if "resolver raised" in r.getMessage()]
    assert record.exc_info is not None


def test_a_misconfigured_async_resolver_is_a_loud_503(caplog: pytest.LogCaptureFixture) -> None:
    async def wrong(_project: str | None) -> dict[int, str]:
        return {42: SECRET}

    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    error = async_rejection(make_verifier(wrong), body, headers)
    assert (error.status_code, error.reason) == (503, "secrets_unavailable")
    assert "returned a mapping keyed by a int" in caplog.text


def test_verify_async_checks_like_verify() -> None:
    payload = job_event_payload(now=NOW - 3 * 24 * 3600)
    body, headers = signed_delivery(SECRET, payload)
    verifier = make_verifier(_async_function({payload["project_id"]: SECRET}))
    assert async_rejection(verifier, body, headers).reason == "stale_timestamp"
    assert async_rejection(verifier, body, {"X-Webhook-Signature": sign(body, OTHER)}).reason == "signature_mismatch"
    assert async_rejection(verifier, b"x" * (verifier.max_body_size + 1), headers).reason == "payload_too_large"


# -- through the receiver ---------------------------------------------------------------------


def test_an_async_resolver_serves_the_receivers_async_path_and_scopes_the_key() -> None:
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    receiver = Receiver(_async_function({payload["project_id"]: SECRET}), store=MemoryStore(), clock=lambda: NOW)
    seen: list[Any] = []
    receiver.on()(seen.append)
    first = asyncio.run(receiver.handle_async(body, headers))
    again = asyncio.run(receiver.handle_async(body, headers))
    assert (first.reason, again.reason) == ("processed", "duplicate")
    assert [str(event.job_id) for event in seen] == [payload["job_id"]]
    assert asyncio.run(receiver.verifier.verify_scoped_async(body, headers)).scope == payload["project_id"]
    with pytest.raises(ConfigurationError, match="coroutine function"):
        receiver.handle(body, headers)  # the sync path cannot await it: a setup error, not a 503 per delivery
