"""The Django example project under real servers, over real HTTP on a free loopback port.

Twice: under gunicorn (WSGI, 2 worker processes x 4 threads, the sync view) and
under uvicorn (ASGI, 2 worker processes, the async view). The workers share one
SQLite replay store. One server per setup serves every test of this module.
"""

from __future__ import annotations

import json
import os
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

SECRET = "django-integration-secret-0123456789abcdef"
LIMIT = 4096
PATH = "/webhooks/kreuzberg"
PROJECT = ROOT / "examples" / "django_project"


def gunicorn_argv(port: int) -> list[str]:
    """The README's WSGI command. ``--preload`` imports the project once, so a missing
    secret stops gunicorn at once instead of every worker failing to boot in a loop."""
    return [
        str(BIN / "gunicorn"),
        "--preload",
        "--pythonpath",
        str(PROJECT),
        "kreuzberg_site.wsgi",
        "--workers",
        "2",
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
    ]


def uvicorn_argv(port: int, workers: int = 2) -> list[str]:
    """The README's ASGI command."""
    return [
        str(BIN / "uvicorn"),
        "--app-dir",
        str(PROJECT),
        "kreuzberg_site.asgi:application",
        "--workers",
        str(workers),
        "--lifespan",
        "off",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


SERVERS = {"gunicorn": gunicorn_argv, "uvicorn": uvicorn_argv}


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


def example_env(tmp: Path) -> dict[str, str]:
    return {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_EVENTS_LOG": str(tmp / "events.jsonl"),
        "KREUZBERG_STORE_URL": f"sqlite:///{tmp / 'replay.sqlite3'}",  # absolute: sqlite:////tmp/...
        "KREUZBERG_MAX_BODY_SIZE": str(LIMIT),  # keeps the 413 cases cheap
        "KREUZBERG_REDIS_URL": "",
        # The project's own settings, whatever the test process's environment holds.
        "DJANGO_SETTINGS_MODULE": "kreuzberg_site.settings",
        "KREUZBERG_DJANGO_ASYNC": "",
    }


@pytest.fixture(scope="module", params=list(SERVERS))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    tmp = tmp_path_factory.mktemp(f"django-{request.param}")
    env = example_env(tmp)
    if request.param == "uvicorn":
        del env["KREUZBERG_DJANGO_ASYNC"]  # asgi.py selects the async view
    port = free_port()
    argv = SERVERS[request.param](port)
    # The working directory is the temporary one: nothing is written into the checkout.
    with run_server(argv, port=port, env=env, cwd=tmp, log=tmp / "server.log") as server:
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
    assert reply.status == 200, (reply, example.server.output())
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


def test_two_signature_header_lines_joined_by_the_server_are_401(example: Example) -> None:
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


def test_get_is_405_with_the_json_answer_not_a_login_redirect(example: Example) -> None:
    # The project runs LoginRequiredMiddleware (and CSRF): the view is exempt from both.
    reply = http_request(example.url, "GET")
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"
    assert json.loads(reply.body)["error"] == "method_not_allowed"


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


def test_manage_py_check_passes_the_example_configuration(tmp_path: Path) -> None:
    env = {**os.environ, **example_env(tmp_path)}
    result = subprocess.run(
        [str(BIN / "python"), str(PROJECT / "manage.py"), "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("server", list(SERVERS))
def test_example_refuses_to_start_without_a_secret(server: str, tmp_path: Path) -> None:
    env = {**example_env(tmp_path), "PATH": str(BIN), "KREUZBERG_WEBHOOK_SECRET": ""}
    # One uvicorn process: with --workers its supervisor would restart the failing workers.
    argv = gunicorn_argv(free_port()) if server == "gunicorn" else uvicorn_argv(free_port(), workers=1)
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "KREUZBERG_WEBHOOK_SECRET is not set" in result.stderr


@pytest.mark.parametrize(("entry_point", "is_async"), [("wsgi", False), ("asgi", True)])
def test_entry_point_selects_the_view_flavour(entry_point: str, is_async: bool, tmp_path: Path) -> None:
    code = (
        f"import kreuzberg_site.{entry_point}; "
        "from asgiref.sync import iscoroutinefunction; from django.urls import resolve; "
        "print(iscoroutinefunction(resolve('/webhooks/kreuzberg').func))"
    )
    env = {**os.environ, **example_env(tmp_path), "PYTHONPATH": str(PROJECT)}
    del env["KREUZBERG_DJANGO_ASYNC"]
    result = subprocess.run(
        [str(BIN / "python"), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(is_async)
