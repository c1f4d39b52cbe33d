"""Inbox backend stopped → 503 (never a 2xx without the write); back → the retried delivery is
queued and processed once. The examples in inbox mode on a real PostgreSQL and a real Redis."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.servers import ROOT, free_port, gunicorn_argv, http_request, run_server, uvicorn_argv

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer
    from tests.redis_server import RedisServer

pytest_plugins = ["tests.postgres_server", "tests.redis_server"]

SECRET = "inbox-outage-secret-0123456789abcdef0123"


def env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_EVENTS_LOG": str(tmp / "events.log"),
        "KREUZBERG_INBOX": "1",
        "KREUZBERG_INBOX_RETRY_DELAY": "0.2",
        **extra,
    }


def processed(tmp: Path) -> Counter[str]:
    log = tmp / "events.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(json.loads(line)["job_id"] for line in lines)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def drill(url: str, tmp: Path, stop: Callable[[], None], start: Callable[[], None]) -> None:
    post = url + "/webhooks/kreuzberg"
    before = job_event_payload()
    body, headers = signed_delivery(SECRET, before)
    assert http_request(post, body=body, headers=headers).status == 202
    wait_for(lambda: processed(tmp)[before["job_id"]] == 1, "the first event processed")

    during = job_event_payload()
    body, headers = signed_delivery(SECRET, during)
    stop()
    down = http_request(post, body=body, headers=headers, timeout=30)
    assert down.status == 503
    assert json.loads(down.body)["error"] == "store_unavailable"
    start()
    # The sender retries; the first answers after the restart may still meet a stale connection.
    deadline = time.monotonic() + 60
    while (status := http_request(post, body=body, headers=headers, timeout=30).status) == 503:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status == 202
    wait_for(lambda: processed(tmp)[during["job_id"]] == 1, "the retried event processed")
    assert http_request(post, body=body, headers=headers).status == 200  # a later copy: duplicate
    assert processed(tmp) == {before["job_id"]: 1, during["job_id"]: 1}


@pytest.mark.slow
def test_postgres_inbox_down_is_503_and_back_is_processed(tmp_path: Path, own_postgres_server: PostgresServer) -> None:
    port = free_port()
    argv = uvicorn_argv("starlette_app:app", port, app_dir=ROOT / "examples", workers=2)
    extra = env(tmp_path, KREUZBERG_DATABASE_URL=own_postgres_server.url)
    with run_server(argv, port=port, env=extra, cwd=tmp_path, log=tmp_path / "server.log") as server:
        drill(server.url, tmp_path, own_postgres_server.stop, own_postgres_server.start)


@pytest.mark.slow
def test_redis_inbox_down_is_503_and_back_is_processed(tmp_path: Path, own_redis_server: RedisServer) -> None:
    port = free_port()
    argv = gunicorn_argv("flask_app:app", port, pythonpath=ROOT / "examples")
    extra = env(tmp_path, KREUZBERG_REDIS_URL=own_redis_server.url)
    with run_server(argv, port=port, env=extra, cwd=tmp_path, log=tmp_path / "server.log") as server:
        drill(server.url, tmp_path, own_redis_server.stop, own_redis_server.start)


@pytest.mark.slow
def test_async_redis_inbox_down_is_503_and_back_is_processed(tmp_path: Path, own_redis_server: RedisServer) -> None:
    port = free_port()
    argv = uvicorn_argv("starlette_app:app", port, app_dir=ROOT / "examples", workers=2)
    extra = env(tmp_path, KREUZBERG_REDIS_URL=own_redis_server.url)
    with run_server(argv, port=port, env=extra, cwd=tmp_path, log=tmp_path / "server.log") as server:
        drill(server.url, tmp_path, own_redis_server.stop, own_redis_server.start)


@pytest.mark.slow
def test_sync_postgres_inbox_down_is_503_and_back_is_processed(
    tmp_path: Path, own_postgres_server: PostgresServer
) -> None:
    port = free_port()
    argv = gunicorn_argv("wsgi_app:app", port, pythonpath=ROOT / "examples")
    extra = env(tmp_path, KREUZBERG_DATABASE_URL=own_postgres_server.url)
    with run_server(argv, port=port, env=extra, cwd=tmp_path, log=tmp_path / "server.log") as server:
        drill(server.url, tmp_path, own_postgres_server.stop, own_postgres_server.start)
