"""The Flask decorator and extension: the shared contract, plus Flask-level behaviour."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, abort, got_request_exception, request
from flask.testing import FlaskClient

from kreuzberg_webhooks import ConfigurationError, Event, JobEvent, MemoryStore, Receiver, SQLiteStore
from kreuzberg_webhooks.adapters.flask import EXTENSION_KEY, KreuzbergWebhooks, webhook
from kreuzberg_webhooks.testing import FrozenClock, job_event_payload, signed_delivery

from .contract import LIMIT, NOW, PATH, SECRET, AdapterContract, Answer, Poster, Recorder, make_receiver
from .support import CountingStream, import_error_without

OTHER_SECRET = "another-app-secret-0123456789abcdef0123"


def client_poster(client: FlaskClient) -> Poster:
    def post(method: str, path: str, body: bytes, headers: list[tuple[str, str]]) -> Answer:
        response = client.open(path, method=method, data=body, headers=headers)
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.get_data())

    return post


def decorated_app(receiver: Receiver, handler: Callable[[Event], None]) -> Flask:
    app = Flask(__name__)

    @app.post(PATH)
    @webhook(receiver)
    def kreuzberg_webhook(event: Event) -> dict[str, str]:
        handler(event)
        return {"status": "processed"}

    @app.get("/other")
    def other() -> str:
        return "other page"

    return app


class TestDecorator(AdapterContract):
    @contextlib.contextmanager
    def open_poster(self, receiver: Receiver, handler: Callable[[Event], None]) -> Iterator[Poster]:
        # The receiver's registered handlers do not run: the decorated view is the handler.
        yield client_poster(decorated_app(receiver, handler).test_client())


class TestExtensionEndpoint(AdapterContract):
    @contextlib.contextmanager
    def open_poster(self, receiver: Receiver, handler: Callable[[Event], None]) -> Iterator[Poster]:
        # The receiver already dispatches to `handler` (make_receiver registered it).
        app = Flask(__name__)
        KreuzbergWebhooks(app, receiver=receiver, url=PATH)
        yield client_poster(app.test_client())


class TestExtensionVerifiedView(AdapterContract):
    @contextlib.contextmanager
    def open_poster(self, receiver: Receiver, handler: Callable[[Event], None]) -> Iterator[Poster]:
        app = Flask(__name__)
        webhooks = KreuzbergWebhooks(receiver=receiver)

        @app.post(PATH)
        @webhooks.verified
        def kreuzberg_webhook(event: Event) -> None:
            handler(event)

        webhooks.init_app(app)  # after the route: the view finds the receiver at request time
        yield client_poster(app.test_client())


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def receiver(recorder: Recorder) -> Receiver:
    return make_receiver(recorder)


def delivery(**overrides: Any) -> tuple[bytes, dict[str, str]]:
    return signed_delivery(SECRET, job_event_payload(now=NOW, **overrides))


def view_app(receiver: Receiver, view: Callable[..., Any], rule: str = PATH) -> Flask:
    app = Flask(__name__)
    app.post(rule)(webhook(receiver)(view))
    return app


# -- the decorated view --------------------------------------------------------------------


def test_view_gets_the_event_as_keyword_next_to_url_variables(receiver: Receiver) -> None:
    seen: list[tuple[str, str]] = []

    def view(tenant: str, event: JobEvent) -> tuple[str, int]:
        seen.append((tenant, str(event.job_id)))
        return "", 204

    app = view_app(receiver, view, "/webhooks/<tenant>")
    body, headers = delivery()
    response = app.test_client().post("/webhooks/acme", data=body, headers=headers)
    assert response.status_code == 204
    assert seen == [("acme", json.loads(body)["job_id"])]


def test_view_can_still_read_the_raw_body_and_json(receiver: Receiver) -> None:
    def view(event: Event) -> dict[str, Any]:
        return {"same": request.get_data() == body, "job_id": request.get_json()["job_id"]}

    body, headers = delivery()
    response = view_app(receiver, view).test_client().post(PATH, data=body, headers=headers)
    assert response.get_json() == {"same": True, "job_id": json.loads(body)["job_id"]}


def test_view_returning_none_answers_processed(receiver: Receiver) -> None:
    body, headers = delivery()
    response = view_app(receiver, lambda event: None).test_client().post(PATH, data=body, headers=headers)
    assert (response.status_code, response.get_json()) == (200, {"status": "processed"})


def test_async_view_runs_and_settles(receiver: Receiver) -> None:
    events: list[Event] = []

    async def view(event: Event) -> tuple[str, int]:
        events.append(event)
        return "", 202

    client = view_app(receiver, view).test_client()
    body, headers = delivery()
    first = client.post(PATH, data=body, headers=headers)
    again = client.post(PATH, data=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json() == {"status": "duplicate"}
    assert len(events) == 1


@pytest.mark.parametrize(
    ("status", "retry_processed"),
    [
        pytest.param(200, False, id="200-completes"),
        pytest.param(204, False, id="204-completes"),
        pytest.param(404, True, id="404-releases"),
        pytest.param(500, True, id="500-releases"),
        pytest.param(503, True, id="503-releases"),
    ],
)
def test_view_status_settles_the_claim(receiver: Receiver, status: int, retry_processed: bool) -> None:
    calls: list[Event] = []

    def view(event: Event) -> tuple[str, int]:
        calls.append(event)
        return "", status

    client = view_app(receiver, view).test_client()
    body, headers = delivery()
    assert client.post(PATH, data=body, headers=headers).status_code == status
    again = client.post(PATH, data=body, headers=headers)
    assert len(calls) == (2 if retry_processed else 1)
    if not retry_processed:
        assert again.get_json() == {"status": "duplicate"}


def test_abort_in_the_view_is_rendered_by_flask_and_releases(receiver: Receiver) -> None:
    calls: list[Event] = []

    def view(event: Event) -> str:
        calls.append(event)
        if len(calls) == 1:
            abort(503)
        return "ok"

    client = view_app(receiver, view).test_client()
    body, headers = delivery()
    first = client.post(PATH, data=body, headers=headers)
    assert first.status_code == 503
    assert b"Service Unavailable" in first.get_data()
    assert client.post(PATH, data=body, headers=headers).status_code == 200
    assert len(calls) == 2


def test_exception_propagates_when_testing_and_the_claim_is_released(receiver: Receiver, recorder: Recorder) -> None:
    app = decorated_app(receiver, recorder)
    app.testing = True
    recorder.fail = True
    body, headers = delivery()
    with pytest.raises(RuntimeError, match="handler failed on purpose"):
        app.test_client().post(PATH, data=body, headers=headers)
    recorder.fail = False
    assert app.test_client().post(PATH, data=body, headers=headers).get_json() == {"status": "processed"}
    assert len(recorder.events) == 1


def test_exception_in_production_signals_logs_and_answers_handler_error(
    receiver: Receiver, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    app = decorated_app(receiver, recorder)
    signalled: list[BaseException] = []

    def on_exception(sender: Flask, exception: BaseException, **extra: Any) -> None:
        signalled.append(exception)

    recorder.fail = True
    body, headers = delivery()
    with got_request_exception.connected_to(on_exception, app):
        response = app.test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 500
    assert response.get_json()["error"] == "handler_error"
    assert [str(error) for error in signalled] == ["handler failed on purpose"]
    assert any(r.name == app.logger.name and r.exc_info for r in caplog.records)


# -- reading the body ---------------------------------------------------------------------


@pytest.mark.parametrize("setup", ["decorator", "endpoint"])
def test_huge_chunked_body_stops_being_read_just_past_the_limit(
    receiver: Receiver, recorder: Recorder, setup: str
) -> None:
    if setup == "decorator":
        app = decorated_app(receiver, recorder)
    else:
        app = Flask(__name__)
        KreuzbergWebhooks(app, receiver=receiver, url=PATH)
    stream = CountingStream()
    response = app.test_client().post(
        PATH,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"
    assert LIMIT < stream.given <= LIMIT + 1
    assert recorder.events == []


def test_declared_length_over_the_limit_is_refused_before_reading(receiver: Receiver, recorder: Recorder) -> None:
    stream = CountingStream()
    response = (
        decorated_app(receiver, recorder)
        .test_client()
        .post(PATH, environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": str(LIMIT + 1)})
    )
    assert response.status_code == 413
    assert stream.given == 0


def test_body_exactly_at_the_limit_is_accepted(receiver: Receiver, recorder: Recorder) -> None:
    payload = job_event_payload(now=NOW, padding="")
    size = len(json.dumps(payload, separators=(",", ":")))
    body, headers = delivery(padding="x" * (LIMIT - size))
    assert len(body) == LIMIT
    response = decorated_app(receiver, recorder).test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 200
    assert len(recorder.events) == 1


def test_chunked_body_without_content_length_is_read_to_its_end(receiver: Receiver, recorder: Recorder) -> None:
    body, headers = delivery()
    headers["Transfer-Encoding"] = "chunked"
    response = (
        decorated_app(receiver, recorder)
        .test_client()
        .post(PATH, input_stream=io.BytesIO(body), headers=headers, environ_overrides={"wsgi.input_terminated": True})
    )
    assert response.status_code == 200
    assert len(recorder.events) == 1


def test_signature_lines_joined_with_a_bare_comma_are_malformed(receiver: Receiver, recorder: Recorder) -> None:
    body, headers = delivery()
    signature = headers.pop("X-Webhook-Signature")
    response = (
        decorated_app(receiver, recorder)
        .test_client()
        .post(
            PATH,
            data=body,
            headers=headers,
            environ_overrides={"HTTP_X_WEBHOOK_SIGNATURE": f"{signature},{signature}"},  # as gunicorn joins them
        )
    )
    assert (response.status_code, response.get_json()["error"]) == (401, "malformed_signature")
    assert recorder.events == []


# -- the extension ------------------------------------------------------------------------


def configured_app(tmp_path: Path, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        {
            "KREUZBERG_WEBHOOK_SECRET": SECRET,
            "KREUZBERG_WEBHOOK_STORE": f"sqlite:///{tmp_path}/webhooks.sqlite3",
            "KREUZBERG_WEBHOOK_URL": PATH,
            **config,
        }
    )
    return app


def test_init_app_reads_app_config(tmp_path: Path) -> None:
    app = configured_app(
        tmp_path,
        KREUZBERG_WEBHOOK_MAX_BODY_SIZE=1234,
        KREUZBERG_WEBHOOK_HEADER="X-Kreuzberg-Signature",
        KREUZBERG_WEBHOOK_MAX_AGE=3600,
        KREUZBERG_WEBHOOK_MAX_FUTURE=30,
        KREUZBERG_WEBHOOK_LEASE=45,
    )
    webhooks = KreuzbergWebhooks(app)
    receiver = webhooks.receiver_for(app)
    assert receiver.verifier.max_body_size == 1234
    assert receiver.verifier.header == "X-Kreuzberg-Signature"
    assert (receiver.verifier.window.max_age, receiver.verifier.window.max_future) == (3600, 30)
    assert receiver.lease == 45
    assert isinstance(receiver.store, SQLiteStore)
    assert app.url_map.bind("localhost").match(PATH, method="POST") == (EXTENSION_KEY, {})


def test_extension_never_keeps_the_app(tmp_path: Path) -> None:
    app = configured_app(tmp_path)
    webhooks = KreuzbergWebhooks(app)
    assert not any(value is app for value in vars(webhooks).values())
    assert app.extensions[EXTENSION_KEY].receiver is webhooks.receiver_for(app)


def test_one_extension_serves_two_apps_with_their_own_secrets(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    webhooks = KreuzbergWebhooks(clock=clock)
    seen: list[str] = []

    @webhooks.on("job.completed")
    def completed(event: Event) -> None:
        seen.append(str(event.job_id))

    first, second = (
        configured_app(tmp_path / "a"),
        configured_app(tmp_path / "b", KREUZBERG_WEBHOOK_SECRET=OTHER_SECRET),
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for app in (first, second):
        webhooks.init_app(app)
    body, headers = signed_delivery(OTHER_SECRET, job_event_payload(now=NOW))
    assert first.test_client().post(PATH, data=body, headers=headers).status_code == 401
    assert second.test_client().post(PATH, data=body, headers=headers).status_code == 200
    assert seen == [json.loads(body)["job_id"]]


def test_handlers_registered_after_init_app_run_and_may_be_async(tmp_path: Path) -> None:
    app = configured_app(tmp_path)
    webhooks = KreuzbergWebhooks(app, clock=FrozenClock(NOW))
    seen: list[str] = []

    @webhooks.on("job.failed")
    async def failed(event: Event) -> None:
        seen.append("failed")

    @webhooks.on()
    def every(event: Event) -> None:
        seen.append("every")

    client = app.test_client()
    for status in ("failed", "completed"):
        body, headers = delivery(status=status)
        assert client.post(PATH, data=body, headers=headers).status_code == 200
    assert seen == ["failed", "every", "every"]


def test_keyword_options_win_over_app_config(tmp_path: Path) -> None:
    store = MemoryStore()
    app = configured_app(tmp_path, KREUZBERG_WEBHOOK_MAX_BODY_SIZE=1234)
    webhooks = KreuzbergWebhooks(app, store=store, max_body_size=99)
    receiver = webhooks.receiver_for(app)
    assert (receiver.store, receiver.verifier.max_body_size) == (store, 99)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({}, "KREUZBERG_WEBHOOK_SECRET is not set", id="no-secret"),
        pytest.param(
            {"KREUZBERG_WEBHOOK_SECRET": SECRET, "KREUZBERG_WEBHOOK_SECRETS": [SECRET]}, "not both", id="both"
        ),
    ],
)
def test_init_app_refuses_a_config_without_one_secret(config: dict[str, Any], message: str) -> None:
    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=message):
        KreuzbergWebhooks(app)


def test_secrets_list_accepts_any_of_them(tmp_path: Path) -> None:
    app = configured_app(tmp_path, KREUZBERG_WEBHOOK_SECRET=None, KREUZBERG_WEBHOOK_SECRETS=[OTHER_SECRET, SECRET])
    KreuzbergWebhooks(app, clock=FrozenClock(NOW))
    body, headers = delivery()
    assert app.test_client().post(PATH, data=body, headers=headers).status_code == 200


def test_receiver_for_an_app_without_init_app_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="init_app"):
        KreuzbergWebhooks().receiver_for(Flask(__name__))


def test_receiver_and_options_together_are_refused(receiver: Receiver) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        KreuzbergWebhooks(receiver=receiver, max_body_size=10)


# -- the optional dependency ------------------------------------------------------------------


def test_import_without_flask_names_the_extra() -> None:
    message = import_error_without("flask", "kreuzberg_webhooks.adapters.flask")
    assert 'pip install "kreuzberg-webhooks[flask]"' in message


# -- new-user traps ------------------------------------------------------------------------


def test_webhook_above_the_route_decorator_is_refused_at_start_up() -> None:
    receiver = make_receiver(Recorder())
    app = Flask(__name__)
    with pytest.raises(ConfigurationError, match=r"under the route decorator"):

        @webhook(receiver)
        @app.post(PATH)
        def unprotected(event: Event | None = None) -> dict[str, str]:
            return {"status": "processed"}

    # Had it passed, Flask would serve the view itself: an unsigned POST would run it.
    assert app.test_client().post(PATH, data=b"{}").status_code == 200


def test_webhook_above_a_blueprint_route_is_refused_at_start_up() -> None:
    from flask import Blueprint

    receiver = make_receiver(Recorder())
    hooks = Blueprint("hooks", __name__)
    with pytest.raises(ConfigurationError, match=r"under the route decorator"):

        @webhook(receiver)
        @hooks.post(PATH)
        def unprotected(event: Event | None = None) -> dict[str, str]:
            return {"status": "processed"}


def test_webhook_above_the_route_in_an_application_factory_is_refused() -> None:
    receiver = make_receiver(Recorder())

    def create_app() -> Flask:
        app = Flask(__name__)

        @webhook(receiver)
        @app.post(PATH)
        def unprotected(event: Event | None = None) -> dict[str, str]:
            return {"status": "processed"}

        return app

    with pytest.raises(ConfigurationError, match=r"under the route decorator"):
        create_app()


def test_webhook_under_the_route_decorator_protects_the_route() -> None:
    receiver = make_receiver(Recorder())
    app = Flask(__name__)

    @app.post(PATH)
    @webhook(receiver)
    def protected(event: Event) -> dict[str, str]:
        return {"status": "processed"}

    assert app.test_client().post(PATH, data=b"{}").status_code == 401


@pytest.mark.parametrize(
    ("key", "guess"),
    [
        ("KREUZBERG_WEBHOOK_STORAGE", "KREUZBERG_WEBHOOK_STORE"),
        ("KREUZBERG_WEBHOOK_SECRETZ", "KREUZBERG_WEBHOOK_SECRET"),
    ],
)
def test_an_unknown_config_key_is_warned_about(key: str, guess: str) -> None:
    app = Flask(__name__)
    app.config["KREUZBERG_WEBHOOK_SECRET"] = SECRET
    app.config[key] = "sqlite:///typo.db"
    with pytest.warns(UserWarning, match=rf"unknown key {key!r}.*did you mean {guess!r}"):
        KreuzbergWebhooks(app)


def test_known_config_keys_give_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    app = Flask(__name__)
    app.config.update(
        KREUZBERG_WEBHOOK_SECRET=SECRET,
        KREUZBERG_WEBHOOK_STORE="memory://",
        KREUZBERG_WEBHOOK_URL="/webhooks/kreuzberg",
        KREUZBERG_WEBHOOK_HEADER="X-Webhook-Signature",
        KREUZBERG_WEBHOOK_MAX_AGE=300,
    )
    KreuzbergWebhooks(app)
    assert [str(w.message) for w in recwarn if "KREUZBERG_WEBHOOK" in str(w.message)] == []


class ReadCountingBody(io.BytesIO):
    """A request body that counts the calls the application makes to read it."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        return super().readinto(buffer)


