"""Guard mode behind a timeout middleware, under a real uvicorn over real HTTP: a request cancelled while its
route runs in a thread still settles by the route's own end, so the sender's retry finds the event done."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.servers import ROOT, free_port, http_request, run_server, uvicorn_argv

SECRET = "guard-timeout-secret-0123456789abcdef012"


@pytest.mark.parametrize("mode", ["fastapi", "middleware"])
def test_a_route_that_outlives_the_timeout_is_not_run_again_by_the_retry(mode: str, tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "events.log"
    env = {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_TEST_GATE": str(gate),
        "KREUZBERG_TEST_LOG": str(log),
        "KREUZBERG_TEST_STORE": str(tmp_path / "replay.sqlite3"),
        # Short, so that today's behaviour (the claim kept until its lease ends) shows within the test.
        "KREUZBERG_TEST_LEASE": "2",
        "KREUZBERG_TEST_TIMEOUT": "0.5",
        "KREUZBERG_TEST_MODE": mode,
    }
    port = free_port()
    argv = uvicorn_argv("tests.integration.timeout_app:app", port, app_dir=ROOT)
    with run_server(argv, port=port, env=env, log=tmp_path / "server.log") as server:
        body, headers = signed_delivery(SECRET, job_event_payload())
        url = server.url + "/webhooks/kreuzberg"
        first = http_request(url, body=body, headers=headers)
        assert first.status == 504, first.body  # the timeout middleware answered; the route still runs
        gate.touch()
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text()):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.02)
        # The sender's retry, until the first request's claim is settled one way or the other.
        while (retry := http_request(url, body=body, headers=headers)).status == 429:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert (retry.status, json.loads(retry.body)["status"]) == (200, "duplicate"), server.output()
        assert log.read_text().splitlines() == [json.loads(body)["event_id"]]
