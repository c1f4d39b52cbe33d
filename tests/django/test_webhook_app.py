"""The Django adapter: the shared contract through Django's test clients, plus Django-level behaviour.

The contract runs six ways: the URLconf include's view and a mixin-based view,
each sync and async, under the WSGI ``Client`` and the ASGI ``AsyncClient``.
Every client enforces CSRF checks and the middleware stack includes
``LoginRequiredMiddleware``, so every passing case also proves the exemptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIRequest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, AsyncRequestFactory, Client, override_settings
from django.urls import URLPattern, include, path, reverse
from django.views import View

from kreuzberg_webhooks import (
    ClaimState,
    Event,
    MemoryStore,
    Receiver,
    ReplayStore,
    ReplayWindow,
    SQLiteStore,
    StoreUnavailable,
)
from kreuzberg_webhooks.django import (
    AsyncKreuzbergWebhookMixin,
    AsyncKreuzbergWebhookView,
    DjangoCacheStore,
    KreuzbergWebhookMixin,
    KreuzbergWebhookView,
    build_receiver,
    get_receiver,
    get_setting,
    on,
    webhook_received,
)
from kreuzberg_webhooks.django import conf as django_conf
from kreuzberg_webhooks.django.checks import check_settings, check_store
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.testing import FrozenClock, job_event_payload, signed_delivery
from tests.adapters.contract import (
    LIMIT,
    NOW,
    PATH,
    SECRET,
    AdapterContract,
    Answer,
    Poster,
    Recorder,
    make_receiver,
)
from tests.django.settings import configure
from tests.stores.contract import FrozenClock as StoreClock
from tests.stores.contract import StoreContract, new_key

configure()

pytest_plugins = ["tests.redis_server"]


# -- helpers -------------------------------------------------------------------------


class URLConf:
    """A root URLconf object (``ROOT_URLCONF`` may be any object with ``urlpatterns``)."""

    def __init__(self, *patterns: Any) -> None:
        self.urlpatterns = list(patterns)


def client_poster(asynchronous: bool) -> Poster:
    """Send through Django's test ``Client`` (WSGI handler) or ``AsyncClient`` (ASGI handler)."""

    def post(method: str, target: str, body: bytes, pairs: list[tuple[str, str]]) -> Answer:
        # A real server joins repeated header lines into one value (RFC 9110); the
        # test clients take a dict, so do what the server would do.
        headers: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        content_type = headers.pop("content-type", "application/octet-stream")
        if asynchronous:
            client: Any = AsyncClient(enforce_csrf_checks=True)
            response = asyncio.run(
                client.generic(method, target, data=body, content_type=content_type, headers=headers)
            )
        else:
            response = Client(enforce_csrf_checks=True).generic(
                method, target, data=body, content_type=content_type, headers=headers
            )
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)

    return post


def fresh_urls(*, asynchronous: bool) -> ModuleType:
    """A fresh copy of the include's URLconf module, loaded under ``ASYNC`` = *asynchronous*."""
    spec = importlib.util.find_spec("kreuzberg_webhooks.django.urls")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": SECRET, "ASYNC": asynchronous}):
        spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def mounted(*patterns: Any, **webhook_settings: Any) -> Iterator[None]:
    with override_settings(ROOT_URLCONF=URLConf(*patterns), KREUZBERG_WEBHOOKS=webhook_settings):
        yield


def deliver(post: Poster, secret: str = SECRET, *, now: float = NOW, **overrides: Any) -> tuple[Answer, Any]:
    payload = job_event_payload(now=now, **overrides)
    body, headers = signed_delivery(secret, payload)
    return post("POST", PATH, body, list(headers.items())), payload


