"""The pytest plugin: its fixtures build deliveries the core accepts (or rejects on purpose),
and it behaves as a plugin (loaded by entry point, fixtures visible, failures fail, no framework needed)."""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

import pytest

from kreuzberg_webhooks import (
    AutoTuneWebhookEvent,
    CrawlJobDocument,
    CrawlWebhookEvent,
    JobDocument,
    JobEvent,
    MemoryStore,
    Receiver,
    UnknownEvent,
    Verifier,
    WebhookEvent,
    sign,
)
from kreuzberg_webhooks.testing import OMIT, FrozenClock
from kreuzberg_webhooks.testing.pytest_plugin import (
    DEFAULT_TEST_SECRET,
    DeliveryFactory,
    DeliveryPoster,
    ReceiverFactory,
    SignedDelivery,
    post_with_flask,
    post_with_starlette,
    response_json,
)

pytest_plugins = ["pytester"]

OTHER_SECRET = "another-rotated-webhook-secret-0123456789"


# -- the fixtures, used directly (the plugin is loaded in this very run) -------------------------


def test_plugin_fixtures_are_wired_to_each_other(
    kreuzberg_secret: str,
    kreuzberg_clock: FrozenClock,
    kreuzberg_delivery: DeliveryFactory,
    kreuzberg_store: MemoryStore,
    kreuzberg_receiver: ReceiverFactory,
    kreuzberg_post: DeliveryPoster,
) -> None:
    assert kreuzberg_secret == DEFAULT_TEST_SECRET
    assert len(kreuzberg_secret.encode()) >= 32
    assert kreuzberg_delivery.clock is kreuzberg_clock
    assert kreuzberg_receiver().store is kreuzberg_store
    assert len(kreuzberg_store) == 0
    assert isinstance(kreuzberg_post, DeliveryPoster)


def test_frozen_clock_moves_only_when_advanced(kreuzberg_clock: FrozenClock) -> None:
    start = kreuzberg_clock()
    assert kreuzberg_clock.now == start == float(int(start))
    assert kreuzberg_clock.advance(90) == start + 90
    assert kreuzberg_clock() == start + 90


@pytest.mark.parametrize("status", ["completed", "partial_success", "failed", "cancelled", "archived"])
def test_event_delivery_of_any_status_verifies(status: str, kreuzberg_delivery: DeliveryFactory) -> None:
    verifier = Verifier(DEFAULT_TEST_SECRET, clock=kreuzberg_delivery.clock)
    event = verifier.verify(*kreuzberg_delivery(status))
    assert isinstance(event, JobEvent)
    assert event.status == status
    assert event.attempt_count == 1


@pytest.mark.parametrize(
    ("shape", "kind"),
    [("event", JobEvent), ("document", JobDocument), ("crawl", CrawlJobDocument)],
    ids=["small-event", "job-document", "crawl-document"],
)
def test_delivery_of_each_shape_parses_to_its_type(
    shape: Any, kind: type, kreuzberg_delivery: DeliveryFactory, kreuzberg_clock: FrozenClock
) -> None:
    event = Verifier(DEFAULT_TEST_SECRET, clock=kreuzberg_clock).verify(*kreuzberg_delivery("failed", shape=shape))
    assert isinstance(event, kind)
    assert event.type == ("crawl.failed" if shape == "crawl" else "job.failed")


def test_delivery_fields_can_be_overridden_or_omitted(kreuzberg_delivery: DeliveryFactory) -> None:
    delivery = kreuzberg_delivery("failed", error_message="OCR timeout", attempt_count=3, error_code=OMIT)
    payload = json.loads(delivery.body)
    assert payload["error_message"] == "OCR timeout"
    assert payload["attempt_count"] == 3
    assert delivery.payload == payload
    assert delivery.event_id == payload["event_id"]
    assert delivery.headers["X-Idempotency-Key"] == payload["event_id"]
    missing = kreuzberg_delivery(job_id=OMIT)
    assert "job_id" not in json.loads(missing.body)


