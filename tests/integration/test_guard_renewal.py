"""Guard mode under a real uvicorn over real HTTP: the claim of a delivery whose route runs for
many leases is renewed until the route's answer settles it, so the sender's retry meanwhile is
answered ``429 in_flight`` and the route runs once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.servers import ROOT, Reply, free_port, http_request, run_server, uvicorn_argv

SECRET = "guard-renewal-secret-0123456789abcdef01"
LEASE = 0.4
DEADLINE = 30.0


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def in_thread(url: str, body: bytes, headers: dict[str, str]) -> tuple[threading.Thread, list[Reply]]:
    replies: list[Reply] = []
    thread = threading.Thread(target=lambda: replies.append(http_request(url, body=body, headers=headers)))
    thread.start()
    return thread, replies


@pytest.mark.slow
def test_a_guarded_route_slower_than_the_lease_runs_once_while_the_sender_retries(tmp_path: Path) -> None:
    gate, started, log = tmp_path / "gate", tmp_path / "started.log", tmp_path / "events.log"
    env = {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_TEST_GATE": str(gate),
        "KREUZBERG_TEST_STARTED": str(started),
        "KREUZBERG_TEST_LOG": str(log),
        "KREUZBERG_TEST_STORE": str(tmp_path / "replay.sqlite3"),
        "KREUZBERG_TEST_LEASE": str(LEASE),
    }
    port = free_port()
    argv = uvicorn_argv("tests.integration.guard_slow_app:app", port, app_dir=ROOT)
    with run_server(argv, port=port, env=env, log=tmp_path / "server.log") as server:
        body, headers = signed_delivery(SECRET, job_event_payload())
        event_id = json.loads(body)["event_id"]
        url = server.url + "/webhooks/kreuzberg"
        first, first_reply = in_thread(url, body, headers)
        deadline = time.monotonic() + DEADLINE
        while not lines(started):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.02)
        time.sleep(3 * LEASE)  # the route has outlived its lease three times: only a renewal keeps the claim
        # The sender's retry: answered at once, unless it runs the route again (which then waits at the gate).
        retry, retry_reply = in_thread(url, body, headers)
        while not retry_reply and len(lines(started)) < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.02)
        assert lines(started) == [event_id], "the retry ran the route again"
        retry.join(DEADLINE)
        assert retry_reply[0].status == 429, retry_reply[0].body
        assert json.loads(retry_reply[0].body)["error"] == "in_flight"
        gate.touch()
        first.join(DEADLINE)
        retry.join(DEADLINE)
        assert [r.status for r in first_reply] == [200], server.output()
        again = http_request(url, body=body, headers=headers)  # after the route's 200: a duplicate
        assert (again.status, json.loads(again.body)["status"]) == (200, "duplicate"), server.output()
        assert lines(log) == [event_id]
