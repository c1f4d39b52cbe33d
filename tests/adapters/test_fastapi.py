"""The FastAPI dependency: the shared contract, plus how the route's ending settles the claim."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from kreuzberg_webhooks import Event, JobEvent, MemoryStore, Receiver, sign
from kreuzberg_webhooks.adapters.fastapi import DeliveryAnswered, KreuzbergWebhook
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery

from .contract import NOW, PATH, SECRET, AdapterContract, Answer, Poster, Recorder, make_receiver


def webhook_app(
    receiver: Receiver, handler: Callable[[Event], None], *, methods: tuple[str, ...] = ("POST",)
) -> FastAPI:
    webhook = KreuzbergWebhook(receiver)
    app = FastAPI()
    webhook.init_app(app)

    @app.api_route(PATH, methods=list(methods))
    def kreuzberg(event: Event = Depends(webhook)) -> dict[str, str]:
        handler(event)
        return {"status": "processed"}

    return app


def client_poster(client: TestClient) -> Poster:
    def post(method: str, path: str, body: bytes, headers: list[tuple[str, str]]) -> Answer:
        response = client.request(method, path, content=body, headers=headers, follow_redirects=False)
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)

    return post


class TestFastAPIDependency(AdapterContract):
    @contextlib.contextmanager
    def open_poster(self, receiver: Receiver, handler: Callable[[Event], None]) -> Iterator[Poster]:
        # The route is the handler; the receiver's own handlers do not run.
        with TestClient(webhook_app(receiver, handler)) as client:
            yield client_poster(client)

    def test_get_is_405_not_a_redirect(self, post: Poster) -> None:
        # A `@app.post` route never reaches its dependencies for a GET: FastAPI's
        # router answers 405 itself, with its own body. The status and `Allow`
        # are what matter to a sender, and they match; the dependency's own 405
        # (same JSON as every adapter) is pinned by the test below.
        answer = post("GET", PATH, b"", [])
        assert answer.status == 405
        assert answer.headers["allow"] == "POST"

    @pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE"])
    def test_other_methods_get_the_same_405(self, post: Poster, method: str) -> None:
        # As for GET: FastAPI's router answers an `@app.post` route's other methods itself.
        answer = post(method, PATH, b"", [])
        assert answer.status == 405
        assert answer.headers["allow"] == "POST"


def test_dependency_answers_non_post_with_the_package_405(recorder: Recorder) -> None:
    app = webhook_app(make_receiver(recorder), recorder, methods=("GET", "POST"))
    with TestClient(app) as client:
        response = client.get(PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
    assert recorder.events == []


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_route_gets_the_typed_event(recorder: Recorder) -> None:
    payload = job_event_payload(now=NOW, status="failed", error_message="OCR timeout")
    body, headers = signed_delivery(SECRET, payload)
    seen: list[JobEvent] = []
    app = FastAPI()
    webhook = KreuzbergWebhook(make_receiver(recorder))
    webhook.init_app(app)

    @app.post(PATH)
    async def kreuzberg(event: JobEvent = Depends(webhook)) -> dict[str, str]:
        seen.append(event)
        return {"status": "processed"}

    with TestClient(app) as client:
        assert client.post(PATH, content=body, headers=headers).json() == {"status": "processed"}
    (event,) = seen
    assert isinstance(event, JobEvent)
    assert (event.event_id, event.type, event.error_message) == (payload["event_id"], "job.failed", "OCR timeout")
    assert recorder.events == []  # the receiver's registered handlers do not run: the route is the handler


@pytest.mark.parametrize("status", [409, 503])
def test_route_raising_http_exception_keeps_its_answer_and_releases_the_claim(recorder: Recorder, status: int) -> None:
    calls: list[Event] = []

    def handler(event: Event) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise HTTPException(status, detail="try later", headers={"retry-after": "7"})

    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    with TestClient(webhook_app(make_receiver(recorder), handler)) as client:
        first = client.post(PATH, content=body, headers=headers)
        retry = client.post(PATH, content=body, headers=headers)
        again = client.post(PATH, content=body, headers=headers)
    assert (first.status_code, first.json(), first.headers["retry-after"]) == (status, {"detail": "try later"}, "7")
    assert retry.json() == {"status": "processed"}
    assert again.json() == {"status": "duplicate"}
    assert len(calls) == 2


def test_route_validation_error_stays_422_and_releases_the_claim(recorder: Recorder) -> None:
    store = MemoryStore()
    webhook = KreuzbergWebhook(make_receiver(recorder, store))
    app = FastAPI()
    webhook.init_app(app)

    @app.post(PATH)
    def kreuzberg(page: int, event: Event = Depends(webhook)) -> dict[str, str]:
        return {"status": "processed"}

    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    with TestClient(app) as client:
        assert client.post(PATH + "?page=x", content=body, headers=headers).status_code == 422
        assert client.post(PATH + "?page=1", content=body, headers=headers).json() == {"status": "processed"}


def test_route_error_is_logged_with_its_traceback(recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    recorder.fail = True
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    with TestClient(webhook_app(make_receiver(recorder), recorder)) as client:
        response = client.post(PATH, content=body, headers=headers)
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if r.name == "kreuzberg_webhooks" and r.exc_info]
    assert "claim released" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def post_scope(headers: dict[str, str]) -> dict[str, Any]:
    """The ASGI scope of a POST to the webhook path, for tests that drive the app directly."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def test_body_is_read_in_chunks_and_stops_at_the_limit(recorder: Recorder) -> None:
    # Driven as raw ASGI so the test can count what was read: a chunked body
    # with no Content-Length, far over the limit.
    app = webhook_app(make_receiver(recorder), recorder)
    chunk = b"x" * 1000
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": chunk, "more_body": reads < 100}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = post_scope({"content-type": "application/json"})
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert reads == 5  # 4096-byte limit: the fifth 1000-byte chunk passes it; 95 chunks never read
    assert recorder.events == []


