"""The Flask and WSGI examples under a real gunicorn (2 workers x 4 threads) on a free loopback port, over real HTTP."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import sign
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.servers import BIN, ROOT, Reply, Server, free_port, http_request, run_server

SECRET = "integration-secret-0123456789abcdef0123"
LIMIT = 4096
PATH = "/webhooks/kreuzberg"

#: (example module, KREUZBERG_WSGI_MODE)
SETUPS = {
    "flask": ("flask_app", ""),
    "wsgi-guard": ("wsgi_app", "guard"),
    "wsgi-endpoint": ("wsgi_app", "endpoint"),
}


@dataclass
class Example:
    server: Server
    events_log: Path

    @property
    def url(self) -> str:
        return self.server.url + PATH

    def post(self, body: bytes | Iterator[bytes], headers: Any) -> Reply:
        return http_request(self.url, "POST", body, headers)

    def logged(self, event_id: str) -> list[dict[str, Any]]:
        if not self.events_log.exists():
            return []
        lines = [json.loads(line) for line in self.events_log.read_text().splitlines()]
        return [line for line in lines if line["event_id"] == event_id]


def gunicorn_argv(module: str, port: int) -> list[str]:
    """The README's command: several processes (they share the SQLite store), a few threads each.

    ``--preload`` imports the app once in the master, so a missing secret stops
    gunicorn at once instead of every worker failing to boot in a loop.
    """
    return [
        str(BIN / "gunicorn"),
        "--preload",
        "--pythonpath",
        str(ROOT / "examples"),
        f"{module}:app",
        "--workers",
        "2",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
    ]


@pytest.fixture(scope="module", params=list(SETUPS))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    module, mode = SETUPS[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    env = {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_EVENTS_LOG": str(tmp / "events.jsonl"),
        "KREUZBERG_STORE_URL": f"sqlite:///{tmp / 'replay.sqlite3'}",  # absolute: sqlite:////tmp/...
        "KREUZBERG_MAX_BODY_SIZE": str(LIMIT),  # keeps the 413 case cheap
        "KREUZBERG_REDIS_URL": "",
        "KREUZBERG_WSGI_MODE": mode,
    }
    port = free_port()
    # The working directory is the temporary one: nothing is written into the checkout.
    with run_server(gunicorn_argv(module, port), port=port, env=env, cwd=tmp, log=tmp / "server.log") as server:
        yield Example(server, tmp / "events.jsonl")


def deliver(**overrides: Any) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    payload = job_event_payload(**overrides)
    body, headers = signed_delivery(SECRET, payload)
    return body, headers, payload


def chunks(body: bytes, size: int = 1024) -> Iterator[bytes]:
    return iter([body[i : i + size] for i in range(0, len(body), size)])


def test_valid_delivery_is_processed_once_and_logged(example: Example) -> None:
    body, headers, payload = deliver()
    reply = example.post(body, headers)
    assert reply.status == 200, reply
    assert json.loads(reply.body) == {"status": "processed"}
    assert example.logged(payload["event_id"]) == [
        {"event_id": payload["event_id"], "job_id": payload["job_id"], "status": "completed"}
    ]


def test_same_delivery_again_is_2xx_and_not_logged_twice(example: Example) -> None:
    body, headers, payload = deliver()
    first = example.post(body, headers)
    again = example.post(body, headers)
    assert (first.status, again.status) == (200, 200)
    assert json.loads(again.body) == {"status": "duplicate"}
    assert len(example.logged(payload["event_id"])) == 1


def test_forged_delivery_is_401(example: Example) -> None:
    body, headers, payload = deliver()
    headers["X-Webhook-Signature"] = sign(body, "forger-secret-0123456789abcdef012345")
    reply = example.post(body, headers)
    assert reply.status == 401
    assert json.loads(reply.body)["error"] == "signature_mismatch"
    assert example.logged(payload["event_id"]) == []


def test_two_signature_header_lines_joined_by_gunicorn_are_401(example: Example) -> None:
    body, headers, payload = deliver()
    lines = [*headers.items(), ("X-Webhook-Signature", headers["X-Webhook-Signature"])]
    reply = example.post(body, lines)
    assert reply.status == 401
    assert json.loads(reply.body)["error"] == "malformed_signature"
    assert example.logged(payload["event_id"]) == []


def test_over_limit_body_is_413_and_the_server_stays_healthy(example: Example) -> None:
    body, headers, _ = deliver(padding="x" * (LIMIT * 4))
    reply = example.post(body, headers)
    assert reply.status == 413
    assert json.loads(reply.body)["error"] == "payload_too_large"
    body, headers, payload = deliver()
    assert example.post(body, headers).status == 200
    assert len(example.logged(payload["event_id"])) == 1


def test_over_limit_chunked_body_is_413_and_the_server_stays_healthy(example: Example) -> None:
    body, headers, _ = deliver(padding="x" * (LIMIT * 4))
    reply = example.post(chunks(body), headers)
    assert reply.status == 413
    assert json.loads(reply.body)["error"] == "payload_too_large"
    body, headers, _ = deliver()
    assert example.post(body, headers).status == 200


def test_chunked_body_without_content_length_is_processed(example: Example) -> None:
    body, headers, payload = deliver()
    reply = example.post(chunks(body, 50), headers)  # Transfer-Encoding: chunked, no Content-Length
    assert reply.status == 200, reply
    assert len(example.logged(payload["event_id"])) == 1


def test_stale_timestamp_is_400(example: Example) -> None:
    body, headers, payload = deliver(timestamp=int(time.time()) - 3 * 24 * 3600)
    reply = example.post(body, headers)
    assert reply.status == 400
    assert json.loads(reply.body)["error"] == "stale_timestamp"
    assert example.logged(payload["event_id"]) == []


def test_unknown_status_is_2xx_and_logged(example: Example) -> None:
    body, headers, payload = deliver(status="archived", region="eu-2")
    reply = example.post(body, headers)
    assert reply.status == 200
    assert [line["status"] for line in example.logged(payload["event_id"])] == ["archived"]


def test_get_is_405_with_the_json_answer(example: Example) -> None:
    reply = http_request(example.url, "GET")
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"
    assert json.loads(reply.body)["error"] == "method_not_allowed"


def test_other_pages_are_the_apps_own(example: Example) -> None:
    reply = http_request(example.server.url + "/", "GET")
    assert (reply.status, reply.body) == (200, b"Deliveries go to POST /webhooks/kreuzberg\n")


def test_fifty_concurrent_copies_run_the_handler_exactly_once(example: Example) -> None:
    body, headers, payload = deliver()
    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(lambda _: example.post(body, headers), range(50)))
    statuses = sorted(reply.status for reply in replies)
    assert all(200 <= status < 300 or status == 429 for status in statuses), statuses
    processed = [
        reply for reply in replies if reply.status == 200 and json.loads(reply.body) == {"status": "processed"}
    ]
    assert len(processed) == 1  # the others were acknowledged as duplicates or told to retry
    for reply in replies:
        if reply.status == 429:
            assert int(reply.headers["retry-after"]) >= 1
    assert len(example.logged(payload["event_id"])) == 1


@pytest.mark.parametrize("module", ["flask_app", "wsgi_app"])
def test_example_refuses_to_start_without_a_secret(module: str, tmp_path: Path) -> None:
    argv = gunicorn_argv(module, free_port())
    env = {"PATH": str(BIN), "KREUZBERG_WEBHOOK_SECRET": ""}
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "KREUZBERG_WEBHOOK_SECRET is not set" in result.stderr
