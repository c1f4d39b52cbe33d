"""The FastAPI example's own OpenAPI document, read from the example running under uvicorn: the
webhook route shows its body, its signature header and every answer the dependency sends."""

from __future__ import annotations

import json
from pathlib import Path

from kreuzberg_webhooks.openapi import webhook_operation
from tests.integration.example_contract import example_env, serve_example
from tests.servers import ROOT, http_request, uvicorn_argv


def test_the_fastapi_examples_docs_show_the_webhook_routes_body_header_and_answers(tmp_path: Path) -> None:
    def argv(port: int) -> list[str]:
        return uvicorn_argv("fastapi_app:app", port, app_dir=ROOT / "examples", workers=1)

    with serve_example(argv, tmp_path, example_env(tmp_path)) as example:
        reply = http_request(example.server.url + "/openapi.json", method="GET")
    assert reply.status == 200
    operation = json.loads(reply.body)["paths"]["/webhooks/kreuzberg"]["post"]
    expected = webhook_operation("X-Webhook-Signature")
    # The body: every shape a delivery may have, as raw JSON (the dependency reads the bytes itself).
    assert operation["requestBody"]["required"] is True
    assert operation["requestBody"]["content"].keys() == expected["requestBody"]["content"].keys()
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == expected["requestBody"]["content"]["application/json"]["schema"]
    # The signature header, required (and the optional idempotency key).
    headers = [(p["name"], p["required"]) for p in operation.get("parameters", []) if p["in"] == "header"]
    assert headers == [(p["name"], p["required"]) for p in expected["parameters"] if p["in"] == "header"]
    assert ("X-Webhook-Signature", True) in headers
    # Every answer the dependency sends before (or instead of) the route.
    assert set(operation["responses"]) >= {"200", "400", "401", "413", "429", "500", "503"}
    assert "Retry-After" in operation["responses"]["429"].get("headers", {})