def test_client_disconnect_mid_body_takes_no_claim(recorder: Recorder) -> None:
    store = MemoryStore()
    app = webhook_app(make_receiver(recorder, store), recorder)
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    incoming = [{"type": "http.request", "body": body[:10], "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = post_scope(headers)
    with contextlib.suppress(Exception):  # Starlette's ClientDisconnect; nobody is left to answer
        asyncio.run(app(scope, receive, send))
    assert recorder.events == []
    assert store.claim(parse_event(payload).dedup_key, 60).state.name == "NEW"


def test_without_init_app_the_status_and_headers_still_match(recorder: Recorder) -> None:
    store = MemoryStore()
    payload = job_event_payload(now=NOW)
    store.claim(parse_event(payload).dedup_key, 120.0)
    webhook = KreuzbergWebhook(make_receiver(recorder, store))
    app = FastAPI()

    @app.post(PATH)
    def kreuzberg(event: Event = Depends(webhook)) -> dict[str, str]:
        return {"status": "processed"}

    body, headers = signed_delivery(SECRET, payload)
    forged = dict(headers, **{"X-Webhook-Signature": sign(body, "another-secret-0123456789abcdef0123")})
    with TestClient(app) as client:
        in_flight = client.post(PATH, content=body, headers=headers)
        bad = client.post(PATH, content=body, headers=forged)
    assert (in_flight.status_code, bad.status_code) == (429, 401)
    assert int(in_flight.headers["retry-after"]) >= 1
    assert in_flight.json()["detail"]["error"] == "in_flight"  # FastAPI's wrapper around the same answer
    assert bad.json()["detail"]["error"] == "signature_mismatch"


def test_delivery_answered_carries_the_outcome() -> None:
    receiver = make_receiver(Recorder())
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW), signature="sha1=abc")
    outcome = receiver.handle(body, headers)
    error = DeliveryAnswered(outcome)
    assert (error.status_code, error.outcome) == (401, outcome)
    assert error.detail == {"error": "malformed_signature", "detail": error.detail["detail"]}
    assert "content-type" not in (error.headers or {})


