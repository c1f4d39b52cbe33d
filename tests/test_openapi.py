"""The webhook route in OpenAPI: read from a real FastAPI app's /openapi.json, checked against what it answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from kreuzberg_webhooks import Event, JobStatus, Receiver, WebhookError
from kreuzberg_webhooks.adapters.fastapi import KreuzbergWebhook
from kreuzberg_webhooks.openapi import ANSWER_SCHEMA, PAYLOAD_SCHEMAS, webhook_operation
from kreuzberg_webhooks.testing import (
    crawl_job_document_payload,
    job_document_payload,
    job_event_payload,
    signed_delivery,
    webhook_event_payload,
)

from . import test_vendor_sdk_bodies as sdk

SECRET = "openapi-test-secret-0123456789abcdef0123"
HEADER = "X-Kreuzberg-Signature"
PATH = "/webhooks/kreuzberg"
POST_ANSWERS = {"200", "400", "401", "413", "429", "500", "503"}


class DownStore:
    """A replay store whose server is unreachable."""

    def claim(self, key: str, lease: float) -> Any:
        raise ConnectionError("the store is down")

    def complete(self, key: str, token: str, retention: float) -> None:
        raise ConnectionError("the store is down")

    def release(self, key: str, token: str) -> None:
        raise ConnectionError("the store is down")


def build_app(receiver: Receiver) -> FastAPI:
    webhook = KreuzbergWebhook(receiver)
    app = FastAPI()
    webhook.init_app(app)

    @app.post(PATH, **webhook.route_options())
    async def kreuzberg(event: Event = Depends(webhook)) -> dict[str, str]:
        if getattr(event, "status", None) == JobStatus.FAILED:
            raise RuntimeError("the route's own failure")
        return {"status": "processed"}

    return app


@dataclass
class App:
    client: TestClient
    openapi: dict[str, Any]

    @property
    def operation(self) -> dict[str, Any]:
        post: dict[str, Any] = self.openapi["paths"][PATH]["post"]
        return post

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.client.post(PATH, content=body, headers=headers)
        return response.status_code, response.json()


@pytest.fixture
def app() -> Any:
    receiver = Receiver(SECRET, header=HEADER, max_body_size=4096)
    with TestClient(build_app(receiver), raise_server_exceptions=False) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        yield App(client, response.json())


def error_reasons(response: dict[str, Any]) -> list[str]:
    reasons: list[str] = response["content"]["application/json"]["schema"]["properties"]["error"]["enum"]
    return reasons


def every_error_class() -> list[type[WebhookError]]:
    found, pending = [], [WebhookError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.append(cls)
    return found


def test_the_request_body_lists_every_accepted_shape(app: App) -> None:
    body = app.operation["requestBody"]
    assert body["required"] is True
    shapes = body["content"]["application/json"]["schema"]["anyOf"]
    assert [shape["title"] for shape in shapes] == list(PAYLOAD_SCHEMAS)
    assert {"JobEvent", "JobDocument", "CrawlJobDocument", "WebhookEvent"} <= {shape["title"] for shape in shapes}


def test_the_signature_header_is_a_required_parameter_named_as_the_receiver_reads_it(app: App) -> None:
    parameters = {parameter["name"]: parameter for parameter in app.operation["parameters"]}
    assert parameters[HEADER]["in"] == "header"
    assert parameters[HEADER]["required"] is True
    assert "X-Webhook-Signature" not in parameters  # the configured name, not the default


def test_every_answer_to_a_post_is_documented_with_the_error_body(app: App) -> None:
    responses = app.operation["responses"]
    assert set(responses) == POST_ANSWERS  # 405 answers other methods, not this POST operation
    for status in POST_ANSWERS - {"200"}:
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema["required"] == ["error", "detail"], status
        assert error_reasons(responses[status]), status
    assert "Retry-After" in responses["429"]["headers"]
    # The 2xx body is the route's own: FastAPI's schema for its return type stays.
    assert responses["200"]["content"]["application/json"]["schema"]["type"] == "object"


def test_each_answer_lists_exactly_the_reasons_the_error_tree_gives_that_status(app: App) -> None:
    responses = app.operation["responses"]
    leaves = [cls for cls in every_error_class() if not cls.__subclasses__() and cls is not WebhookError]
    for cls in leaves:
        if cls.reason != "method_not_allowed":
            assert cls.reason in error_reasons(responses[str(cls.status_code)]), cls.__name__
    documented = {reason for status in POST_ANSWERS - {"200"} for reason in error_reasons(responses[status])}
    assert documented == {cls.reason for cls in leaves} - {"method_not_allowed"}


def test_what_the_app_answers_is_what_its_openapi_says(app: App) -> None:
    valid = signed_delivery(SECRET, header=HEADER)
    deliveries = {
        "processed": valid,
        "duplicate": valid,
        "inline webhook": signed_delivery(SECRET, webhook_event_payload(), header=HEADER, scheme="t-v1"),
        "forged": signed_delivery("another-secret-0123456789abcdef0123456789", header=HEADER),
        "unsigned": signed_delivery(None, header=HEADER),
        "malformed": signed_delivery(SECRET, header=HEADER, signature="sha256=nothex"),
        "stale": signed_delivery(SECRET, header=HEADER, timestamp=1),
        "not json": signed_delivery(SECRET, b"{not json", header=HEADER),
        "too large": signed_delivery(SECRET, b"x" * 5000, header=HEADER),
        "route raised": signed_delivery(SECRET, header=HEADER, status="failed"),
    }
    seen = set()
    responses = app.operation["responses"]
    for name, delivery in deliveries.items():
        status, body = app.post(*delivery)
        seen.add(status)
        assert str(status) in responses, name
        if status >= 300:
            assert set(body) == {"error", "detail"}, name
            assert body["error"] in error_reasons(responses[str(status)]), name
    assert seen == {200, 400, 401, 413, 500}
    # The store down: 503, as documented.
    down = build_app(Receiver(SECRET, header=HEADER, store=DownStore()))
    with TestClient(down) as client:
        response = client.post(PATH, content=valid[0], headers=valid[1])
    assert response.status_code == 503
    assert response.json()["error"] in error_reasons(responses["503"])


def test_in_inbox_mode_a_new_delivery_is_202_and_no_handler_answer_is_documented(tmp_path: Path) -> None:
    from kreuzberg_webhooks.inbox import SQLiteInbox

    operation = webhook_operation(inbox=True)
    assert set(operation["responses"]) == {"200", "202", "400", "401", "413", "503"}
    receiver = Receiver(SECRET, inbox=SQLiteInbox(tmp_path / "inbox.sqlite3"))
    first = receiver.handle(*signed_delivery(SECRET))
    assert str(first.status_code) in operation["responses"]
    assert json.loads(first.body)["status"] in ANSWER_SCHEMA["properties"]["status"]["enum"]
    assert first.status_code == 202


@pytest.mark.parametrize(
    ("shape", "payload"),
    [
        ("JobEvent", job_event_payload()),
        ("JobDocument", job_document_payload(metadata={"order": 7})),
        ("CrawlJobDocument", crawl_job_document_payload()),
        ("WebhookEvent", webhook_event_payload()),
        ("WebhookEvent", webhook_event_payload(event="job.failed")),
        (
            "WebhookEvent",
            sdk.job_event("job.completed", sdk.ULID, results=sdk.WebhookEventResults.from_dict(sdk.RESULT)),
        ),
        (
            "CrawlWebhookEvent",
            sdk.crawl_event("crawl.failed", "failed", sdk.CRAWL_ID, error=sdk.WebhookEventError("E", "m")),
        ),
        ("AutoTuneWebhookEvent", sdk.auto_tune_event("auto_tune.completed", "completed", best_score=0.5)),
        (
            "JobDocument",
            sdk.extraction_document(
                "failed",
                error="encrypted",
                completed_at="2027-01-15T08:00:03Z",
                webhook_delivery={"attempt_count": 5, "status": "failed", "last_error": "HTTP 503"},
                parent_crawl_job_id=str(sdk.CRAWL_ID),
                source_url="https://example.com/a",
                cached=False,
                child_job_ids=[],
                pages_extracted=1,
                tables_extracted=0,
                images_extracted=0,
                processing_time_ms=5,
            ),
        ),
        ("CrawlJobDocument", sdk.crawl_document(sdk.CRAWL_ID, "completed")),
        ("UnknownEvent", {"event": "dataset.published", "event_id": "e-1", "timestamp": "2027-01-15T08:00:00Z"}),
    ],
    ids=[
        "job-event",
        "job-document",
        "crawl-document",
        "webhook-event",
        "webhook-event-failed",
        "sdk-webhook-event",
        "sdk-crawl-webhook-event",
        "sdk-auto-tune-webhook-event",
        "sdk-job-document",
        "sdk-crawl-document",
        "unknown-event",
    ],
)
def test_each_schema_names_the_fields_of_a_real_payload_of_its_shape(shape: str, payload: dict[str, Any]) -> None:
    schema = PAYLOAD_SCHEMAS[shape]
    assert set(schema["required"]) <= set(payload), "a field the schema requires is missing from a real payload"
    undocumented = set(payload) - set(schema["properties"])
    assert not undocumented, f"{shape} payload fields missing from the schema: {undocumented}"


@pytest.mark.parametrize("scheme", ["sha256", "t-v1"])
def test_the_signature_pattern_accepts_what_the_package_signs(scheme: str) -> None:
    (parameter, _) = webhook_operation()["parameters"]
    _, headers = signed_delivery(SECRET, scheme=scheme)
    assert re.fullmatch(parameter["schema"]["pattern"], headers[parameter["name"]])


@pytest.mark.parametrize(
    "value",
    [
        "sha256=nothex",
        "SHA256=" + "a" * 64,
        "t=1",
        "v1=" + "a" * 64,
        "t=1,v1=abc",
        "t=1, v1=" + "a" * 64,
        "t=x,v1=" + "a" * 64,
    ],
)
def test_the_signature_pattern_refuses_what_the_receiver_calls_malformed(value: str) -> None:
    (parameter, _) = webhook_operation()["parameters"]
    assert not re.fullmatch(parameter["schema"]["pattern"], value)
    with pytest.raises(WebhookError) as refused:
        Receiver(SECRET).verifier.verify(json.dumps(job_event_payload()).encode(), {parameter["name"]: value})
    assert refused.value.reason == "malformed_signature"


def test_a_receiver_restricted_to_one_format_documents_only_that_one() -> None:
    webhook = KreuzbergWebhook(Receiver(SECRET, schemes="t-v1"))
    (parameter, _) = webhook.route_options()["openapi_extra"]["parameters"]
    _, sha256 = signed_delivery(SECRET, scheme="sha256")
    _, timestamped = signed_delivery(SECRET, scheme="t-v1")
    assert not re.fullmatch(parameter["schema"]["pattern"], sha256[parameter["name"]])
    assert re.fullmatch(parameter["schema"]["pattern"], timestamped[parameter["name"]])
    assert "sha256=" not in parameter["description"]
