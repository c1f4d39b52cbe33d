"""Every example in inbox mode (``KREUZBERG_INBOX=1``) under its real server: the fault drill.

The handler fails (``KREUZBERG_FAULT_FILE`` exists) while deliveries arrive: each is
acknowledged 202 (its copies 200) and kept in the inbox, retried by the embedded worker.
The server is then stopped with the deliveries still queued, the fault is cleared and the
server started again: every event is processed exactly once, nothing was answered 4xx.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kreuzberg_webhooks.inbox import DeliveryState, SQLiteInbox
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.servers import ROOT, Server, free_port, gunicorn_argv, http_request, run_server, uvicorn_argv

SECRET = "inbox-examples-secret-0123456789abcdef01"
EVENTS, COPIES = 12, 2

Argv = Callable[[int], list[str]]

SERVERS: dict[str, Argv] = {
    "starlette-uvicorn": lambda port: uvicorn_argv("starlette_app:app", port, app_dir=ROOT / "examples", workers=2),
    "fastapi-uvicorn": lambda port: uvicorn_argv("fastapi_app:app", port, app_dir=ROOT / "examples", workers=2),
    "flask-gunicorn": lambda port: gunicorn_argv("flask_app:app", port, pythonpath=ROOT / "examples"),
    "wsgi-gunicorn": lambda port: gunicorn_argv("wsgi_app:app", port, pythonpath=ROOT / "examples"),
    "django-gunicorn": lambda port: gunicorn_argv(
        "kreuzberg_site.wsgi", port, pythonpath=ROOT / "examples" / "django_project"
    ),
    "django-uvicorn": lambda port: uvicorn_argv(
        "kreuzberg_site.asgi:application",
        port,
        app_dir=ROOT / "examples" / "django_project",
        workers=2,
        extra=["--lifespan", "off"],
    ),
}


def inbox_env(tmp: Path) -> dict[str, str]:
    return {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_STORE_URL": f"sqlite:///{tmp / 'webhooks.sqlite3'}",
        "KREUZBERG_EVENTS_LOG": str(tmp / "events.log"),
        "KREUZBERG_INBOX": "1",
        "KREUZBERG_INBOX_RETRY_DELAY": "0.2",
        "KREUZBERG_INBOX_RETRY_MAX_DELAY": "0.5",
        "KREUZBERG_INBOX_MAX_ATTEMPTS": "10000",
        "KREUZBERG_FAULT_FILE": str(tmp / "fault"),
    }


@contextlib.contextmanager
def serve(name: str, tmp: Path, port: int, log: str) -> Iterator[Server]:
    with run_server(SERVERS[name](port), port=port, env=inbox_env(tmp), cwd=tmp, log=tmp / log) as server:
        yield server


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def processed(tmp: Path) -> Counter[str]:
    log = tmp / "events.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(json.loads(line)["job_id"] for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SERVERS))
def test_fault_drill_queued_deliveries_survive_a_restart_and_run_once(name: str, tmp_path: Path) -> None:
    (tmp_path / "fault").touch()
    deliveries = [signed_delivery(SECRET, job_event_payload()) for _ in range(EVENTS)]
    port = free_port()
    with serve(name, tmp_path, port, "first.log") as server:
        statuses = Counter(
            http_request(server.url + "/webhooks/kreuzberg", body=body, headers=headers).status
            for body, headers in deliveries
            for _ in range(COPIES)
        )
        inbox = SQLiteInbox(tmp_path / "webhooks.sqlite3")
        # The embedded worker tries them and fails: each has been attempted at least twice.
        wait_for(lambda: all(r.attempts >= 2 for r in inbox.list(limit=1000)), "failed attempts")
    assert statuses == {202: EVENTS, 200: EVENTS * (COPIES - 1)}, statuses
    assert processed(tmp_path) == {}
    records = inbox.list(limit=1000)
    assert len(records) == EVENTS
    assert all(r.state in (DeliveryState.QUEUED, DeliveryState.RUNNING) for r in records)
    assert all(r.last_error and "fault drill" in r.last_error for r in records)

    (tmp_path / "fault").unlink()  # the downstream recovers while the server is down
    with serve(name, tmp_path, port, "second.log") as server:
        wait_for(lambda: inbox.counts()[DeliveryState.DONE] == EVENTS, "every delivery done")
        again = http_request(server.url + "/webhooks/kreuzberg", body=deliveries[0][0], headers=deliveries[0][1])
        assert again.status == 200
        assert json.loads(again.body)["status"] == "duplicate"
    assert sorted(processed(tmp_path).values()) == [1] * EVENTS


@pytest.mark.slow
def test_dead_deliveries_are_retried_from_the_command_line_and_run_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "fault").touch()
    deliveries = [signed_delivery(SECRET, job_event_payload()) for _ in range(4)]
    port = free_port()
    argv = SERVERS["starlette-uvicorn"](port)
    environment = {**inbox_env(tmp_path), "KREUZBERG_INBOX_MAX_ATTEMPTS": "2"}
    inbox = SQLiteInbox(tmp_path / "webhooks.sqlite3")
    with run_server(argv, port=port, env=environment, cwd=tmp_path, log=tmp_path / "server.log") as server:
        for body, headers in deliveries:
            assert http_request(server.url + "/webhooks/kreuzberg", body=body, headers=headers).status == 202
        wait_for(lambda: inbox.counts()[DeliveryState.DEAD] == len(deliveries), "every delivery dead")
        (tmp_path / "fault").unlink()
        store = f"sqlite:///{tmp_path / 'webhooks.sqlite3'}"
        command = [sys.executable, "-m", "kreuzberg_webhooks", "inbox"]
        listed = subprocess.run(
            [*command, "list", "--store", store, "--state", "dead"], capture_output=True, text=True, check=True
        )
        assert len(listed.stdout.splitlines()) == len(deliveries)
        retried = subprocess.run(
            [*command, "retry", "--store", store, "--state", "dead"], capture_output=True, text=True, check=True
        )
        assert retried.stdout.strip() == f"queued {len(deliveries)} deliveries again"
        wait_for(lambda: inbox.counts()[DeliveryState.DONE] == len(deliveries), "every retried delivery done")
    assert sorted(processed(tmp_path).values()) == [1] * len(deliveries)