def test_fastapi_adapter_without_fastapi_names_the_extra() -> None:
    code = "import sys\nsys.modules['fastapi'] = None\nimport kreuzberg_webhooks.adapters.fastapi\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "ImportError" in result.stderr
    assert 'pip install "kreuzberg-webhooks[fastapi]"' in result.stderr


def test_request_object_is_still_usable_in_the_route(recorder: Recorder) -> None:
    webhook = KreuzbergWebhook(make_receiver(recorder))
    app = FastAPI()
    webhook.init_app(app)

    @app.post(PATH)
    async def kreuzberg(request: Request, event: Event = Depends(webhook)) -> dict[str, str]:
        return {"status": "processed", "agent": request.headers.get("user-agent", "")}

    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    with TestClient(app) as client:
        response = client.post(PATH, content=body, headers=dict(headers, **{"User-Agent": "kreuzberg-webhook/1"}))
    assert response.json() == {"status": "processed", "agent": "kreuzberg-webhook/1"}


def test_asgi_middleware_also_serves_a_fastapi_app(recorder: Recorder) -> None:
    from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

    app = FastAPI()

    @app.get("/")
    def index() -> dict[str, str]:
        return {"page": "index"}

    app.add_middleware(KreuzbergWebhookMiddleware, receiver=make_receiver(recorder), path=PATH)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    with TestClient(app) as client:
        assert client.post(PATH, content=body, headers=headers).json() == {"status": "processed"}
        assert client.post(PATH, content=body, headers=headers).json() == {"status": "duplicate"}
        assert client.get("/").json() == {"page": "index"}
    assert len(recorder.events) == 1


@pytest.mark.parametrize("status", [409, 503])
def test_route_returning_a_non_2xx_response_releases_the_claim(recorder: Recorder, status: int) -> None:
    calls: list[Event] = []
    webhook = KreuzbergWebhook(make_receiver(recorder))
    app = FastAPI()
    webhook.init_app(app)

    @app.post(PATH)
    def kreuzberg(event: Event = Depends(webhook)) -> Any:
        calls.append(event)
        if len(calls) == 1:
            return JSONResponse({"status": "later"}, status_code=status)  # returned, not raised
        return {"status": "processed"}

    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    with TestClient(app) as client:
        first = client.post(PATH, content=body, headers=headers)
        retry = client.post(PATH, content=body, headers=headers)
        again = client.post(PATH, content=body, headers=headers)
    assert first.status_code == status
    assert retry.json() == {"status": "processed"}  # the sender's retry is processed, not lost as a duplicate
    assert again.json() == {"status": "duplicate"}
    assert len(calls) == 2


def test_the_claim_is_settled_before_the_response_is_complete(recorder: Recorder) -> None:
    store = MemoryStore()
    app = webhook_app(make_receiver(recorder, store), recorder)
    payload = job_event_payload(now=NOW)
    body, headers = signed_delivery(SECRET, payload)
    key = parse_event(payload).dedup_key
    state_at_start: list[str] = []
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            # A retry arriving the moment the answer is complete must find the event done, not in flight.
            state_at_start.append(store.claim(key, 60).state.name)

    asyncio.run(app(post_scope(headers), receive, send))
    assert state_at_start == ["DONE"]
    assert len(recorder.events) == 1


def test_init_app_runs_requests_that_carry_no_delivery_in_their_own_task(recorder: Recorder) -> None:
    # Only a POST can be claimed (the dependency answers any other method 405 before claiming),
    # so only a POST needs its route run in a task that outlives a cancelled request.
    webhook = KreuzbergWebhook(make_receiver(recorder))
    app = FastAPI()
    webhook.init_app(app)
    tasks: list[tuple[str, Any]] = []

    @app.get("/page")
    async def page() -> dict[str, str]:
        tasks.append(("route", asyncio.current_task()))
        return {"page": "ok"}

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            tasks.append(("request", asyncio.current_task()))
        await app(scope, receive, send)

    with TestClient(outer) as client:
        assert client.get("/page").json() == {"page": "ok"}
    [(_, request_task), (_, route_task)] = tasks
    assert route_task is request_task
