"""Every body the sender-side tools build parses with the vendor's own model classes.

The oracle is ``xberg-io-sdk`` (a test dependency): a webhook body of each family must
survive ``Model.from_dict`` and come back unchanged from ``to_dict`` — the testing kit's
builders over all their parameters (Hypothesis), ``send-test``, the simulator and the
pytest plugin. The small project-webhook event has no model in the SDK; its fields are
checked against ``docs/contract.md`` (a UUID ``event_id``, as every family's).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xberg_io_sdk._generated_api.models.auto_tune_webhook_event import AutoTuneWebhookEvent
from xberg_io_sdk._generated_api.models.crawl_webhook_event import CrawlWebhookEvent
from xberg_io_sdk._generated_api.models.get_job_response_variant_0 import GetJobResponseVariant0
from xberg_io_sdk._generated_api.models.get_job_response_variant_1 import GetJobResponseVariant1
from xberg_io_sdk._generated_api.models.webhook_event import WebhookEvent as SDKWebhookEvent

import kreuzberg_webhooks as kw
from kreuzberg_webhooks import Verifier
from kreuzberg_webhooks.cli import main
from kreuzberg_webhooks.testing import (
    EVENT_TYPES,
    FrozenClock,
    auto_tune_webhook_event_payload,
    crawl_job_document_payload,
    crawl_webhook_event_payload,
    job_document_payload,
    job_event_payload,
    new_event_id,
    new_ulid,
    payload_for_event,
    signed_delivery,
    unknown_event_payload,
    webhook_event_payload,
)
from kreuzberg_webhooks.testing.pytest_plugin import DeliveryFactory
from kreuzberg_webhooks.testing.simulate import Answer, Simulation
from tests.servers import free_port

SECRET = "conformance-secret-0123456789abcdef0123456789"
JOB_STATUSES = ["completed", "partial_success", "failed", "cancelled"]
_MODELS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "job": SDKWebhookEvent.from_dict,
    "crawl": CrawlWebhookEvent.from_dict,
    "auto_tune": AutoTuneWebhookEvent.from_dict,
}


def sdk_round_trip(payload: dict[str, Any]) -> dict[str, Any]:
    """The body as the vendor's model reads it and writes it back."""
    if "event" in payload:
        family = str(payload["event"]).split(".", 1)[0]
        model = _MODELS[family](payload)
    elif payload.get("job_type") == "crawl":
        model = GetJobResponseVariant1.from_dict(payload)
    else:
        model = GetJobResponseVariant0.from_dict(payload)
    written: dict[str, Any] = model.to_dict()
    return written


def assert_vendor_shaped(payload: dict[str, Any]) -> None:
    """*payload* is what the vendor's SDK builds: it parses, and its model writes it back unchanged."""
    if "event" not in payload and "event_id" in payload:  # the small project-webhook event: no SDK model
        assert uuid.UUID(payload["event_id"]).version in (4, 7)
        assert str(uuid.UUID(payload["event_id"])) == payload["event_id"]
        assert set(payload) >= {"job_id", "project_id", "status", "timestamp", "attempt_count"}
        return
    assert sdk_round_trip(payload) == payload
    if "event_id" in payload:
        assert str(uuid.UUID(payload["event_id"])) == payload["event_id"]  # canonical: lower case, hyphenated


# -- the testing kit's builders, over their parameters --------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    event=st.sampled_from(["job.completed", "job.failed", "job.cancelled"]),
    inline_results=st.booleans(),
    now=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
    ulid_job=st.booleans(),
)
def test_webhook_event_bodies_parse_with_the_sdk_model(
    event: str, inline_results: bool, now: int, ulid_job: bool
) -> None:
    overrides = {"job_id": "01JDQ8Z6W1N3K4M5P6Q7R8S9T0"} if ulid_job else {}
    payload = webhook_event_payload(event=event, inline_results=inline_results, now=now, **overrides)
    assert_vendor_shaped(payload)
    model = SDKWebhookEvent.from_dict(payload)
    assert model.event == event
    if event == "job.completed" and inline_results:
        assert isinstance(payload["results"], dict)  # the SDK's shape: the result of GET /v1/jobs/{id}
        assert model.results.additional_properties["content"]  # type: ignore[union-attr]
    else:
        assert "results" not in payload


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(
        [("crawl.completed", "completed"), ("crawl.completed", "partial_success"), ("crawl.failed", "failed")]
    ),
    now=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
    discovered=st.integers(min_value=0, max_value=10_000),
)
def test_crawl_webhook_event_bodies_parse_with_the_sdk_model(case: tuple[str, str], now: int, discovered: int) -> None:
    event, status = case
    payload = crawl_webhook_event_payload(event=event, status=status, now=now, documents_discovered=discovered)
    assert_vendor_shaped(payload)
    model = CrawlWebhookEvent.from_dict(payload)
    assert (model.event, model.status) == (event, status)
    progress = model.progress
    assert progress.documents_discovered == discovered
    assert progress.documents_extracted + progress.documents_failed <= discovered
    assert ("error" in payload) == (event == "crawl.failed")