def test_document_delivery_echoes_metadata(kreuzberg_delivery: DeliveryFactory, kreuzberg_clock: FrozenClock) -> None:
    delivery = kreuzberg_delivery(shape="document", metadata={"order": 7})
    event = Verifier(DEFAULT_TEST_SECRET, clock=kreuzberg_clock).verify(*delivery)
    assert isinstance(event, JobDocument)
    assert event.metadata == {"order": 7}
    assert delivery.event_id is None


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"mis_signed": True}, "signature_mismatch"),
        ({"unsigned": True}, "missing_signature"),
        ({"signature": "sha256=not-hex"}, "malformed_signature"),
        ({"secret": OTHER_SECRET}, "signature_mismatch"),
        ({"timestamp_offset": -(24 * 3600 + 1)}, "stale_timestamp"),
        ({"timestamp_offset": 301}, "future_timestamp"),
        ({"job_id": 42}, "invalid_field"),
        ({"event_id": OMIT, "id": OMIT}, "missing_field"),
        ({"payload": b"[1, 2]"}, "not_an_object"),
    ],
    ids=lambda value: value if isinstance(value, str) else next(iter(value)),
)
def test_deliberately_bad_deliveries_get_their_reason(
    options: dict[str, Any], reason: str, kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory
) -> None:
    offset = options.pop("timestamp_offset", None)
    if offset is not None:
        options["timestamp"] = int(kreuzberg_delivery.clock.now + offset)
    handled: list[object] = []
    outcome = kreuzberg_receiver(handled.append).handle(*kreuzberg_delivery(**options))
    assert outcome.reason == reason
    assert not outcome.ok
    assert handled == []


def test_delivery_signed_with_another_secret_verifies_against_that_secret(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory
) -> None:
    receiver = kreuzberg_receiver(secrets=[DEFAULT_TEST_SECRET, OTHER_SECRET])
    assert receiver.handle(*kreuzberg_delivery(secret=OTHER_SECRET)).status_code == 200


def test_retry_of_a_processed_delivery_is_acknowledged_as_duplicate(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory
) -> None:
    handled: list[Any] = []
    receiver = kreuzberg_receiver(handled.append)
    first = kreuzberg_delivery()
    retry = kreuzberg_delivery.retry(first)
    assert json.loads(retry.body)["attempt_count"] == 2
    assert retry.event_id == first.event_id
    assert retry.signature != first.signature
    assert receiver.handle(*first).reason == "processed"
    assert receiver.handle(*retry).reason == "duplicate"
    assert [event.event_id for event in handled] == [first.event_id]


def test_frozen_clock_drives_the_store_lease(
    kreuzberg_receiver: ReceiverFactory,
    kreuzberg_delivery: DeliveryFactory,
    kreuzberg_store: MemoryStore,
    kreuzberg_clock: FrozenClock,
) -> None:
    receiver = kreuzberg_receiver(lease=60)
    delivery = kreuzberg_delivery()
    claimed = receiver.begin(*delivery)
    assert not isinstance(claimed, type(receiver.handle(*delivery)))  # a Delivery, the claim is ours
    assert receiver.handle(*delivery).status_code == 429
    kreuzberg_clock.advance(61)  # the worker died; its lease ran out
    assert receiver.handle(*kreuzberg_delivery.retry(delivery)).reason == "processed"
    assert len(kreuzberg_store) == 1


def test_receiver_factory_passes_options_and_handlers(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory
) -> None:
    seen: list[str] = []
    receiver = kreuzberg_receiver(lambda event: seen.append(event.type), store=MemoryStore(), max_body_size=10_000)
    assert isinstance(receiver, Receiver)
    assert receiver.verifier.max_body_size == 10_000
    assert receiver.handle(*kreuzberg_delivery("cancelled")).ok
    assert seen == ["job.cancelled"]


