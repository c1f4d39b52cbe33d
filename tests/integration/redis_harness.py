"""Serve a receiver over a real Redis with a real server, send it real deliveries, read its events log."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.servers import BIN, Reply, Server, free_port, http_request, run_server

SECRET = "redis-integration-secret-0123456789abcdef"
APP = "tests.integration.redis_app:app"


def delivery(**overrides: Any) -> tuple[bytes, dict[str, str]]:
    """A freshly signed delivery of a new event (the server checks the timestamp against its real clock)."""
    return signed_delivery(SECRET, job_event_payload(**overrides))


def event_id(body: bytes) -> str:
    value: str = json.loads(body)["event_id"]
    return value


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait, with a deadline, until *condition* holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class App:
    server: Server
    events_log: Path
    path: str

    def post(self, body: bytes, headers: dict[str, str], *, timeout: float = 20.0) -> Reply:
        return http_request(self.server.url + self.path, body=body, headers=headers, timeout=timeout)

    def log(self) -> list[dict[str, Any]]:
        """The events log, one dict per line (lines from every worker process)."""
        if not self.events_log.exists():
            return []
        return [json.loads(line) for line in self.events_log.read_text().splitlines() if line.strip()]

    def phases(self, event: str, phase: str = "finished") -> list[dict[str, Any]]:
        """The log lines of one event; a line without ``phase`` (the examples' log) counts as finished."""
        return [line for line in self.log() if line["event_id"] == event and line.get("phase", "finished") == phase]

    def wait_for_phase(self, event: str, phase: str, timeout: float = 20.0) -> dict[str, Any]:
        poll(lambda: bool(self.phases(event, phase)), timeout, f"the handler of {event} to log {phase!r}")
        return self.phases(event, phase)[0]


@contextlib.contextmanager
def serve(
    tmp_path: Path,
    redis_url: str,
    *,
    argv: list[str] | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    path: str = "/webhooks/kreuzberg",
) -> Iterator[App]:
    """Serve :data:`APP` (or *argv*, with ``{port}`` filled in) with *workers* uvicorn workers."""
    port = free_port()
    events_log = tmp_path / f"events-{port}.jsonl"
    if argv is None:
        argv = [str(BIN / "uvicorn"), APP, "--host", "127.0.0.1", "--port", "{port}", "--lifespan", "off"]
        argv += ["--log-level", "warning", "--workers", str(workers)]
    full_env = {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_REDIS_URL": redis_url,
        "KREUZBERG_EVENTS_LOG": str(events_log),
        **(env or {}),
    }
    command = [part.replace("{port}", str(port)) for part in argv]
    with run_server(command, port=port, env=full_env, log=tmp_path / f"server-{port}.log") as server:
        yield App(server, events_log, path)
