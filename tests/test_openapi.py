"""The webhook route in OpenAPI: read from a real FastAPI app's /openapi.json, checked against the receiver."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kreuzberg_webhooks import Event, Receiver, WebhookError
from kreuzberg_webhooks.openapi import PAYLOAD_SCHEMAS, webhook_operation
from kreuzberg_webhooks.testing import (
    crawl_job_document_payload,
    job_document_payload,
    job_event_payload,
    signed_delivery,
)

SECRET = "openapi-test-secret-0123456789abcdef0123"
PATH = "/webhooks/kreuzberg"


def every_error_class() -> list[type[WebhookError]]:
    found, pending = [], [WebhookError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.append(cls)
    return found


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    import fastapi
    from fastapi.testclient import TestClient

    from kreuzberg_webhooks.adapters.fastapi import KreuzbergWebhook

    webhook = KreuzbergWebhook(Receiver(SECRET, header="X-Kreuzberg-Signature"))
    app = fastapi.FastAPI()
    webhook.init_app(app)

    @app.post(PATH, **webhook.route_options())
    async def kreuzberg(event: Event = fastapi.Depends(webhook)) -> dict[str, str]:
        return {"status": "processed"}

    with TestClient(app) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operation(openapi: dict[str, Any]) -> dict[str, Any]:
    post: dict[str, Any] = openapi["paths"][PATH]["post"]
    return post


def test_the_request_body_lists_every_accepted_shape(openapi: dict[str, Any]) -> None:
    body = operation(openapi)["requestBody"]
    assert body["required"] is True
    shapes = body["content"]["application/json"]["schema"]["anyOf"]
    assert [shape["title"] for shape in shapes] == list(PAYLOAD_SCHEMAS)
    assert {"JobEvent", "JobDocument", "CrawlJobDocument"} <= {shape["title"] for shape in shapes}


def test_the_signature_header_is_a_required_parameter_named_as_the_receiver_reads_it(openapi: dict[str, Any]) -> None:
    parameters = {parameter["name"]: parameter for parameter in operation(openapi)["parameters"]}
    assert parameters["X-Kreuzberg-Signature"]["in"] == "header"
    assert parameters["X-Kreuzberg-Signature"]["required"] is True
    assert "X-Webhook-Signature" not in parameters  # the configured name, not the default


def test_every_documented_answer_is_there_with_the_error_body(openapi: dict[str, Any]) -> None:
    responses = operation(openapi)["responses"]
    assert {"200", "400", "401", "405", "413", "429", "500", "503"} <= set(responses)
    for status in ("400", "401", "405", "413", "429", "500", "503"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema["required"] == ["error", "detail"], status
        assert schema["properties"]["error"]["enum"], status
    assert "Retry-After" in responses["429"]["headers"]
    # The 2xx body is the route's own: FastAPI's schema for its return type stays.
    assert responses["200"]["content"]["application/json"]["schema"]["type"] == "object"


def test_each_answer_lists_exactly_the_reasons_the_error_tree_gives_that_status(openapi: dict[str, Any]) -> None:
    responses = operation(openapi)["responses"]
    leaves = [cls for cls in every_error_class() if not cls.__subclasses__() and cls is not WebhookError]
    for cls in leaves:
        assert (
            cls.reason
            in responses[str(cls.status_code)]["content"]["application/json"]["schema"]["properties"]["error"]["enum"]
        ), cls.__name__
    documented = {
        reason
        for status, response in responses.items()
        if status != "200"
        for reason in response["content"]["application/json"]["schema"]["properties"]["error"]["enum"]
    }
    assert documented == {cls.reason for cls in leaves}


@pytest.mark.parametrize(
    ("shape", "payload"),
    [
        ("JobEvent", job_event_payload()),
        ("JobDocument", job_document_payload(metadata={"order": 7})),
        ("CrawlJobDocument", crawl_job_document_payload()),
    ],
    ids=["job-event", "job-document", "crawl-document"],
)
def test_each_schema_names_the_fields_of_a_real_payload_of_its_shape(shape: str, payload: dict[str, Any]) -> None:
    schema = PAYLOAD_SCHEMAS[shape]
    assert set(schema["required"]) <= set(payload), "a field the schema requires is missing from a real payload"
    undocumented = set(payload) - set(schema["properties"])
    assert not undocumented, f"{shape} payload fields missing from the schema: {undocumented}"


def test_the_signature_pattern_accepts_what_the_package_signs() -> None:
    (parameter, _) = webhook_operation()["parameters"]
    _, headers = signed_delivery(SECRET)
    assert re.fullmatch(parameter["schema"]["pattern"], headers[parameter["name"]])