class RecordingWebhook(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    """A project's own sync view: ``handle_event`` is the handler."""

    handler: Callable[[Event], None] | None = None

    def handle_event(self, request: HttpRequest, event: Event) -> HttpResponse | None:
        assert self.handler is not None
        self.handler(event)
        return None


class AsyncRecordingWebhook(AsyncKreuzbergWebhookMixin, View):  # type: ignore[misc]
    """A project's own async view."""

    handler: Callable[[Event], None] | None = None

    async def handle_event(self, request: HttpRequest, event: Event) -> HttpResponse | None:
        assert self.handler is not None
        self.handler(event)
        return None


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """An empty handler registry for ``on()``, restored afterwards."""
    fresh: list[tuple[str, Any]] = []
    monkeypatch.setattr(django_conf, "_registered", fresh)
    return fresh


# -- the shared contract, six ways -------------------------------------------------------


class DjangoContract(AdapterContract):
    asynchronous_client = False

    def urlpatterns(self, receiver: Receiver, handler: Callable[[Event], None]) -> list[Any]:
        raise NotImplementedError

    @contextlib.contextmanager
    def open_poster(self, receiver: Receiver, handler: Callable[[Event], None]) -> Iterator[Poster]:
        # RECEIVER: the include's view uses the contract's receiver (frozen clock, small limit).
        with mounted(*self.urlpatterns(receiver, handler), RECEIVER=receiver):
            yield client_poster(self.asynchronous_client)


class TestIncludeSyncView(DjangoContract):
    """``include("kreuzberg_webhooks.django.urls")`` as shipped, under WSGI."""

    def urlpatterns(self, receiver: Receiver, handler: Callable[[Event], None]) -> list[Any]:
        # The receiver already dispatches to `handler` (make_receiver registered it).
        return [path("webhooks/", include("kreuzberg_webhooks.django.urls"))]


class TestIncludeSyncViewUnderASGI(TestIncludeSyncView):
    asynchronous_client = True


class TestIncludeAsyncView(DjangoContract):
    """The include with ``ASYNC = True``, under ASGI."""

    asynchronous_client = True

    def urlpatterns(self, receiver: Receiver, handler: Callable[[Event], None]) -> list[Any]:
        return [path("webhooks/", include(fresh_urls(asynchronous=True)))]


class TestMixinSyncView(DjangoContract):
    def urlpatterns(self, receiver: Receiver, handler: Callable[[Event], None]) -> list[Any]:
        # The receiver's registered handlers do not run: handle_event is the handler.
        return [path("webhooks/kreuzberg", RecordingWebhook.as_view(receiver=receiver, handler=handler))]


class TestMixinAsyncView(DjangoContract):
    asynchronous_client = True

    def urlpatterns(self, receiver: Receiver, handler: Callable[[Event], None]) -> list[Any]:
        return [path("webhooks/kreuzberg", AsyncRecordingWebhook.as_view(receiver=receiver, handler=handler))]


class TestMixinAsyncViewUnderWSGI(TestMixinAsyncView):
    asynchronous_client = False


# -- the URLconf include ---------------------------------------------------------------


def test_include_has_a_namespaced_named_route_at_webhooks_kreuzberg() -> None:
    assert reverse("kreuzberg_webhooks:webhook") == "/webhooks/kreuzberg"


@pytest.mark.parametrize(("asynchronous", "expected"), [(False, False), (True, True)], ids=["sync", "async"])
def test_async_setting_selects_the_view_flavour(asynchronous: bool, expected: bool) -> None:
    (pattern,) = fresh_urls(asynchronous=asynchronous).urlpatterns
    assert isinstance(pattern, URLPattern)
    assert iscoroutinefunction(pattern.callback) is expected
    assert pattern.callback.view_class is (AsyncKreuzbergWebhookView if expected else KreuzbergWebhookView)


@pytest.mark.parametrize("view_class", [KreuzbergWebhookView, AsyncKreuzbergWebhookView, RecordingWebhook])
def test_views_are_exempt_from_csrf_and_login(view_class: Any) -> None:
    view = view_class.as_view()
    assert view.csrf_exempt is True
    assert view.login_required is False


def test_middleware_protects_ordinary_views_so_the_exemption_is_meaningful() -> None:
    class Plain(View):  # type: ignore[misc]
        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("page")

        def post(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("posted")

    body, headers = signed_delivery(SECRET)
    webhooks = path("webhooks/", include(fresh_urls(asynchronous=False)))
    with mounted(path("plain", Plain.as_view()), webhooks, SECRET=SECRET, STORE="memory://"):
        client = Client(enforce_csrf_checks=True)
        assert client.get("/plain").status_code == 302  # LoginRequiredMiddleware: to the login page
        assert client.post("/plain", data=b"{}", content_type="application/json").status_code == 403  # CSRF
        answer = client.post(PATH, data=body, content_type="application/json", headers=dict(headers))
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_every_method_but_post_is_405_with_allow_post(method: str, asynchronous: bool) -> None:
    with mounted(path("webhooks/", include(fresh_urls(asynchronous=asynchronous))), SECRET=SECRET):
        answer = client_poster(asynchronous)(method, PATH, b"", [])
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    if method != "HEAD":  # Django strips the body of a HEAD response
        assert json.loads(answer.body)["error"] == "method_not_allowed"


# -- handlers registered with on(), and the signal ----------------------------------------


@pytest.mark.usefixtures("registry")
def test_handlers_registered_with_on_run_for_their_event_type() -> None:
    completed: list[Event] = []
    everything: list[Event] = []
    on("job.completed")(completed.append)
    on()(everything.append)
    with mounted(path("webhooks/", include(fresh_urls(asynchronous=False))), SECRET=SECRET, STORE="memory://"):
        post = client_poster(False)
        first, _ = deliver(post, now=time.time())
        second, _ = deliver(post, now=time.time(), status="failed", error_message="OCR failed")
    assert (first.status, second.status) == (200, 200)
    assert [e.status for e in completed] == ["completed"]
    assert [e.status for e in everything] == ["completed", "failed"]


@pytest.mark.usefixtures("registry")
def test_a_handler_registered_after_the_receiver_was_built_still_runs() -> None:
    late: list[Event] = []
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": SECRET, "STORE": "memory://"}):
        receiver = get_receiver()
        on()(late.append)
        assert get_receiver() is receiver
        body, headers = signed_delivery(SECRET)
        outcome = receiver.handle(body, headers)
    assert outcome.status_code == 200
    assert len(late) == 1


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_async_and_sync_handlers_both_run_in_either_view(asynchronous: bool) -> None:
    seen: list[str] = []

    @on()
    async def async_handler(event: Event) -> None:
        seen.append("async")

    @on()
    def sync_handler(event: Event) -> None:
        seen.append("sync")

    with mounted(path("webhooks/", include(fresh_urls(asynchronous=asynchronous))), SECRET=SECRET, STORE="memory://"):
        answer, _ = deliver(client_poster(asynchronous), now=time.time())
    assert answer.status == 200, answer
    assert seen == ["async", "sync"]


def test_on_refuses_an_unknown_event_type() -> None:
    with pytest.raises(ImproperlyConfigured):
        on("completed")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_signal_is_sent_once_with_the_event_and_the_request(asynchronous: bool) -> None:
    received: list[dict[str, Any]] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        received.append({"sender": sender, **kwargs})

    webhook_received.connect(listener)
    try:
        recorder = Recorder()
        with mounted(
            path("webhooks/", include(fresh_urls(asynchronous=asynchronous))), RECEIVER=make_receiver(recorder)
        ):
            post = client_poster(asynchronous)
            payload = job_event_payload(now=NOW)
            body, headers = signed_delivery(SECRET, payload)
            first = post("POST", PATH, body, list(headers.items()))
            again = post("POST", PATH, body, list(headers.items()))
    finally:
        webhook_received.disconnect(listener)
    assert (first.status, again.status) == (200, 200)
    (call,) = received
    assert call["event"].event_id == payload["event_id"]
    assert call["sender"] is (AsyncKreuzbergWebhookView if asynchronous else KreuzbergWebhookView)
    assert isinstance(call["request"], HttpRequest)
    assert len(recorder.events) == 1


def test_async_signal_receivers_are_awaited_by_the_async_view() -> None:
    awaited: list[str] = []

    async def listener(sender: Any, event: Event, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        awaited.append(str(event.event_id))

    webhook_received.connect(listener)
    try:
        with mounted(path("webhooks/", include(fresh_urls(asynchronous=True))), RECEIVER=make_receiver(Recorder())):
            answer, payload = deliver(client_poster(True))
    finally:
        webhook_received.disconnect(listener)
    assert answer.status == 200
    assert awaited == [payload["event_id"]]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_signal_receiver_that_raises_is_500_and_the_retry_is_processed(asynchronous: bool) -> None:
    def failing(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver failed on purpose")

    recorder = Recorder()
    with mounted(path("webhooks/", include(fresh_urls(asynchronous=asynchronous))), RECEIVER=make_receiver(recorder)):
        post = client_poster(asynchronous)
        body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
        webhook_received.connect(failing)
        try:
            failed = post("POST", PATH, body, list(headers.items()))
        finally:
            webhook_received.disconnect(failing)
        retry = post("POST", PATH, body, list(headers.items()))
    assert (failed.status, json.loads(failed.body)["error"]) == (500, "handler_error")
    assert (retry.status, json.loads(retry.body)) == (200, {"status": "processed"})
    # At-least-once: the handler before the failing receiver ran on both attempts.
    assert len(recorder.events) == 2


def test_async_view_cancelled_mid_handle_event_settles_by_its_end() -> None:
    # Django cancels an async view when the client goes away (and a timeout middleware does too)
    # while handle_event's code runs in a thread: its end still settles the claim, so the
    # sender's retry finds the event done instead of running it again once the lease ends.
    receiver = Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW, lease=1)
    started, release = threading.Event(), threading.Event()
    ran: list[str | None] = []

    class Slow(AsyncKreuzbergWebhookMixin, View):  # type: ignore[misc]
        async def handle_event(self, request: HttpRequest, event: Event) -> None:
            def work() -> None:
                started.set()
                release.wait(30)
                ran.append(event.event_id)

            await sync_to_async(work, thread_sensitive=False)()

    view = Slow.as_view(receiver=receiver)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    request = AsyncRequestFactory().post(PATH, data=body, content_type="application/json", headers=headers)

    async def scenario() -> str:
        running = asyncio.ensure_future(view(request))
        deadline = time.monotonic() + 30
        while not started.is_set():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        release.set()
        while (retry := await receiver.handle_async(body, headers)).reason == "in_flight":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        return retry.reason

    assert asyncio.run(scenario()) == "duplicate"
    assert ran == [json.loads(body)["event_id"]]


# -- the mixin's handle_event ---------------------------------------------------------------


class AnswersItself(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    """handle_event returns the status in the payload's ``answer`` field."""

    calls: list[int] | None = None

    def handle_event(self, request: HttpRequest, event: Event) -> HttpResponse | None:
        assert self.calls is not None
        status = int(event.raw["answer"])
        self.calls.append(status)
        return JsonResponse({"answered": status}, status=status)


def test_handle_event_response_2xx_is_kept_and_marks_the_event_done() -> None:
    calls: list[int] = []
    view = AnswersItself.as_view(receiver=make_receiver(Recorder()), calls=calls)
    with mounted(path("webhooks/kreuzberg", view)):
        post = client_poster(False)
        body, headers = signed_delivery(SECRET, job_event_payload(now=NOW, answer=202))
        first = post("POST", PATH, body, list(headers.items()))
        again = post("POST", PATH, body, list(headers.items()))
    assert (first.status, json.loads(first.body)) == (202, {"answered": 202})
    assert (again.status, json.loads(again.body)) == (200, {"status": "duplicate"})
    assert calls == [202]


def test_handle_event_response_non_2xx_releases_the_claim() -> None:
    calls: list[int] = []
    view = AnswersItself.as_view(receiver=make_receiver(Recorder()), calls=calls)
    with mounted(path("webhooks/kreuzberg", view)):
        post = client_poster(False)
        body, headers = signed_delivery(SECRET, job_event_payload(now=NOW, answer=503))
        first = post("POST", PATH, body, list(headers.items()))
        retry = post("POST", PATH, body, list(headers.items()))
    assert (first.status, retry.status) == (503, 503)
    assert calls == [503, 503]  # released, so the retry ran the view again


# -- reading the body ------------------------------------------------------------------------


class Counting(io.RawIOBase):
    """A wsgi.input that counts what the view reads."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.consumed += len(chunk)
        return chunk


def wsgi_request(stream: Counting, headers: dict[str, str], *, content_length: int | None = None) -> WSGIRequest:
    """A request as gunicorn hands it over: wsgi.input ends where the body ends."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": PATH,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": stream,
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": "application/json",
    }
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    for name, value in headers.items():
        if name.lower() != "content-type":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return WSGIRequest(environ)


def test_chunked_body_without_content_length_is_read_from_wsgi_input() -> None:
    # Django's WSGIRequest alone would see an empty body (no Content-Length).
    recorder = Recorder()
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    stream = Counting(body)
    response = KreuzbergWebhookView.as_view(receiver=make_receiver(recorder))(wsgi_request(stream, headers))
    assert response.status_code == 200, response.content
    assert len(recorder.events) == 1


def test_oversized_chunked_body_is_refused_while_reading() -> None:
    recorder = Recorder()
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW, padding="x" * 2_000_000))
    stream = Counting(body)
    response = KreuzbergWebhookView.as_view(receiver=make_receiver(recorder))(wsgi_request(stream, headers))
    assert response.status_code == 413
    assert json.loads(response.content)["error"] == "payload_too_large"
    assert stream.consumed <= 64 * 1024 < len(body) // 20  # stopped at the first chunk past the limit
    assert recorder.events == []


def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW, padding="x" * LIMIT))
    stream = Counting(body)
    request = wsgi_request(stream, headers, content_length=len(body))
    response = KreuzbergWebhookView.as_view(receiver=make_receiver(Recorder()))(request)
    assert response.status_code == 413
    assert stream.consumed == 0


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_body_over_data_upload_max_memory_size_is_processed_not_a_400(asynchronous: bool) -> None:
    # request.body would raise RequestDataTooBig (answered 400: the sender would
    # drop the event for good); the views read the stream against MAX_BODY_SIZE.
    bodies: list[bytes] = []

    class ReadsBody(KreuzbergWebhookMixin, View):  # type: ignore[misc]
        def handle_event(self, request: HttpRequest, event: Event) -> None:
            bodies.append(request.body)  # still available after the view read the stream

    class AsyncReadsBody(AsyncKreuzbergWebhookMixin, View):  # type: ignore[misc]
        async def handle_event(self, request: HttpRequest, event: Event) -> None:
            bodies.append(request.body)

    receiver = Receiver(SECRET, clock=lambda: NOW, max_body_size=1 << 20)
    view = (AsyncReadsBody if asynchronous else ReadsBody).as_view()
    with (
        mounted(path("webhooks/kreuzberg", view), RECEIVER=receiver),
        override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024),
    ):
        payload = job_event_payload(now=NOW, padding="x" * 50_000)
        body, headers = signed_delivery(SECRET, payload)
        answer = client_poster(asynchronous)("POST", PATH, body, list(headers.items()))
    assert answer.status == 200, answer
    assert bodies == [body]