@settings(max_examples=60, deadline=None)
@given(
    event=st.sampled_from(["auto_tune.completed", "auto_tune.failed"]),
    now=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
    trials_total=st.integers(min_value=1, max_value=500),
)
def test_auto_tune_webhook_event_bodies_parse_with_the_sdk_model(event: str, now: int, trials_total: int) -> None:
    payload = auto_tune_webhook_event_payload(event=event, now=now, trials_total=trials_total)
    assert_vendor_shaped(payload)
    model = AutoTuneWebhookEvent.from_dict(payload)
    assert model.status == event.split(".")[1]
    assert isinstance(model.trials_completed, int)
    assert 0 <= model.trials_completed <= model.trials_total == trials_total
    if event == "auto_tune.completed":
        assert isinstance(model.best_score, float)


@settings(max_examples=40, deadline=None)
@given(status=st.sampled_from(JOB_STATUSES), now=st.integers(min_value=1_600_000_000, max_value=2_000_000_000))
def test_job_document_bodies_parse_with_the_sdk_model(status: str, now: int) -> None:
    payload = job_document_payload(status=status, now=now)
    assert_vendor_shaped(payload)
    model = GetJobResponseVariant0.from_dict(payload)
    assert model.job_type == "extraction"
    assert ("result" in payload) == (status in ("completed", "partial_success"))  # absent, not null, until done
    assert ("error" in payload) == (status == "failed")


@settings(max_examples=40, deadline=None)
@given(
    status=st.sampled_from(["completed", "partial_success", "failed", "cancelled"]),
    job_count=st.integers(min_value=0, max_value=5),
)
def test_crawl_job_document_bodies_parse_with_the_sdk_model(status: str, job_count: int) -> None:
    payload = crawl_job_document_payload(status=status, job_count=job_count)
    assert_vendor_shaped(payload)
    model = GetJobResponseVariant1.from_dict(payload)
    assert model.job_type == "crawl"
    assert len(model.jobs) == job_count  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(now=st.integers(min_value=1_600_000_000, max_value=2_000_000_000), status=st.sampled_from(JOB_STATUSES))
def test_event_ids_are_canonical_uuids_and_the_small_event_carries_one(now: int, status: str) -> None:
    event_id = new_event_id(now)
    assert str(uuid.UUID(event_id)) == event_id
    assert_vendor_shaped(job_event_payload(now=now, status=status))


@pytest.mark.parametrize("event", EVENT_TYPES)
def test_every_vendor_event_type_has_a_builder_whose_body_the_sdk_parses(event: str) -> None:
    payload = payload_for_event(event)
    assert payload["event"] == event
    assert_vendor_shaped(payload)


def test_an_unknown_event_carries_an_event_id_and_no_known_identity() -> None:
    payload = unknown_event_payload(event="document.indexed")
    assert payload["event"] == "document.indexed"
    assert str(uuid.UUID(payload["event_id"])) == payload["event_id"]
    assert not {"job_id", "crawl_job_id", "auto_tune_job_id", "id"} & set(payload)
    assert payload_for_event("document.indexed")["event"] == "document.indexed"


# -- the command line, the simulator and the pytest plugin --------------------------------------