def test_payload_and_overrides_together_are_refused(kreuzberg_delivery: DeliveryFactory) -> None:
    with pytest.raises(TypeError, match="not both"):
        kreuzberg_delivery(payload={"event_id": "x"}, status_code=1)
    with pytest.raises(TypeError, match="choose one"):
        kreuzberg_delivery(mis_signed=True, unsigned=True)
    with pytest.raises(ValueError, match="unknown payload shape"):
        kreuzberg_delivery(shape="xml")  # type: ignore[arg-type]


# -- posting through the frameworks' test clients ------------------------------------------


def _flask_app(receiver: Receiver) -> Any:
    import flask

    app = flask.Flask("plugin-test")

    @app.post("/hooks")
    def hooks() -> Any:
        outcome = receiver.handle(flask.request.get_data(), dict(flask.request.headers))
        return flask.Response(outcome.body, outcome.status_code, list(outcome.headers))

    return app


def _starlette_app(receiver: Receiver) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def hooks(request: Request) -> Response:
        outcome = await receiver.handle_async(await request.body(), request.headers)
        return Response(outcome.body, outcome.status_code, dict(outcome.headers))

    return Starlette(routes=[Route("/hooks", hooks, methods=["POST"])])


def test_post_through_flask_test_client_reaches_the_handler(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_post: DeliveryPoster, kreuzberg_delivery: DeliveryFactory
) -> None:
    handled: list[Any] = []
    app = _flask_app(kreuzberg_receiver(handled.append))
    response = kreuzberg_post.flask(app.test_client(), "/hooks")
    assert response.status_code == 200
    assert response_json(response) == {"status": "processed"}
    assert post_with_flask(app, "/hooks", kreuzberg_delivery(mis_signed=True)).status_code == 401
    assert len(handled) == 1


def test_post_through_starlette_test_client_reaches_the_handler(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_post: DeliveryPoster, kreuzberg_delivery: DeliveryFactory
) -> None:
    from starlette.testclient import TestClient

    handled: list[Any] = []
    app = _starlette_app(kreuzberg_receiver(handled.append))
    delivery = kreuzberg_delivery("failed", shape="document")
    response = kreuzberg_post.starlette(app, "/hooks", delivery)
    assert (response.status_code, response_json(response)) == (200, {"status": "processed"})
    with TestClient(app) as client:
        again = post_with_starlette(client, "/hooks", (delivery.body, delivery.headers))
    assert again.headers["x-kreuzberg-duplicate"] == "true"
    assert len(handled) == 1