# -- settings: kwargs -> KREUZBERG_WEBHOOKS -> defaults ---------------------------------------


def test_get_setting_prefers_kwargs_then_settings_then_default() -> None:
    with override_settings(KREUZBERG_WEBHOOKS={"MAX_AGE": 600, "LEASE": 30}):
        kwargs: dict[str, Any] = {"max_age": 60}
        assert get_setting("MAX_AGE", kwargs=kwargs) == 60
        assert kwargs == {}  # consumed
        assert get_setting("MAX_AGE") == 600
        assert get_setting("LEASE", default=5) == 30
        assert get_setting("MAX_FUTURE") == 300
        assert get_setting("SIGNATURE_HEADER") == "X-Webhook-Signature"


def test_build_receiver_reads_every_setting() -> None:
    with override_settings(
        KREUZBERG_WEBHOOKS={
            "SECRET": SECRET,
            "STORE": "cache",
            "CACHE_ALIAS": "default",
            "KEY_PREFIX": "hooks:",
            "MAX_BODY_SIZE": 2048,
            "SIGNATURE_HEADER": "X-Kreuzberg-Signature",
            "MAX_AGE": 600,
            "MAX_FUTURE": 30,
            "DOCUMENT_MAX_AGE": 3600,
            "LEASE": 45,
            "RETENTION": 7200,
        }
    ):
        receiver = build_receiver()
    assert isinstance(receiver.store, DjangoCacheStore)
    assert (receiver.store.alias, receiver.store.key_prefix) == ("default", "hooks:")
    assert receiver.verifier.max_body_size == 2048
    assert receiver.verifier.header == "X-Kreuzberg-Signature"
    assert (receiver.verifier.window.max_age, receiver.verifier.window.max_future) == (600, 30)
    assert receiver.verifier.document_window == ReplayWindow(max_age=3600, max_future=30)
    assert (receiver.lease, receiver.retention) == (45, 7200)