def sent_by_send_test(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """The body ``send-test --show-body`` printed (sent to a closed port: nothing listens)."""
    code = main(["send-test", f"http://127.0.0.1:{free_port()}/hooks", "--show-body", "--timeout", "2", *argv])
    out = capsys.readouterr().out
    assert code == 1  # no answer from the closed port
    body: dict[str, Any] = json.loads(out.splitlines()[1])
    return body


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--status", "failed"],
        ["--shape", "document"],
        ["--shape", "document", "--status", "failed"],
        ["--shape", "crawl"],
        ["--shape", "webhook"],
        ["--shape", "webhook", "--status", "failed"],
        *[["--event", event] for event in EVENT_TYPES],
        ["--event", "crawl.completed", "--status", "partial_success"],
        ["--event", "document.indexed"],
    ],
    ids=lambda argv: " ".join(argv) or "default",
)
def test_send_test_bodies_parse_with_the_sdk_model(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KREUZBERG_WEBHOOK_SECRET", SECRET)
    body = sent_by_send_test(capsys, *argv)
    if "--event" in argv and argv[argv.index("--event") + 1] not in EVENT_TYPES:
        assert body["event"] == argv[argv.index("--event") + 1]
        assert str(uuid.UUID(body["event_id"])) == body["event_id"]
        return
    assert_vendor_shaped(body)


class Recording:
    """A transport that acknowledges every request and keeps the bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        self.bodies.append(json.loads(body))
        return Answer(200)


@pytest.mark.parametrize(
    "options",
    [
        {"shape": "event"},
        {"shape": "document"},
        {"shape": "crawl"},
        {"shape": "webhook"},
        {"event_types": EVENT_TYPES},
    ],
    ids=lambda options: " ".join(f"{k}={v}" for k, v in options.items()) if "shape" in options else "every event",
)
def test_simulated_bodies_parse_with_the_sdk_model(options: dict[str, Any]) -> None:
    transport = Recording()
    Simulation("http://127.0.0.1:9/hooks", SECRET, events=40, seed=7, transport=transport, **options).run()
    assert len(transport.bodies) == 40
    for body in transport.bodies:
        assert_vendor_shaped(body)
    if "event_types" in options:
        assert {body["event"] for body in transport.bodies} == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("status", "options"),
    [
        (None, {}),
        ("failed", {"shape": "document"}),
        (None, {"shape": "crawl"}),
        ("failed", {"shape": "webhook"}),
        *[(None, {"event": event}) for event in EVENT_TYPES],
        ("partial_success", {"event": "crawl.completed"}),
    ],
)
def test_plugin_deliveries_parse_with_the_sdk_model(status: str | None, options: dict[str, Any]) -> None:
    clock = FrozenClock()
    delivery = DeliveryFactory(SECRET, clock)(status, **options)
    assert delivery.payload is not None
    assert_vendor_shaped(delivery.payload)
    assert Verifier(SECRET, clock=clock).verify(*delivery) is not None


def test_signed_family_deliveries_are_signed_t_v1_as_the_sender_signs_them() -> None:
    for event in EVENT_TYPES:
        _, headers = signed_delivery(SECRET, payload_for_event(event))
        assert headers["X-Webhook-Signature"].startswith("t=")
        assert "X-Idempotency-Key" not in headers


_FAMILY_CLASSES = {"job": kw.WebhookEvent, "crawl": kw.CrawlWebhookEvent, "auto_tune": kw.AutoTuneWebhookEvent}


@settings(max_examples=80, deadline=None)
@given(
    event=st.sampled_from([*EVENT_TYPES, "document.indexed", "rag.reindexed"]),
    partial=st.booleans(),
    ulid_job=st.booleans(),
)
def test_the_packages_verifier_reads_every_kit_body_as_its_family_with_its_identity(
    event: str, partial: bool, ulid_job: bool
) -> None:
    clock = FrozenClock()
    status = "partial_success" if partial and event == "crawl.completed" else None
    overrides = {"job_id": new_ulid(clock.now)} if ulid_job and event.startswith("job.") else {}
    payload = payload_for_event(event, now=clock.now, status=status, **overrides)
    typed = Verifier(SECRET, clock=clock).verify(*signed_delivery(SECRET, payload, signed_at=clock.now))
    family = event.split(".", 1)[0]
    assert isinstance(typed, _FAMILY_CLASSES.get(family, kw.UnknownEvent))
    assert (typed.type, typed.event_id) == (event, payload["event_id"])
    identity = payload.get("job_id") or payload.get("crawl_job_id") or payload.get("auto_tune_job_id")
    assert typed.job_id == identity
