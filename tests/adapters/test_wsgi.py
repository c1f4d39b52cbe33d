"""The werkzeug-based WSGI middleware: the shared contract in both modes, plus WSGI-level behaviour."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from kreuzberg_webhooks import ClaimState, Event, MemoryStore, Receiver
from kreuzberg_webhooks.adapters.wsgi import ENVIRON_KEY, KreuzbergWebhookMiddleware, environ_headers, read_exchange
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery

from .contract import LIMIT, NOW, PATH, SECRET, AdapterContract, Answer, Poster, Recorder, make_receiver
from .support import CountingStream, import_error_without

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def client_poster(client: Client) -> Poster:
    def post(method: str, path: str, body: bytes, headers: list[tuple[str, str]]) -> Answer:
        # Closing the response is what a server does once it is sent: guard mode settles then.
        with client.open(path, method=method, data=body, headers=Headers(headers)) as response:
            return Answer(
                response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.get_data()
            )

    return post


@Request.application
def other_app(request: Request) -> Response:
    """The wrapped application's own pages: echo what it was given."""
    return Response(f"{request.method} {request.path} {request.get_data()!r}")


def guarded_app(handler: Callable[[Event], None], status: str = "200 OK") -> WSGIApp:
    """A plain WSGI application whose route at PATH is the handler (guard mode)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] != PATH:
            return other_app(environ, start_response)  # type: ignore[no-any-return]
        handler(environ[ENVIRON_KEY])
        start_response(status, [("Content-Type", "application/json")])
        return [b'{"status":"processed"}']

    return app


class TestEndpointMode(AdapterContract):
    @contextlib.contextmanager
    def open_poster(self, receiver: Receiver, handler: Callable[[Event], None]) -> Iterator[Poster]:
        # The receiver already dispatches to `handler` (make_receiver registered it).
        yield client_poster(Client(KreuzbergWebhookMiddleware(other_app, receiver, path=PATH)))


class TestGuardMode(AdapterContract):
    @contextlib.contextmanager
    def open_poster(self, receiver: Receiver, handler: Callable[[Event], None]) -> Iterator[Poster]:
        # The receiver's registered handlers do not run in guard mode: the application is the handler.
        yield client_poster(Client(KreuzbergWebhookMiddleware(guarded_app(handler), receiver, path=PATH, mode="guard")))


# -- helpers for the WSGI-level cases ---------------------------------------------


def call(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, bytes]:
    """Call a WSGI app the way a server does, closing the response iterable."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        statuses.append(status)
        return lambda data: None

    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return statuses[-1], body


def delivery_environ(body: bytes, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": PATH,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
    }
    for name, value in headers.items():
        if name.lower() != "content-type":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ.update(extra)
    return environ


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def receiver(recorder: Recorder, store: MemoryStore) -> Receiver:
    return make_receiver(recorder, store)