def test_build_receiver_keyword_arguments_win_and_extra_ones_reach_the_receiver() -> None:
    clock = FrozenClock(NOW)
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": "settings-secret-0123456789abcdef0123"}):
        receiver = build_receiver(secret=SECRET, store="memory://", clock=clock)
    assert isinstance(receiver.store, MemoryStore)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    assert receiver.handle(body, headers).status_code == 200


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="no-secret"),
        pytest.param({"SECRET": ""}, id="empty-secret"),
        pytest.param({"SECRET": SECRET, "SECRETS": [SECRET]}, id="both"),
        pytest.param({"SECRET": SECRET, "STORE": "ftp://nowhere"}, id="unknown-store-url"),
        pytest.param({"SECRET": SECRET, "STORE": 42}, id="store-not-a-store"),
        pytest.param({"SECRET": SECRET, "STORE": "cache", "CACHE_ALIAS": "absent"}, id="unknown-cache"),
        pytest.param({"SECRET": SECRET, "RETENTION": 60}, id="retention-shorter-than-window"),
        pytest.param({"SECRET": SECRET, "MAX_BODY_SIZE": "big"}, id="bad-size"),
    ],
)
def test_build_receiver_refuses_an_unworkable_configuration(options: dict[str, Any]) -> None:
    with override_settings(KREUZBERG_WEBHOOKS=options), pytest.raises(ImproperlyConfigured):
        build_receiver()


