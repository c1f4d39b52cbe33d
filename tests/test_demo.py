"""The demo (``scripts/demo``): a real server, real signed deliveries, answers checked against the contract."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.slow  # starts real servers, or builds and installs a wheel

DEMO = ROOT / "examples" / "demo.py"


def run_demo(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "KREUZBERG_REDIS_URL": "", **env},
    )


def port_of(output: str) -> int:
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", output)
    assert match, output
    return int(match.group(1))


def test_demo_gets_the_contracts_answers_and_exits_0() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith(("ok ", "!! "))]
    assert [row.split()[0] for row in rows] == ["ok"] * 5, result.stdout
    for expected in ("200 processed", "200 duplicate", "401 signature_mismatch", "400 stale_timestamp"):
        assert expected in result.stdout
    seen = [line for line in result.stdout.splitlines() if line.strip().startswith('{"event_id"')]
    assert [json.loads(line)["status"] for line in seen] == ["completed", "archived"]


def test_demo_stops_its_server() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stdout + result.stderr
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port_of(result.stdout)), 1):
        pass


def test_demo_exits_1_when_an_answer_is_off() -> None:
    # A receiver that refuses every body over 10 bytes answers 413 where the contract says 200.
    result = run_demo(KREUZBERG_MAX_BODY_SIZE="10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "!! valid delivery" in result.stdout
    assert "FAILED" in result.stdout


def test_demo_stores_every_jobs_text_once_and_says_which_way_it_came() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("document"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    assert len(rows) == 8
    assert all(row[2] == row[3] and row[4] == "1" for row in rows), rows  # chars == stored, once each
    ways = {row[5] for row in rows}
    assert ways == {"webhook", "reconcile"}
    assert "never sent (dropped on purpose)" in result.stdout
    assert "8 texts stored" in result.stdout
