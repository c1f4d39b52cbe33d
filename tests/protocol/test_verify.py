"""The Verifier: configuration, secrets (rotation, resolver), JSON edge cases, replay window, size, logging."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_SIGNATURE_HEADER,
    ConfigurationError,
    InvalidPayload,
    JobDocument,
    JobEvent,
    MemoryStore,
    PayloadTooLarge,
    Receiver,
    ReplayWindow,
    Verifier,
    WeakSecretWarning,
    sign,
)
from kreuzberg_webhooks.protocol.verify import Verified
from kreuzberg_webhooks.testing import job_document_payload, job_event_payload, signed_delivery
from tests.errors import error_from
from tests.protocol.support import (
    HOUR,
    NOW,
    OLD_SECRET,
    SECRET,
    VALID,
    WINDOW,
    event_body,
    make_verifier,
    rejection,
    signed,
)

# -- construction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty-str"),
        pytest.param(b"", id="empty-bytes"),
        pytest.param([], id="empty-list"),
        pytest.param([SECRET, ""], id="one-empty-among-several"),
        pytest.param(42, id="int"),
        pytest.param([SECRET, 42], id="int-among-several"),
    ],
)
def test_an_empty_or_missing_secret_is_refused(secrets: Any) -> None:
    with pytest.raises(ConfigurationError):
        Verifier(secrets)


def test_a_short_secret_warns() -> None:
    with pytest.warns(WeakSecretWarning, match="31 bytes"):
        Verifier("s" * 31)


def test_a_32_byte_secret_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Verifier("s" * 32)
        Verifier(["s" * 32, b"b" * 40])


def test_the_secret_length_is_counted_in_utf8_bytes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Verifier("ü" * 16)  # 16 characters, 32 bytes


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_body_size": 0}, id="zero-body-size"),
        pytest.param({"max_body_size": -1}, id="negative-body-size"),
        pytest.param({"max_body_size": 1.5}, id="float-body-size"),
        pytest.param({"max_body_size": True}, id="bool-body-size"),
        pytest.param({"max_body_size": "1024"}, id="str-body-size"),
        pytest.param({"header": ""}, id="empty-header"),
        pytest.param({"header": "  "}, id="blank-header"),
        pytest.param({"header": "X-Signatür"}, id="non-ascii-header"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Verifier(SECRET, **options)


def test_the_defaults() -> None:
    verifier = Verifier(SECRET)
    assert verifier.header == DEFAULT_SIGNATURE_HEADER == "X-Webhook-Signature"
    assert verifier.max_body_size == DEFAULT_MAX_BODY_SIZE == 64 * 1024 * 1024
    assert (verifier.window.max_age, verifier.window.max_future) == (24 * HOUR, 300)
    assert verifier.window.span == 24 * HOUR + 300
    assert verifier.insecure_accept_unsigned is False


# -- headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["X-Webhook-Signature", "x-webhook-signature", "X-WEBHOOK-SIGNATURE", "x-WebHook-signaturE"]
)
def test_the_signature_header_is_found_in_any_case(name: str) -> None:
    body = event_body()
    event = make_verifier().verify(body, {name: sign(body, SECRET)})
    assert isinstance(event, JobEvent)


@pytest.mark.parametrize("name", ["X-Kreuzberg-Signature", "x-kreuzberg-signature", "X-KREUZBERG-SIGNATURE"])
def test_the_header_name_is_configurable(name: str) -> None:
    verifier = make_verifier(header="X-Kreuzberg-Signature")
    body = event_body()
    assert verifier.header == "X-Kreuzberg-Signature"
    assert isinstance(verifier.verify(body, {name: sign(body, SECRET)}), JobEvent)
    # The default name is then just another header.
    error = rejection(verifier, body, {"X-Webhook-Signature": sign(body, SECRET)})
    assert (error.status_code, error.reason) == (401, "missing_signature")


def test_other_headers_are_not_trusted() -> None:
    body = event_body()
    error = rejection(make_verifier(), body, {"X-Idempotency-Key": "anything", "Signature": sign(body, SECRET)})
    assert error.reason == "missing_signature"


# -- several secrets: rotation -------------------------------------------------------------


@pytest.mark.parametrize("secret", [OLD_SECRET, SECRET], ids=["old", "new"])
def test_during_rotation_both_secrets_verify(secret: str) -> None:
    verifier = make_verifier([OLD_SECRET, SECRET])
    body = event_body()
    assert isinstance(verifier.verify(body, signed(body, secret)), JobEvent)


def test_after_rotation_the_retired_secret_is_refused() -> None:
    body = event_body()
    error = rejection(make_verifier([SECRET]), body, signed(body, OLD_SECRET))
    assert (error.status_code, error.reason) == (401, "signature_mismatch")


def test_secrets_may_be_bytes() -> None:
    body = event_body()
    assert isinstance(make_verifier((SECRET.encode(),)).verify(body, signed(body)), JobEvent)


# -- a per-project resolver ------------------------------------------------------------------


class Resolver:
    """Records the project ids it is asked about; answers from a table."""

    def __init__(self, table: dict[str | None, Any], *, fail: bool = False) -> None:
        self.table = table
        self.fail = fail
        self.asked: list[str | None] = []

    def __call__(self, project_id: str | None) -> Any:
        self.asked.append(project_id)
        if self.fail:
            raise ConnectionError("the secrets vault is down")
        return self.table.get(project_id)


def test_the_resolver_gets_the_untrusted_project_id_and_its_secrets_verify() -> None:
    payload = job_event_payload(now=NOW)
    resolver = Resolver({payload["project_id"]: [OLD_SECRET, SECRET]})
    body, headers = signed_delivery(SECRET, payload)
    event = make_verifier(resolver).verify(body, headers)
    assert isinstance(event, JobEvent)
    assert resolver.asked == [payload["project_id"]]


def test_the_resolver_may_return_one_secret() -> None:
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    assert isinstance(make_verifier(Resolver({payload["project_id"]: SECRET})).verify(body, headers), JobEvent)


def test_a_secret_of_another_project_is_a_mismatch() -> None:
    payload = job_event_payload(now=NOW)
    resolver = Resolver({payload["project_id"]: SECRET})
    body, headers = signed_delivery(OLD_SECRET, payload)
    error = rejection(make_verifier(resolver), body, headers)
    assert (error.status_code, error.reason) == (401, "signature_mismatch")


@pytest.mark.parametrize(
    ("body", "asked"),
    [
        pytest.param(b"{not json", None, id="not-json"),
        pytest.param(b"[1, 2]", None, id="not-an-object"),
        pytest.param(b'{"id": "x"}', None, id="no-project-id"),
        pytest.param(b'{"project_id": 42}', None, id="project-id-not-a-string"),
        pytest.param(b'{"project_id": "p-1"}', "p-1", id="any-string-is-passed"),
        pytest.param(b"\xff\xfe", None, id="invalid-utf8"),
    ],
)
def test_the_resolver_is_asked_with_none_when_the_body_has_no_project_id(body: bytes, asked: str | None) -> None:
    resolver = Resolver({})
    error = rejection(make_verifier(resolver), body, signed(body))
    assert (error.status_code, error.reason) == (401, "unknown_project")
    assert resolver.asked == [asked]


@pytest.mark.parametrize(
    "answer",
    [pytest.param(None, id="none"), pytest.param([], id="empty-list"), pytest.param("", id="empty-secret")],
)
def test_a_resolver_with_no_secret_for_the_project_is_401_unknown_project(answer: Any) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    error = rejection(make_verifier(lambda _project: answer), body, headers)
    assert (error.status_code, error.reason) == (401, "unknown_project")


def test_a_raising_resolver_is_503_secrets_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    error = rejection(make_verifier(Resolver({}, fail=True)), body, headers)
    assert (error.status_code, error.reason) == (503, "secrets_unavailable")
    assert error.retryable
    (record,) = [r for r in caplog.records if "resolver raised" in r.getMessage()]
    assert record.exc_info is not None  # the operator gets the traceback


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(12345, id="an-int"),
        pytest.param([12345], id="a-list-of-ints"),
        pytest.param([SECRET, None], id="a-secret-and-none"),
    ],
)
def test_a_resolver_returning_garbage_is_503_not_a_crash(answer: Any) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    error = rejection(make_verifier(lambda _project: answer), body, headers)
    assert (error.status_code, error.reason) == (503, "secrets_unavailable")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"project_id": "p-1", "event_id": 5}', id="invalid-field"),
        pytest.param(b'{"project_id": "p-1"}', id="missing-fields"),
    ],
)
def test_with_a_resolver_an_invalid_payload_signed_wrong_is_401_not_400(body: bytes) -> None:
    # Nothing of the body but project_id is used before verification.
    collector = Collector()
    verifier = make_verifier(Resolver({"p-1": SECRET}), on_invalid_payload=collector)
    error = rejection(verifier, body, signed(body, OLD_SECRET))
    assert (error.status_code, error.reason) == (401, "signature_mismatch")
    assert collector.calls == []


def test_with_a_resolver_a_non_json_body_signed_wrong_is_401_not_400() -> None:
    body = b"{not json"
    error = rejection(make_verifier(Resolver({None: SECRET})), body, signed(body, OLD_SECRET))
    assert (error.status_code, error.reason) == (401, "signature_mismatch")


def test_with_a_resolver_an_invalid_body_signed_right_is_400() -> None:
    body = b"{not json"
    error = rejection(make_verifier(Resolver({None: SECRET})), body, signed(body))
    assert (error.status_code, error.reason) == (400, "invalid_json")


def test_without_a_resolver_an_invalid_body_signed_wrong_is_401_not_400() -> None:
    body = b"{not json"
    error = rejection(make_verifier(), body, signed(body, OLD_SECRET))
    assert (error.status_code, error.reason) == (401, "signature_mismatch")


def test_resolver_secrets_do_not_warn_per_delivery() -> None:
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery("short", payload)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(make_verifier(lambda _project: "short").verify(body, headers), JobEvent)


# -- unsigned deliveries, only with the loud opt-in -------------------------------------------


def test_no_secret_needs_the_insecure_opt_in() -> None:
    with pytest.raises(ConfigurationError, match="insecure_accept_unsigned"):
        Verifier(None)


def test_the_insecure_opt_in_warns_and_accepts_unsigned_deliveries() -> None:
    with pytest.warns(UserWarning, match="unsigned"):
        verifier = Verifier(None, insecure_accept_unsigned=True, clock=lambda: NOW)
    body, headers = signed_delivery(None, job_event_payload(now=NOW))
    assert isinstance(verifier.verify(body, headers), JobEvent)


def test_with_a_secret_the_insecure_opt_in_still_refuses_a_wrong_signature() -> None:
    with pytest.warns(UserWarning, match="unsigned"):
        verifier = Verifier(SECRET, insecure_accept_unsigned=True, clock=lambda: NOW)
    body = event_body()
    assert isinstance(verifier.verify(body, {}), JobEvent)
    assert isinstance(verifier.verify(body, signed(body)), JobEvent)
    error = rejection(verifier, body, signed(body, OLD_SECRET))
    assert error.reason == "signature_mismatch"


def test_without_the_opt_in_an_unsigned_delivery_is_401() -> None:
    body, headers = signed_delivery(None, job_event_payload(now=NOW))
    error = rejection(make_verifier(), body, headers)
    assert (error.status_code, error.reason) == (401, "missing_signature")


# -- signed bodies that are not valid deliveries ------------------------------------------------


def test_a_job_document_is_verified_without_a_timestamp() -> None:
    body, headers = signed_delivery(SECRET, job_document_payload(now=NOW))
    assert isinstance(make_verifier().verify(body, headers), JobDocument)


def test_the_error_carries_the_event_id_when_the_body_names_one() -> None:
    body = event_body(event_id="01HZQ-known", timestamp="late")
    error = rejection(make_verifier(), body, signed(body))
    assert (error.reason, error.event_id) == ("invalid_field", "01HZQ-known")


@pytest.mark.parametrize(
    "event_id",
    [pytest.param("a\nforged log line", id="newline"), pytest.param("\ud800", id="lone-surrogate")],
)
def test_an_unprintable_event_id_is_not_carried_into_logs(event_id: str) -> None:
    body = event_body(event_id=event_id)
    error = rejection(make_verifier(), body, signed(body))
    assert (error.reason, error.event_id) == ("invalid_field", None)


# -- the on_invalid_payload callback ---------------------------------------------------------------


class Collector:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[bytes, InvalidPayload]] = []
        self.fail = fail

    def __call__(self, body: bytes, error: InvalidPayload) -> None:
        self.calls.append((body, error))
        if self.fail:
            raise RuntimeError("the dead-letter queue is down")


def test_a_signed_invalid_body_is_handed_to_the_callback() -> None:
    collector = Collector()
    body = event_body(job_id=42)
    error = rejection(make_verifier(on_invalid_payload=collector), body, signed(body))
    assert collector.calls == [(body, error)]
    assert error.reason == "invalid_field"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(b"{not json", {"X-Webhook-Signature": sign(b"{not json", OLD_SECRET)}, id="forged"),
        pytest.param(b"{not json", {}, id="unsigned"),
        pytest.param(VALID, signed(VALID), id="valid"),
        pytest.param(event_body(timestamp=int(NOW) - 10 * 24 * 3600), None, id="stale"),
    ],
)
def test_the_callback_gets_only_signed_invalid_bodies(body: bytes, headers: dict[str, str] | None) -> None:
    collector = Collector()
    verifier = make_verifier(on_invalid_payload=collector)
    error_from(lambda: verifier.verify(body, signed(body) if headers is None else headers))
    assert collector.calls == []


def test_a_raising_callback_does_not_change_the_answer(caplog: pytest.LogCaptureFixture) -> None:
    body = b"[1, 2, 3]"
    error = rejection(make_verifier(on_invalid_payload=Collector(fail=True)), body, signed(body))
    assert (error.status_code, error.reason) == (400, "not_an_object")
    assert "on_invalid_payload callback raised" in caplog.text


def test_the_default_callback_logs_without_the_body(caplog: pytest.LogCaptureFixture) -> None:
    marker = "CONFIDENTIAL-INVOICE-TEXT-4f1c"
    body = json.dumps({"id": ["not-an-id"], "status": "completed", "result": {"content": marker}}).encode()
    caplog.set_level(logging.DEBUG, logger="kreuzberg_webhooks")
    error = rejection(make_verifier(), body, signed(body))
    assert error.reason == "invalid_field"
    assert "invalid payload" in caplog.text
    assert "invalid_field" in caplog.text
    assert marker not in caplog.text
    assert "not-an-id" not in caplog.text


# -- the replay window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "retention", "refused"),
    [
        pytest.param(ReplayWindow(), 24 * HOUR + 300 - 1, True, id="default-window-one-second-short"),
        pytest.param(ReplayWindow(), 24 * HOUR + 300, False, id="default-window-exact"),
        pytest.param(WINDOW, 659, True, id="small-window-one-second-short"),
        pytest.param(WINDOW, 660, False, id="small-window-exact"),
        pytest.param(WINDOW, 7 * 24 * HOUR, False, id="longer-is-fine"),
        pytest.param(WINDOW, float("nan"), True, id="nan"),
    ],
)
def test_retention_shorter_than_the_window_span_is_refused(
    window: ReplayWindow, retention: float, refused: bool
) -> None:
    def build() -> Receiver:
        # A document window no longer than the event window: the event window is the longest span here.
        return Receiver(SECRET, store=MemoryStore(), window=window, document_window=window, retention=retention)

    if refused:
        with pytest.raises(ConfigurationError, match="shorter than the replay window"):
            build()
    else:
        assert build().retention == retention


def test_retention_defaults_to_the_window_span() -> None:
    assert Receiver(SECRET, window=WINDOW, document_window=WINDOW).retention == WINDOW.span == 660


def test_retention_covers_the_document_window_too() -> None:
    # A job document is accepted for 7 days 5 minutes by default,
    # so the store must remember it that long, or a replay inside it runs again.
    assert Receiver(SECRET).retention == Verifier(SECRET).max_span == 7 * 24 * HOUR + 300
    with pytest.raises(ConfigurationError, match="shorter than the replay window"):
        Receiver(SECRET, retention=24 * HOUR + 300)


# -- the body-size limit ---------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_anything_else() -> None:
    body = b"x" * 1025
    error = rejection(make_verifier(max_body_size=1024), body, {})  # unsigned, not JSON: size is checked first
    assert (error.status_code, error.reason) == (413, "payload_too_large")


def test_a_body_at_the_limit_is_read() -> None:
    body = event_body()
    assert isinstance(make_verifier(max_body_size=len(body)).verify(body, signed(body)), JobEvent)


# -- logging ------------------------------------------------------------------------------------------

LOGGED_CASES: list[Any] = [
    pytest.param("signature_mismatch", True, id="forged"),
    pytest.param("stale_timestamp", True, id="stale"),
    pytest.param("invalid_field", True, id="invalid-field"),
    pytest.param("invalid_json", False, id="not-json"),
    pytest.param("missing_signature", True, id="unsigned"),
]


def _delivery_for(reason: str, marker: str) -> tuple[bytes, dict[str, str], str | None]:
    payload = job_event_payload(now=NOW, error_message=marker)
    if reason == "stale_timestamp":
        payload["timestamp"] = int(NOW) - 601
    if reason == "invalid_field":
        payload["job_id"] = marker + "\n"  # unprintable: not an id
    body = json.dumps(payload).encode()
    if reason == "invalid_json":
        body = marker.encode() + b"{"
    headers = signed(body, OLD_SECRET if reason == "signature_mismatch" else SECRET)
    if reason == "missing_signature":
        headers = {}
    known_id = payload["event_id"] if reason in ("stale_timestamp", "invalid_field") else None
    return body, headers, known_id


@pytest.mark.parametrize(("reason", "_body_is_json"), LOGGED_CASES)
def test_one_log_line_per_rejected_delivery_without_secrets_or_body(
    caplog: pytest.LogCaptureFixture, reason: str, _body_is_json: bool
) -> None:
    marker = "PRIVATE-CONTENT-9d2e"
    body, headers, known_id = _delivery_for(reason, marker)
    caplog.set_level(logging.DEBUG, logger="kreuzberg_webhooks")
    error = rejection(make_verifier(window=WINDOW), body, headers)
    assert error.reason == reason
    rejected = [r for r in caplog.records if "webhook delivery rejected" in r.getMessage()]
    assert len(rejected) == 1
    line = rejected[0].getMessage()
    assert rejected[0].levelno == logging.WARNING
    assert reason in line
    if known_id is not None:
        assert known_id in line
    expected = sign(body, SECRET)
    for secret_thing in (SECRET, OLD_SECRET, expected, expected.removeprefix("sha256="), marker, body.decode()):
        assert secret_thing not in caplog.text
    for record in caplog.records:
        assert record.name.startswith("kreuzberg_webhooks")


def test_an_accepted_delivery_logs_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kreuzberg_webhooks")
    body = event_body()
    make_verifier().verify(body, signed(body))
    assert caplog.records == []


# -- properties -----------------------------------------------------------------------------------------

_printable = st.text(min_size=1, max_size=40).filter(str.isprintable)
_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_REQUIRED = {"event_id", "job_id", "project_id", "status", "error_message", "timestamp", "attempt_count"}


@st.composite
def event_payloads(draw: Callable[..., Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event_id": draw(_printable),
        "job_id": str(draw(st.uuids())),
        "project_id": str(draw(st.uuids())),
        "status": draw(st.sampled_from(["completed", "partial_success", "failed", "cancelled"]) | _printable),
        "error_message": draw(st.none() | st.text(max_size=30)),
        "timestamp": draw(
            st.integers(min_value=int(NOW) - 600, max_value=int(NOW) + 60)
            | st.floats(min_value=NOW - 600, max_value=NOW + 60)
        ),
        "attempt_count": draw(st.integers(min_value=1, max_value=10)),
    }
    # No "event" either: a body with one is a webhook of a family, signed t-v1 at the real time (signed_delivery).
    extra = draw(
        st.dictionaries(st.text(max_size=10).filter(lambda k: k not in _REQUIRED and k != "event"), _json, max_size=4)
    )
    return {**extra, **payload}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=event_payloads())
def test_any_valid_payload_round_trips_into_an_event_whose_raw_is_the_payload(payload: dict[str, Any]) -> None:
    body, headers = signed_delivery(SECRET, payload)
    event = make_verifier(window=WINDOW).verify(body, headers)
    assert isinstance(event, JobEvent)
    assert event.raw == payload
    assert event.event_id == payload["event_id"]
    assert str(event.job_id) == payload["job_id"]
    assert event.status == payload["status"].lower()  # one case for every status
    assert event.attempt_count == payload["attempt_count"]
    assert event.timestamp.timestamp() == pytest.approx(payload["timestamp"], abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512))
def test_arbitrary_signed_bytes_raise_nothing_but_webhook_errors(body: bytes) -> None:
    verifier = make_verifier(window=WINDOW, on_invalid_payload=lambda _body, _error: None)
    error = error_from(lambda: verifier.verify(body, signed(body)))
    assert error is None or error.status_code == 400


@settings(max_examples=150, deadline=None)
@given(value=_json)
def test_arbitrary_signed_json_raises_nothing_but_webhook_errors(value: Any) -> None:
    body = json.dumps(value).encode()
    verifier = make_verifier(window=WINDOW, on_invalid_payload=lambda _body, _error: None)
    error = error_from(lambda: verifier.verify(body, signed(body)))
    assert error is None or error.status_code == 400


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=256) | _json.map(lambda value: json.dumps({"project_id": value}).encode()))
def test_a_resolver_verifier_raises_nothing_but_webhook_errors(body: bytes) -> None:
    verifier = make_verifier(lambda _project: SECRET, window=WINDOW, on_invalid_payload=lambda _b, _e: None)
    # The resolver knows every project, so past the signature only the payload may object.
    error = error_from(lambda: verifier.verify(body, signed(body)))
    assert error is None or error.status_code == 400


def _exchange_over_limit(content_length: str | None, chunk: bytes) -> None:
    from kreuzberg_webhooks import Receiver

    exchange = Receiver(SECRET, max_body_size=10).exchange(
        "POST", {} if content_length is None else {"content-length": content_length}
    )
    exchange.feed(chunk)
    assert exchange.answer is not None
    raise PayloadTooLarge()


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda: _exchange_over_limit("11", b""), id="declared-length"),
        pytest.param(lambda: _exchange_over_limit(None, b"x" * 11), id="while-reading"),
        pytest.param(lambda: make_verifier(max_body_size=10).verify(b"x" * 11, {}), id="whole-body"),
    ],
)
def test_a_body_over_the_limit_logs_one_rejection(caplog: pytest.LogCaptureFixture, read: Callable[[], object]) -> None:
    caplog.set_level(logging.INFO, "kreuzberg_webhooks")
    with pytest.raises(PayloadTooLarge):
        read()
    lines = [r.getMessage() for r in caplog.records if "webhook delivery" in r.getMessage()]
    assert lines == ["webhook delivery rejected: payload_too_large (status=413, event_id=-)"]


# -- verify_scoped ------------------------------------------------------------------


def test_verify_scoped_answers_a_verified_pair_of_the_event_and_its_scope() -> None:
    body = event_body()
    verifier = make_verifier()
    verified = verifier.verify_scoped(body, signed(body))
    assert type(verified) is Verified
    assert verified == Verified(verifier.verify(body, signed(body)), "") == (verified.event, "")
    assert isinstance(verified.event, JobEvent)
    assert verified._asdict() == {"event": verified.event, "scope": ""}