def test_secrets_list_accepts_every_secret_for_rotation() -> None:
    new, old = SECRET, "the-previous-secret-0123456789abcdef0123"
    with override_settings(KREUZBERG_WEBHOOKS={"SECRETS": [new, old], "STORE": "memory://"}):
        receiver = build_receiver(clock=lambda: NOW)
    for secret in (new, old):
        body, headers = signed_delivery(secret, job_event_payload(now=NOW))
        assert receiver.handle(body, headers).status_code == 200


def test_signature_header_and_size_settings_apply_to_the_include() -> None:
    with mounted(
        path("webhooks/", include(fresh_urls(asynchronous=False))),
        SECRET=SECRET,
        STORE="memory://",
        SIGNATURE_HEADER="X-Kreuzberg-Signature",
        MAX_BODY_SIZE=2048,
    ):
        post = client_poster(False)
        body, headers = signed_delivery(SECRET, job_event_payload(now=time.time()))
        signature = headers.pop("X-Webhook-Signature")
        moved = post("POST", PATH, body, [*headers.items(), ("X-Kreuzberg-Signature", signature)])
        default_name = post("POST", PATH, body, [*headers.items(), ("X-Webhook-Signature", signature)])
        big, _ = deliver(post, now=time.time(), padding="x" * 4096)
    assert moved.status == 200, moved
    assert (default_name.status, json.loads(default_name.body)["error"]) == (401, "missing_signature")
    assert big.status == 413


def dotted_receiver() -> Receiver:
    """Referred to by its dotted path in RECEIVER."""
    return Receiver(SECRET, store=MemoryStore(), clock=lambda: NOW)


def test_receiver_setting_takes_a_dotted_path() -> None:
    with override_settings(KREUZBERG_WEBHOOKS={"RECEIVER": f"{__name__}.dotted_receiver"}):
        receiver = get_receiver()
    assert isinstance(receiver, Receiver)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    assert receiver.handle(body, headers).status_code == 200


def test_configured_receiver_is_built_once_and_again_when_the_setting_changes() -> None:
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": SECRET, "STORE": "memory://"}):
        first = get_receiver()
        assert get_receiver() is first
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": SECRET, "STORE": "memory://", "LEASE": 30}):
        second = get_receiver()
    assert second is not first
    assert second.lease == 30


# -- system checks -------------------------------------------------------------------------