@pytest.mark.parametrize("terminated", [True, False], ids=["server-terminated", "not-terminated"])
@pytest.mark.parametrize("setup", ["decorator", "endpoint"])
def test_a_body_with_its_length_is_read_as_a_plain_flask_view_reads_it(
    receiver: Receiver, recorder: Recorder, setup: str, terminated: bool
) -> None:
    # gunicorn sets wsgi.input_terminated: a body whose Content-Length is within the limit is then
    # read straight from the server's stream, not through a wrapper that reads on to prove its end.
    def read_counts(app: Flask) -> tuple[int, int]:
        body, headers = delivery()
        stream = ReadCountingBody(body)
        overrides: dict[str, Any] = {"wsgi.input": stream, "CONTENT_LENGTH": str(len(body))}
        if terminated:
            overrides["wsgi.input_terminated"] = True
        response = app.test_client().post(PATH, headers=headers, environ_overrides=overrides)
        return response.status_code, stream.reads

    plain = Flask(__name__)
    plain.post(PATH)(lambda: {"size": len(request.get_data())})
    if setup == "decorator":
        ours = decorated_app(receiver, recorder)
    else:
        ours = Flask(__name__)
        KreuzbergWebhooks(ours, receiver=receiver, url=PATH)
    assert read_counts(ours) == read_counts(plain)
    assert len(recorder.events) == 1


def test_the_apps_own_max_content_length_does_not_refuse_a_delivery_within_the_limit(
    receiver: Receiver, recorder: Recorder
) -> None:
    app = decorated_app(receiver, recorder)
    app.config["MAX_CONTENT_LENGTH"] = 10
    body, headers = delivery()
    response = app.test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 200
    assert len(recorder.events) == 1