# -- reading the body ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["endpoint", "guard"])
def test_chunked_body_without_content_length_is_read_to_its_end(
    receiver: Receiver, recorder: Recorder, mode: Any
) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    environ = delivery_environ(body, headers, HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    del environ["CONTENT_LENGTH"]
    app = KreuzbergWebhookMiddleware(guarded_app(recorder), receiver, path=PATH, mode=mode)
    status, _ = call(app, environ)
    assert status == "200 OK"
    assert len(recorder.events) == 1


def test_huge_chunked_body_stops_being_read_just_past_the_limit(receiver: Receiver, recorder: Recorder) -> None:
    stream = CountingStream()
    environ = delivery_environ(b"", {}, HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input"] = stream
    status, body = call(KreuzbergWebhookMiddleware(other_app, receiver, path=PATH), environ)
    assert status.startswith("413 ")
    assert json.loads(body)["error"] == "payload_too_large"
    assert LIMIT < stream.given <= LIMIT + 1
    assert recorder.events == []


def test_declared_length_over_the_limit_is_refused_before_reading(receiver: Receiver) -> None:
    stream = CountingStream()
    environ = delivery_environ(b"", {}, CONTENT_LENGTH=str(LIMIT + 1))
    environ["wsgi.input"] = stream
    status, _ = call(KreuzbergWebhookMiddleware(other_app, receiver, path=PATH), environ)
    assert status.startswith("413 ")
    assert stream.given == 0


def test_read_exchange_reads_exactly_the_declared_length(receiver: Receiver) -> None:
    environ = delivery_environ(b"", {}, CONTENT_LENGTH="5")
    environ["wsgi.input"] = io.BytesIO(b"12345 and the next request")
    exchange = receiver.exchange("POST", environ_headers(environ))
    read_exchange(exchange, environ, receiver.verifier.max_body_size)
    assert exchange.body == b"12345"


def test_body_shorter_than_its_content_length_is_a_disconnect_and_runs_nothing(
    receiver: Receiver, recorder: Recorder
) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    environ = delivery_environ(body[:10], headers, CONTENT_LENGTH=str(len(body)))
    status, _ = call(KreuzbergWebhookMiddleware(other_app, receiver, path=PATH), environ)
    assert status.startswith("400 ")
    assert recorder.events == []


@pytest.mark.parametrize(
    ("joined", "reason"),
    [
        pytest.param("{0},{0}", "malformed_signature", id="gunicorn-comma"),
        pytest.param("{0}, {0}", "malformed_signature", id="rfc9110-comma-space"),
        pytest.param("{0}", "processed", id="single-line"),
    ],
)
def test_signature_header_lines_joined_by_the_server_are_malformed(
    receiver: Receiver, recorder: Recorder, joined: str, reason: str
) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    headers["X-Webhook-Signature"] = joined.format(headers["X-Webhook-Signature"])
    _, answer = call(KreuzbergWebhookMiddleware(other_app, receiver, path=PATH), delivery_environ(body, headers))
    document = json.loads(answer)
    assert document.get("error", document.get("status")) == reason
    assert len(recorder.events) == (reason == "processed")


def test_environ_headers_lower_cases_names_and_keeps_content_headers() -> None:
    environ = {"HTTP_X_WEBHOOK_SIGNATURE": "sha256=ab", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2"}
    assert environ_headers(environ) == {
        "x-webhook-signature": "sha256=ab",
        "content-type": "application/json",
        "content-length": "2",
    }


# -- passing requests through ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["endpoint", "guard"])
@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        pytest.param("POST", "/other", b"POST /other b'untouched body'", id="post-elsewhere"),
        pytest.param("GET", "/other", b"GET /other b''", id="get-elsewhere"),
        pytest.param("POST", PATH + "/", b"POST /webhooks/kreuzberg/ b'untouched body'", id="trailing-slash"),
    ],
)
def test_other_paths_reach_the_app_untouched(
    receiver: Receiver, mode: Any, method: str, path: str, expected: bytes
) -> None:
    client = Client(KreuzbergWebhookMiddleware(other_app, receiver, path=PATH, mode=mode))
    data = b"untouched body" if method == "POST" else None
    response = client.open(path, method=method, data=data)
    assert (response.status_code, response.get_data()) == (200, expected)


def test_constructor_rejects_an_unknown_mode(receiver: Receiver) -> None:
    with pytest.raises(ValueError, match="mode"):
        KreuzbergWebhookMiddleware(other_app, receiver, mode="proxy")  # type: ignore[arg-type]


def test_constructor_rejects_a_relative_path(receiver: Receiver) -> None:
    with pytest.raises(ValueError, match="path"):
        KreuzbergWebhookMiddleware(other_app, receiver, path="webhooks")


# -- guard mode --------------------------------------------------------------------------


def test_guard_replays_the_verified_body_and_fixes_the_environ(receiver: Receiver) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen["transfer-encoding"] = environ.get("HTTP_TRANSFER_ENCODING")
        seen["event"] = environ[ENVIRON_KEY]
        start_response("204 No Content", [])
        return []

    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    environ = delivery_environ(body, headers, HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input_terminated": True})
    del environ["CONTENT_LENGTH"]
    status, _ = call(KreuzbergWebhookMiddleware(app, receiver, path=PATH, mode="guard"), environ)
    assert status == "204 No Content"
    assert seen["body"] == body
    assert seen["transfer-encoding"] is None
    assert seen["event"].event_id == json.loads(body)["event_id"]


def test_guard_replays_the_body_to_a_werkzeug_request(receiver: Receiver) -> None:
    @Request.application
    def app(request: Request) -> Response:
        return Response(json.dumps({"job_id": request.get_json()["job_id"]}), mimetype="application/json")

    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    client = Client(KreuzbergWebhookMiddleware(app, receiver, path=PATH, mode="guard"))
    response = client.post(PATH, data=body, headers=headers)
    assert response.get_json() == {"job_id": payload["job_id"]}


@pytest.mark.parametrize(
    ("status", "retry_processed"),
    [
        pytest.param("200 OK", False, id="200-completes"),
        pytest.param("202 Accepted", False, id="202-completes"),
        pytest.param("404 Not Found", True, id="404-releases"),
        pytest.param("503 Service Unavailable", True, id="503-releases"),
    ],
)
def test_guard_settles_the_claim_by_the_apps_status(
    receiver: Receiver, recorder: Recorder, status: str, retry_processed: bool
) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    app = KreuzbergWebhookMiddleware(guarded_app(recorder, status), receiver, path=PATH, mode="guard")
    first, _ = call(app, delivery_environ(body, headers))
    assert first == status
    again, answer = call(app, delivery_environ(body, headers))
    if retry_processed:
        assert again == status
        assert len(recorder.events) == 2
    else:
        assert (again, json.loads(answer)) == ("200 OK", {"status": "duplicate"})
        assert len(recorder.events) == 1


def test_guard_settles_only_when_the_response_is_closed(receiver: Receiver, store: MemoryStore) -> None:
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    key = parse_event(payload).dedup_key
    states: list[ClaimState] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        # start_response is called lazily, on the first iteration, as generator apps do.
        start_response("200 OK", [])
        yield b"first part"
        states.append(store.claim(key, 1.0).state)  # another request, mid-response
        yield b"second part"

    middleware = KreuzbergWebhookMiddleware(app, receiver, path=PATH, mode="guard")
    status, answer = call(middleware, delivery_environ(body, headers))
    assert (status, answer) == ("200 OK", b"first partsecond part")
    assert states == [ClaimState.IN_FLIGHT]
    assert store.claim(key, 1.0).state is ClaimState.DONE


def test_guard_releases_when_the_response_iterable_raises(receiver: Receiver, recorder: Recorder) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    fail = [True]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        if fail[0]:
            raise RuntimeError("broke while streaming")
        recorder(environ[ENVIRON_KEY])

    middleware = KreuzbergWebhookMiddleware(app, receiver, path=PATH, mode="guard")
    with pytest.raises(RuntimeError, match="broke while streaming"):
        call(middleware, delivery_environ(body, headers))
    fail[0] = False
    status, _ = call(middleware, delivery_environ(body, headers))
    assert status == "200 OK"
    assert len(recorder.events) == 1


def test_guard_releases_when_start_response_is_never_called(receiver: Receiver, recorder: Recorder) -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    middleware = KreuzbergWebhookMiddleware(lambda environ, start_response: [], receiver, path=PATH, mode="guard")
    iterable = middleware(delivery_environ(body, headers), lambda *args: None)
    iterable.close()  # type: ignore[attr-defined]
    status, _ = call(
        KreuzbergWebhookMiddleware(guarded_app(recorder), receiver, path=PATH, mode="guard"),
        delivery_environ(body, headers),
    )
    assert status == "200 OK"
    assert len(recorder.events) == 1


def test_guard_exception_is_logged_and_answered_500_handler_error(
    receiver: Receiver, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.fail = True
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    middleware = KreuzbergWebhookMiddleware(guarded_app(recorder), receiver, path=PATH, mode="guard")
    status, answer = call(middleware, delivery_environ(body, headers))
    assert status.startswith("500 ")
    assert json.loads(answer)["error"] == "handler_error"
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "handler failed on purpose" in str(record.exc_info[1])  # type: ignore[index]


def test_guard_exception_after_start_response_hands_exc_info_to_the_server(receiver: Receiver) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [])
        raise RuntimeError("raised after starting the response")

    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    calls: list[tuple[str, Any]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        calls.append((status, exc_info))

    middleware = KreuzbergWebhookMiddleware(app, receiver, path=PATH, mode="guard")
    answer = b"".join(middleware(delivery_environ(body, headers), start_response))
    assert [status for status, _ in calls] == ["200 OK", "500 Internal Server Error"]
    assert calls[1][1][0] is RuntimeError  # PEP 3333: the server re-raises it if headers were sent
    assert json.loads(answer)["error"] == "handler_error"


# -- the optional dependency ---------------------------------------------------------------


def test_import_without_werkzeug_names_the_extra() -> None:
    message = import_error_without("werkzeug", "kreuzberg_webhooks.adapters.wsgi")
    assert 'pip install "kreuzberg-webhooks[wsgi]"' in message