def test_post_through_django_test_client_reaches_the_handler(pytester: pytest.Pytester) -> None:
    # Django's settings are process-wide: configure them in a child pytest run only.
    pytester.makepyfile(
        test_django_post=textwrap.dedent(
            """
            import django
            from django.conf import settings
            from django.http import HttpResponse
            from django.urls import path
            from django.views.decorators.csrf import csrf_exempt

            HANDLED = []
            RECEIVER = None

            @csrf_exempt
            def hooks(request):
                outcome = RECEIVER.handle(request.body, request.headers)
                response = HttpResponse(outcome.body, status=outcome.status_code)
                for name, value in outcome.headers:
                    response[name] = value
                return response

            urlpatterns = [path("hooks/", hooks)]
            settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], SECRET_KEY="x" * 50)
            django.setup()

            def test_django(kreuzberg_receiver, kreuzberg_post, kreuzberg_delivery):
                from django.test import Client
                global RECEIVER
                RECEIVER = kreuzberg_receiver(HANDLED.append)
                client = Client()
                assert kreuzberg_post.django(client, "/hooks/").status_code == 200
                bad = kreuzberg_post.django(client, "/hooks/", kreuzberg_delivery(unsigned=True))
                assert bad.status_code == 401
                assert bad.json()["error"] == "missing_signature"
                assert len(HANDLED) == 1
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- the plugin as a plugin ------------------------------------------------------------------


def test_fixtures_are_available_to_a_test_suite_without_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from kreuzberg_webhooks import Verifier

        def test_delivery(kreuzberg_delivery, kreuzberg_secret, kreuzberg_clock):
            event = Verifier(kreuzberg_secret, clock=kreuzberg_clock).verify(*kreuzberg_delivery("failed"))
            assert event.type == "job.failed"

        def test_receiver(kreuzberg_receiver, kreuzberg_delivery, kreuzberg_store):
            assert kreuzberg_receiver().handle(*kreuzberg_delivery()).status_code == 200
            assert len(kreuzberg_store) == 1
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_fixtures_are_listed_with_their_docstrings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    for name in ("kreuzberg_secret", "kreuzberg_clock", "kreuzberg_delivery", "kreuzberg_store", "kreuzberg_receiver"):
        result.stdout.fnmatch_lines([f"{name}*"])
    result.stdout.fnmatch_lines(["*override it to match your app*"])


def test_a_test_asserting_the_wrong_thing_really_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_mis_signed_is_accepted(kreuzberg_receiver, kreuzberg_delivery):
            assert kreuzberg_receiver().handle(*kreuzberg_delivery(mis_signed=True)).status_code == 200

        def test_mis_signed_is_rejected(kreuzberg_receiver, kreuzberg_delivery):
            assert kreuzberg_receiver().handle(*kreuzberg_delivery(mis_signed=True)).status_code == 401
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*assert 401 == 200*", "FAILED *::test_mis_signed_is_accepted*"])


def test_overriding_the_secret_fixture_signs_with_the_apps_secret(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def kreuzberg_secret():
            return "the-apps-own-test-secret-0123456789abcdef"
        """
    )
    pytester.makepyfile(
        """
        from kreuzberg_webhooks import Verifier

        def test_signed_with_override(kreuzberg_delivery):
            Verifier("the-apps-own-test-secret-0123456789abcdef").verify(*kreuzberg_delivery())
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_plugin_loads_and_works_with_every_framework_blocked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Entry-point autoload is off in the child, so the conftest blocks the frameworks
    # *before* the plugin module is imported: its import really runs without them.
    pytester.makeconftest(
        """
        import sys

        for name in ("flask", "django", "starlette", "fastapi", "httpx", "werkzeug"):
            sys.modules[name] = None
        assert "kreuzberg_webhooks.testing.pytest_plugin" not in sys.modules
        pytest_plugins = ["kreuzberg_webhooks.testing.pytest_plugin"]
        """
    )
    pytester.makepyfile(
        """
        import sys
        import pytest

        def test_fixtures_work(kreuzberg_receiver, kreuzberg_delivery, kreuzberg_post):
            assert kreuzberg_receiver().handle(*kreuzberg_delivery(shape="document")).status_code == 200
            assert all(sys.modules.get(name) is None for name in ("flask", "django", "starlette"))

        def test_starlette_helper_names_the_extra(kreuzberg_post):
            with pytest.raises(ImportError, match=r"kreuzberg-webhooks\\[starlette\\]"):
                kreuzberg_post.starlette(object(), "/hooks")
        """
    )
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_plugin_is_registered_under_the_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("kreuzberg_webhooks") == "kreuzberg_webhooks.testing.pytest_plugin"
    assert "kreuzberg_webhooks.testing.pytest_plugin" in sys.modules


def test_signed_delivery_unpacks_like_a_pair(kreuzberg_delivery: DeliveryFactory) -> None:
    delivery = kreuzberg_delivery()
    body, headers = delivery
    assert isinstance(delivery, SignedDelivery)
    assert (body, headers) == (delivery.body, delivery.headers)
    assert delivery.signature is not None
    assert delivery.signature.startswith("sha256=")


def test_readme_example_retry_after_a_crashed_worker_is_processed(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory, kreuzberg_clock: FrozenClock
) -> None:
    handled: list[Any] = []
    receiver = kreuzberg_receiver(handled.append, lease=60)
    first = kreuzberg_delivery()
    receiver.begin(*first)  # claimed; the worker "dies" here
    assert receiver.handle(*kreuzberg_delivery.retry(first)).status_code == 429
    kreuzberg_clock.advance(61)
    assert receiver.handle(*kreuzberg_delivery.retry(first)).reason == "processed"
    assert receiver.handle(*kreuzberg_delivery.retry(first)).reason == "duplicate"
    assert len(handled) == 1


def test_raw_bytes_payload_is_signed_as_it_is(kreuzberg_delivery: DeliveryFactory) -> None:
    delivery = kreuzberg_delivery(payload=b"raw bytes")
    assert delivery.body == b"raw bytes"
    assert delivery.payload is None
    assert delivery.signature == sign(b"raw bytes", DEFAULT_TEST_SECRET)
    with pytest.raises(ValueError, match="cannot be retried"):
        kreuzberg_delivery.retry(delivery)


def test_receiver_factory_accepts_a_ready_verifier(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory, kreuzberg_clock: FrozenClock
) -> None:
    verifier = Verifier(OTHER_SECRET, clock=kreuzberg_clock)
    receiver = kreuzberg_receiver(verifier=verifier)
    assert receiver.verifier is verifier
    assert receiver.handle(*kreuzberg_delivery(secret=OTHER_SECRET)).ok
    assert receiver.handle(*kreuzberg_delivery()).reason == "signature_mismatch"


# -- the inline webhook's format: WebhookEvent bodies and t=,v1= signatures -----------------------


@pytest.mark.parametrize(
    ("status", "event_type"),
    [("completed", "job.completed"), ("partial_success", "job.completed"), ("failed", "job.failed")],
)
def test_webhook_shape_is_a_webhook_event_signed_t_v1(
    status: str, event_type: str, kreuzberg_delivery: DeliveryFactory, kreuzberg_clock: FrozenClock
) -> None:
    delivery = kreuzberg_delivery(status, shape="webhook")
    assert delivery.scheme == "t-v1"
    assert delivery.signature is not None
    assert delivery.signature.startswith(f"t={int(kreuzberg_clock.now)},v1=")
    event = Verifier(DEFAULT_TEST_SECRET, clock=kreuzberg_clock).verify(*delivery)
    assert isinstance(event, WebhookEvent)
    assert event.type == event_type
    assert event.event_id == delivery.event_id
    assert (event.error is not None) == (status == "failed")


@pytest.mark.parametrize("shape", ["event", "document", "crawl", "webhook"])
@pytest.mark.parametrize("scheme", ["sha256", "t-v1"])
def test_every_shape_can_be_signed_in_either_format(
    shape: Any, scheme: Any, kreuzberg_delivery: DeliveryFactory, kreuzberg_receiver: ReceiverFactory
) -> None:
    delivery = kreuzberg_delivery(shape=shape, scheme=scheme)
    assert delivery.signature is not None
    assert delivery.signature.startswith("sha256=" if scheme == "sha256" else "t=")
    assert kreuzberg_receiver().handle(*delivery).status_code == 200


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"mis_signed": True}, "signature_mismatch"),
        ({"signed_at_offset": -301}, "stale_timestamp"),
        ({"signed_at_offset": 301}, "future_timestamp"),
        ({"signature": "t=1,v1="}, "malformed_signature"),
        ({"timestamp": "2000-01-01T00:00:00Z"}, "stale_timestamp"),
    ],
    ids=["mis-signed", "stale-t", "future-t", "malformed", "stale-body-timestamp"],
)
def test_bad_webhook_deliveries_get_their_reason(
    options: dict[str, Any], reason: str, kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory
) -> None:
    offset = options.pop("signed_at_offset", None)
    if offset is not None:
        options["signed_at"] = kreuzberg_delivery.clock.now + offset
    handled: list[object] = []
    outcome = kreuzberg_receiver(handled.append).handle(*kreuzberg_delivery(shape="webhook", **options))
    assert outcome.reason == reason
    assert handled == []


def test_retry_of_a_webhook_event_is_resigned_with_a_fresh_t_and_is_a_duplicate(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory, kreuzberg_clock: FrozenClock
) -> None:
    handled: list[Any] = []
    receiver = kreuzberg_receiver(handled.append)
    first = kreuzberg_delivery(shape="webhook")
    assert receiver.handle(*first).status_code == 200
    kreuzberg_clock.advance(600)  # past the first t's window: only a re-signed attempt is accepted
    assert receiver.handle(*first).reason == "stale_timestamp"
    retry = kreuzberg_delivery.retry(first)
    assert retry.body == first.body  # no attempt_count in this format: the same bytes, a new t
    assert retry.signature != first.signature
    outcome = receiver.handle(*retry)
    assert (outcome.status_code, outcome.duplicate) == (200, True)
    assert len(handled) == 1


def test_a_receiver_restricted_to_one_format_refuses_the_other(
    kreuzberg_receiver: ReceiverFactory, kreuzberg_delivery: DeliveryFactory
) -> None:
    receiver = kreuzberg_receiver(schemes=("sha256",))
    assert receiver.handle(*kreuzberg_delivery(shape="webhook")).reason == "malformed_signature"
    assert receiver.handle(*kreuzberg_delivery(shape="webhook", scheme="sha256")).status_code == 200


def test_an_unknown_scheme_is_refused(kreuzberg_delivery: DeliveryFactory) -> None:
    with pytest.raises(ValueError, match="unknown signature scheme"):
        kreuzberg_delivery(scheme="sha512")  # type: ignore[arg-type]


# -- every webhook family: event="crawl.completed", "auto_tune.failed", an unknown one ----------------


@pytest.mark.parametrize(
    ("status", "event", "kind"),
    [
        (None, "crawl.completed", CrawlWebhookEvent),
        ("partial_success", "crawl.completed", CrawlWebhookEvent),
        (None, "crawl.failed", CrawlWebhookEvent),
        (None, "auto_tune.completed", AutoTuneWebhookEvent),
        (None, "auto_tune.failed", AutoTuneWebhookEvent),
        (None, "job.cancelled", WebhookEvent),
        (None, "document.indexed", UnknownEvent),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_delivery_of_each_family_reaches_its_handler_once_and_its_retry_is_a_duplicate(
    status: str | None,
    event: str,
    kind: type,
    kreuzberg_delivery: DeliveryFactory,
    kreuzberg_receiver: ReceiverFactory,
    kreuzberg_clock: FrozenClock,
) -> None:
    seen: list[Any] = []
    receiver = kreuzberg_receiver(seen.append)  # the catch-all: every family, an unknown event too
    first = kreuzberg_delivery(status, event=event)
    assert first.scheme == "t-v1"
    assert first.payload is not None
    assert first.payload["event"] == event
    assert receiver.handle(*first).reason == "processed"
    kreuzberg_clock.advance(30)
    again = kreuzberg_delivery.retry(first)
    assert again.signature != first.signature  # re-signed with a fresh t
    assert receiver.handle(*again).reason == "duplicate"
    assert [type(handled) for handled in seen] == [kind]
    assert seen[0].type == event
    if status is not None:
        assert seen[0].status == status


def test_an_event_with_a_document_shape_or_a_status_it_cannot_carry_is_refused(
    kreuzberg_delivery: DeliveryFactory,
) -> None:
    with pytest.raises(ValueError, match="does not go with shape='document'"):
        kreuzberg_delivery(event="crawl.completed", shape="document")
    with pytest.raises(ValueError, match="does not carry the status 'completed'"):
        kreuzberg_delivery("completed", event="auto_tune.failed")