def check_ids(options: Any, **django_settings: Any) -> list[str]:
    with override_settings(KREUZBERG_WEBHOOKS=options, **django_settings):
        messages: list[CheckMessage] = check_settings() + check_store()
    return sorted(str(m.id) for m in messages)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"SECRET": SECRET, "STORE": "sqlite:///hooks.db"}, [], id="good"),
        pytest.param({"STORE": "sqlite:///hooks.db"}, ["kreuzberg_webhooks.E001"], id="missing-secret"),
        pytest.param({"SECRET": "", "STORE": "sqlite:///hooks.db"}, ["kreuzberg_webhooks.E001"], id="empty-secret"),
        pytest.param({"SECRET": "short", "STORE": "sqlite:///hooks.db"}, ["kreuzberg_webhooks.W001"], id="short"),
        pytest.param(
            {"SECRETS": [SECRET, "too-short"], "STORE": "sqlite:///hooks.db"},
            ["kreuzberg_webhooks.W001"],
            id="one-short-in-a-list",
        ),
        pytest.param(
            {"SECRET": SECRET, "SECRETS": [SECRET], "STORE": "sqlite:///hooks.db"},
            ["kreuzberg_webhooks.E002"],
            id="both",
        ),
        pytest.param(["not", "a", "dict"], ["kreuzberg_webhooks.E002"], id="not-a-dict"),
        pytest.param(
            {"SECRET": SECRET, "STORE": "sqlite:///hooks.db", "MAX_AGEE": 5},
            ["kreuzberg_webhooks.W004"],
            id="typo",
        ),
        pytest.param({"RECEIVER": "some.module.receiver"}, [], id="ready-receiver"),
        pytest.param({"SECRET": SECRET}, ["kreuzberg_webhooks.W002"], id="default-is-memory"),
        pytest.param({"SECRET": SECRET, "STORE": "cache"}, ["kreuzberg_webhooks.W002"], id="cache-is-locmem"),
        pytest.param({"SECRET": SECRET, "STORE": "memory://"}, ["kreuzberg_webhooks.W002"], id="memory-url"),
        pytest.param({"SECRET": SECRET, "STORE": MemoryStore()}, ["kreuzberg_webhooks.W002"], id="memory-object"),
        pytest.param(
            {"SECRET": SECRET, "STORE": "cache", "CACHE_ALIAS": "files"}, ["kreuzberg_webhooks.W003"], id="file-cache"
        ),
        pytest.param(
            {"SECRET": SECRET, "STORE": "cache", "CACHE_ALIAS": "nothing"},
            ["kreuzberg_webhooks.E004"],
            id="dummy-cache",
        ),
        pytest.param(
            {"SECRET": SECRET, "STORE": "cache", "CACHE_ALIAS": "absent"},
            ["kreuzberg_webhooks.E003"],
            id="no-such-cache",
        ),
    ],
)
def test_system_checks(options: Any, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the relative sqlite:///hooks.db is made here, not in the checkout
    assert check_ids(options) == expected


def all_check_ids(options: Any, **django_settings: Any) -> list[str]:
    """The ids of every message this package's registered system checks give."""
    with override_settings(KREUZBERG_WEBHOOKS=options, **django_settings):
        messages = run_checks()
    return sorted(str(m.id) for m in messages if str(m.id).startswith("kreuzberg_webhooks."))


class _OwnInboxWebhook(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    def handle_event(self, request: HttpRequest, event: Event) -> None:
        return None


class _OtherWebhook(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    def handle_event(self, request: HttpRequest, event: Event) -> None:
        return None


def _own_inbox_receiver(tmp: str) -> Receiver:
    from kreuzberg_webhooks.inbox import SQLiteInbox

    return Receiver(SECRET, inbox=SQLiteInbox(f"{tmp}/own-inbox.sqlite3"))


_GOOD = {"SECRET": SECRET, "STORE": "sqlite:///hooks.db"}
_INBOX = {**_GOOD, "INBOX": "sqlite:///inbox.sqlite3"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(_INBOX, [], id="inbox-url"),
        pytest.param({**_GOOD, "STORE": "sqllite:///hooks.db"}, ["kreuzberg_webhooks.E005"], id="store-scheme-typo"),
        pytest.param(
            {**_GOOD, "STORE": "sqlite:////no/such/directory/hooks.db"},
            ["kreuzberg_webhooks.E005"],
            id="store-directory-missing",
        ),
        pytest.param({**_GOOD, "STORE": 42}, ["kreuzberg_webhooks.E005"], id="store-not-a-store"),
        pytest.param({**_GOOD, "INBOX": "djnago"}, ["kreuzberg_webhooks.E006"], id="inbox-typo"),
        pytest.param({**_GOOD, "INBOX": "django"}, ["kreuzberg_webhooks.E006"], id="inbox-app-missing"),
        pytest.param({**_GOOD, "INBOX": "sqlite:////no/such/dir/i.db"}, ["kreuzberg_webhooks.E006"], id="inbox-dir"),
        pytest.param({**_GOOD, "INBOX": 42}, ["kreuzberg_webhooks.E006"], id="inbox-not-an-inbox"),
        pytest.param({**_INBOX, "INBOX_RETRY": {"first_delay": -1}}, ["kreuzberg_webhooks.E007"], id="retry-negative"),
        pytest.param({**_INBOX, "INBOX_RETRY": {"FIRST_DELAI": 1}}, ["kreuzberg_webhooks.E007"], id="retry-typo"),
        pytest.param({**_INBOX, "INBOX_RETRY": "fast"}, ["kreuzberg_webhooks.E007"], id="retry-not-a-dict"),
        pytest.param({**_GOOD, "INBOX_WORKER": True}, ["kreuzberg_webhooks.E006"], id="worker-without-inbox"),
        pytest.param(
            {"RECEIVER": "some.module.receiver", "INBOX": "sqlite:///inbox.sqlite3"},
            ["kreuzberg_webhooks.E006"],
            id="inbox-beside-a-ready-receiver",
        ),
    ],
)
def test_system_checks_refuse_stores_inboxes_and_retry_policies_that_cannot_work(
    options: Any, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the relative sqlite:/// files are made here, not in the checkout
    assert all_check_ids(options) == expected


def test_system_checks_refuse_webhook_views_whose_handle_event_no_worker_can_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the relative sqlite:///hooks.db is made here, not in the checkout
    ready = path("webhooks/", include("kreuzberg_webhooks.django.urls"))
    one = path("hooks/one", _OtherWebhook.as_view())
    own = path("hooks/own", _OwnInboxWebhook.as_view(receiver=_own_inbox_receiver(str(tmp_path))))
    ready_own = path("hooks/ready", KreuzbergWebhookView.as_view(receiver=_own_inbox_receiver(str(tmp_path))))
    # One view, or several that share a handle_event: the worker runs it.
    assert all_check_ids(_INBOX, ROOT_URLCONF=URLConf(one)) == []
    assert all_check_ids(_INBOX, ROOT_URLCONF=URLConf(ready, path("again", KreuzbergWebhookView.as_view()))) == []
    # Without an inbox every view runs its handle_event in the request.
    assert all_check_ids(_GOOD, ROOT_URLCONF=URLConf(ready, one)) == []
    # Two different ones: which one a queued delivery came in through is not known.
    assert all_check_ids(_INBOX, ROOT_URLCONF=URLConf(ready, one)) == ["kreuzberg_webhooks.E008"]
    # A view of its own with an inbox: no Django worker runs its handle_event, nor sends the signal.
    assert all_check_ids(_GOOD, ROOT_URLCONF=URLConf(own)) == ["kreuzberg_webhooks.E008"]
    assert all_check_ids(_GOOD, ROOT_URLCONF=URLConf(ready_own)) == ["kreuzberg_webhooks.W005"]


def test_the_system_checks_open_no_store(tmp_path: Any) -> None:
    store = tmp_path / "hooks.db"
    options = {"SECRET": SECRET, "STORE": f"sqlite:///{store}", "INBOX": f"sqlite:///{tmp_path / 'inbox.db'}"}
    ready = path("webhooks/", include("kreuzberg_webhooks.django.urls"))
    assert all_check_ids(options, ROOT_URLCONF=URLConf(ready)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_shared_cache_backend_passes_the_store_check() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1"}}
    assert check_ids({"SECRET": SECRET, "STORE": "cache"}, CACHES=caches) == []


def test_short_secret_warning_does_not_reveal_the_secret() -> None:
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": "hunter2-secret"}):
        (message,) = check_settings()
    assert "hunter2" not in f"{message.msg} {message.hint}"
    assert "14 bytes" in message.msg


def test_manage_py_check_fails_without_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the relative sqlite:///hooks.db is made here, not in the checkout
    with (
        override_settings(KREUZBERG_WEBHOOKS={"STORE": "sqlite:///hooks.db"}),
        pytest.raises(SystemCheckError) as error,
    ):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert "kreuzberg_webhooks.E001" in str(error.value)


def test_manage_py_check_passes_a_good_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": SECRET, "STORE": "sqlite:///hooks.db"}):
        call_command("check", stdout=out, stderr=io.StringIO())
    assert "no issues" in out.getvalue()


# -- DjangoCacheStore ------------------------------------------------------------------------


class TestDjangoCacheStore(StoreContract):
    """The store contract on LocMemCache. The cache keeps time itself (whole seconds
    on most backends), so these cases let real time pass."""

    LEASE, RETENTION, TICK = 1.0, 2.0, 0.25

    def make_store(self, clock: StoreClock) -> ReplayStore:
        return DjangoCacheStore("default", key_prefix=f"contract-{id(clock)}:")

    def advance(self, clock: StoreClock, seconds: float) -> None:
        time.sleep(seconds)  # waiting for the cache's TTL, not for a race


class TestDjangoCacheStoreOnRedis(TestDjangoCacheStore):
    """The same contract on Django's own RedisCache backend and a real redis-server:
    ``add`` is ``SET NX`` there, so claims are atomic across processes and machines."""

    @pytest.fixture(autouse=True)
    def _redis_cache(self, redis_url: str) -> Iterator[None]:
        backend = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
        with override_settings(CACHES={"default": backend}):
            yield

    def test_the_store_really_uses_redis(self, store: ReplayStore, redis_url: str) -> None:
        import redis

        key = new_key()
        store.claim(key, self.LEASE)
        assert isinstance(store, DjangoCacheStore)
        with redis.Redis.from_url(redis_url) as client:
            assert client.keys(f"*{store.cache_key(key)}")


def test_cache_store_keys_carry_the_prefix_and_odd_keys_are_hashed() -> None:
    store = DjangoCacheStore("default", key_prefix="p:")
    assert store.cache_key("event:01ABC") == "p:event:01ABC"
    odd = [f"job:{new_key()}:new status", "event:" + "x" * 300, "event:ünïcode"]
    for key in odd:
        cache_key = store.cache_key(key)
        assert cache_key.startswith("p:sha256:")
        assert len(cache_key) < 100
        assert store.claim(key, 30).state is ClaimState.NEW
        assert store.claim(key, 30).state is ClaimState.IN_FLIGHT
    assert len({store.cache_key(key) for key in odd}) == len(odd)


def test_cache_store_release_leaves_a_lease_about_to_expire_alone() -> None:
    # Between reading and deleting, a lease this close to its end could expire and be
    # taken by another request: release lets it lapse instead of deleting it.
    clock = FrozenClock(NOW)
    store = DjangoCacheStore("default", clock=clock)
    key = new_key()
    token = store.claim(key, 10).token
    assert token is not None
    clock.advance(9.5)
    store.release(key, token)
    assert store.claim(key, 10).state is ClaimState.IN_FLIGHT


def test_cache_store_renew_leaves_a_lease_about_to_expire_alone() -> None:
    # Between reading and writing, a lease this close to its end could expire and be taken by
    # another request: renew answers False (the heartbeat's holder has lost it) rather than overwrite.
    clock = FrozenClock(NOW)
    store = DjangoCacheStore("default", clock=clock)
    key = new_key()
    token = store.claim(key, 10).token
    assert token is not None
    clock.advance(5)
    assert store.renew(key, token, 10) is True
    claim = store.claim(key, 10)
    assert claim.state is ClaimState.IN_FLIGHT
    assert claim.retry_after == pytest.approx(10)  # the renewed lease, counted from the renewal
    clock.advance(9.5)
    assert store.renew(key, token, 10) is False
    assert store.claim(key, 10).retry_after == pytest.approx(0.5)  # left as it was


class PausingCache(LocMemCache):
    """A LocMemCache whose reads of one key wait for a signal: a renewal caught between its read and
    its write, the moment its own request completes the event."""

    paused_key: str | None = None
    reading = threading.Event()
    resume = threading.Event()

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        value = super().get(key, default, version)
        if key == PausingCache.paused_key:
            PausingCache.reading.set()
            assert PausingCache.resume.wait(30)
        return value


def test_cache_store_renew_never_writes_a_lease_back_over_its_own_completion() -> None:
    PausingCache.reading, PausingCache.resume = threading.Event(), threading.Event()
    backend = {"BACKEND": f"{__name__}.PausingCache", "LOCATION": "pausing"}
    with override_settings(CACHES={"default": backend}):
        store = DjangoCacheStore("default")
        key = new_key()
        token = store.claim(key, 60).token
        assert token is not None
        PausingCache.paused_key = store.cache_key(key)
        renewed: list[bool] = []
        renewal = threading.Thread(target=lambda: renewed.append(store.renew(key, token, 60)))
        renewal.start()
        assert PausingCache.reading.wait(30)  # the heartbeat has read the lease
        PausingCache.paused_key = None
        completion = threading.Thread(target=store.complete, args=(key, token, 600))
        completion.start()
        # Give an unserialised completion the time to write "done" before the renewal writes (a
        # serialised one waits for the renewal whatever the delay; nothing here asserts a time).
        completion.join(0.5)
        PausingCache.resume.set()
        renewal.join(30)
        completion.join(30)
        assert not renewal.is_alive()
        assert not completion.is_alive()
        assert renewed == [True]  # the renewal did write, before the completion
        assert store.claim(key, 60).state is ClaimState.DONE


def test_cache_store_in_flight_retry_after_comes_from_the_lease() -> None:
    clock = FrozenClock(NOW)
    store = DjangoCacheStore("default", clock=clock)
    key = new_key()
    store.claim(key, 120)
    clock.advance(100)
    claim = store.claim(key, 120)
    assert claim.state is ClaimState.IN_FLIGHT
    assert claim.retry_after == pytest.approx(20)


def test_cache_store_key_holding_a_foreign_value_is_503_not_a_guess() -> None:
    store = DjangoCacheStore("default")
    key = new_key()
    store.cache.set(store.cache_key(key), {"someone": "else"})
    with pytest.raises(StoreUnavailable):
        store.claim(key, 30)
    receiver = Receiver(SECRET, store=store, clock=lambda: NOW)
    payload = job_event_payload(now=NOW)
    store.cache.set(store.cache_key(parse_event(payload).dedup_key), 12345)
    body, headers = signed_delivery(SECRET, payload)
    assert receiver.handle(body, headers).status_code == 503


def test_cache_store_from_settings_deduplicates_through_the_include() -> None:
    recorder = Recorder()
    with mounted(path("webhooks/", include(fresh_urls(asynchronous=False))), SECRET=SECRET, STORE="cache"):
        receiver = get_receiver()
        assert isinstance(receiver.store, DjangoCacheStore)
        receiver.on()(recorder)
        post = client_poster(False)
        body, headers = signed_delivery(SECRET, job_event_payload(now=time.time()))
        answers = [post("POST", PATH, body, list(headers.items())) for _ in range(3)]
    assert [json.loads(a.body)["status"] for a in answers] == ["processed", "duplicate", "duplicate"]
    assert len(recorder.events) == 1


def test_sqlite_store_url_setting_opens_a_sqlite_store(tmp_path: Any) -> None:
    with override_settings(KREUZBERG_WEBHOOKS={"SECRET": SECRET, "STORE": f"sqlite:///{tmp_path}/hooks.db"}):
        receiver = build_receiver()
    assert isinstance(receiver.store, SQLiteStore)


# -- the optional dependency ----------------------------------------------------------------


def test_importing_the_adapter_without_django_names_the_extra() -> None:
    code = "import sys; sys.modules['django'] = None; import kreuzberg_webhooks.django"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert 'pip install "kreuzberg-webhooks[django]"' in result.stderr


def test_the_testing_guides_django_path_answers_with_the_documented_urlconf() -> None:
    # docs/testing.md shows kreuzberg_post.django(client, "<path>") for the project that mounts the
    # include as the Django guide does: that path must reach the view (no 404, no redirect).
    from pathlib import Path

    from kreuzberg_webhooks.testing.pytest_plugin import post_with_django

    guide = (Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text()
    paths = re.findall(r'kreuzberg_post\.django\(client, "([^"]+)"\)', guide)
    assert paths
    recorder = Recorder()
    with mounted(path("webhooks/", include(fresh_urls(asynchronous=False))), RECEIVER=make_receiver(recorder)):
        for documented in paths:
            body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
            response = post_with_django(Client(), documented, (body, headers))
            assert (documented, response.status_code) == (documented, 200)
    assert len(recorder.events) == len(paths)


# -- the headers the views read --------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "X-Webhook-Signature",
        "x-webhook-signature",
        "X-WEBHOOK-SIGNATURE",
        "Content-Type",
        "content-length",
        "X-Idempotency-Key",
        "X-Empty",
        "X-Missing",
        "x_webhook_signature",
        "X-Wébhook",
    ],
)
@pytest.mark.parametrize("content_length", ["8", ""])
def test_the_views_read_each_header_as_request_headers_does(name: str, content_length: str) -> None:
    from django.test import RequestFactory

    from kreuzberg_webhooks.django.views import MetaHeaders

    request = RequestFactory().post(
        PATH,
        data=b'{"a": 1}',
        content_type="application/json",
        headers={"X-Webhook-Signature": "sha256=ab", "X-Idempotency-Key": "k-1", "X-Empty": ""},
    )
    request.META["CONTENT_LENGTH"] = content_length  # a server may pass an empty one
    headers = MetaHeaders(request.META)
    assert headers.get(name) == request.headers.get(name)
    assert (name in headers) == (name in request.headers)
    assert dict(headers) == {name.lower(): value for name, value in request.headers.items()}
