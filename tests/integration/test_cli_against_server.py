"""``send-test`` and ``simulate`` run as real commands against real servers on 127.0.0.1.

Two servers under uvicorn: the Starlette example (two workers sharing SQLite)
and ``flaky_app`` (a receiver that fails, stalls or rejects on purpose). The
servers' events logs are the ground truth for "handled exactly once".
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import BIN, ROOT, Server, free_port, run_server, uvicorn_argv

SECRET = "cli-integration-secret-0123456789abcdef-XyZ"
CLI = str(BIN / "kreuzberg-webhooks")


@dataclass
class Running:
    server: Server
    events_log: Path

    def url(self, path: str) -> str:
        return self.server.url + path

    def logged(self, **match: object) -> list[dict[str, object]]:
        if not self.events_log.exists():
            return []
        lines = [json.loads(line) for line in self.events_log.read_text().splitlines()]
        return [line for line in lines if all(line.get(k) == v for k, v in match.items())]


def uvicorn(app: str, port: int, *, app_dir: Path = ROOT, workers: int = 1) -> list[str]:
    return uvicorn_argv(app, port, app_dir=app_dir, workers=workers, extra=["--log-level", "warning"])


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("starlette-example")
    env = {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_EVENTS_LOG": str(tmp / "events.jsonl"),
        "KREUZBERG_STORE_URL": f"sqlite:///{tmp / 'replay.sqlite3'}",
        "KREUZBERG_REDIS_URL": "",
    }
    port = free_port()
    argv = uvicorn("starlette_app:app", port, app_dir=ROOT / "examples", workers=2)
    with run_server(argv, port=port, env=env, log=tmp / "server.log") as server:
        yield Running(server, tmp / "events.jsonl")


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("flaky-app")
    env = {"KREUZBERG_WEBHOOK_SECRET": SECRET, "FLAKY_EVENTS_LOG": str(tmp / "events.jsonl")}
    port = free_port()
    with run_server(uvicorn("tests.integration.flaky_app:app", port), port=port, env=env, log=tmp / "server.log") as s:
        yield Running(s, tmp / "events.jsonl")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it; the secret comes from the environment."""
    env = {"KREUZBERG_WEBHOOK_SECRET": SECRET, "PATH": str(BIN)}
    result = subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def table(output: str) -> dict[str, int]:
    """The simulator's outcome table as {outcome: events}."""
    rows = re.findall(
        r"^  (delivered|delivered after retries|permanently rejected|dead-lettered|total) +(\d+)$", output, re.M
    )
    return {name: int(count) for name, count in rows}


def answers(output: str) -> Counter[str]:
    line = next(line for line in output.splitlines() if line.startswith("requests:"))
    return Counter(
        {label: int(n) for label, n in re.findall(r"([\w-]+(?: [\w-]+)?) x(\d+)", line.split("answers:")[1])}
    )


def exactly_once(entries: list[dict[str, object]], events: int) -> None:
    ids = Counter(entry["event_id"] for entry in entries)
    assert len(ids) == events, f"{len(ids)} distinct events handled, {events} sent"
    assert set(ids.values()) == {1}, f"handled more than once: {[k for k, n in ids.items() if n > 1]}"


# -- send-test -----------------------------------------------------------------------------


def test_send_test_is_processed_by_the_example_and_prints_status_answer_latency(example: Running) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg"), "--status", "failed")
    assert result.returncode == 0, result.stderr
    event_id = re.search(r"event_id=([0-9a-f-]{36})", result.stdout)
    assert event_id is not None
    assert re.search(r"^200 OK  \d+\.\d ms$", result.stdout, re.M), result.stdout
    assert '{"status":"processed"}' in result.stdout
    assert example.logged(event_id=event_id.group(1), status="failed")


def test_send_test_of_a_job_document_is_processed(example: Running) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg"), "--shape", "document", "--status", "partial_success")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = re.search(r"job_id=([0-9a-f-]{36})", result.stdout)
    assert job_id is not None
    assert example.logged(job_id=job_id.group(1), status="partial_success")


@pytest.mark.parametrize(
    ("args", "status", "reason", "code"),
    [
        (["--wrong-signature"], 401, "signature_mismatch", 0),  # refused as it should be: a CI gate passes
        (["--unsigned"], 401, "missing_signature", 0),
        (["--field", "timestamp=0", "--expect", "400"], 400, "stale_timestamp", 0),
        (["--field", "timestamp=0"], 400, "stale_timestamp", 1),  # a 2xx was expected
        (["--field", "job_id=42"], 400, "invalid_field", 1),
    ],
    ids=["wrong-signature", "unsigned", "stale-expected", "stale", "mistyped-field"],
)
def test_send_test_of_a_bad_delivery_shows_the_rejection_and_exits_by_the_expectation(
    example: Running, args: list[str], status: int, reason: str, code: int
) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg"), *args)
    assert result.returncode == code, result.stdout + result.stderr
    assert re.search(rf"^{status} ", result.stdout, re.M), result.stdout
    answer = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    assert json.loads(answer)["error"] == reason


def test_send_test_to_a_mistyped_path_is_refused_and_exits_1(example: Running) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg-typo"))
    assert result.returncode == 1
    assert "expected 2xx, got 404" in result.stderr


def test_send_test_of_a_webhook_event_signed_t_v1_is_processed(example: Running) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg"), "--shape", "webhook", "--status", "failed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "webhook event=job.failed  t-v1" in result.stdout
    event_id = re.search(r"event_id=([0-9a-f-]{36})", result.stdout)
    assert event_id is not None
    assert example.logged(event_id=event_id.group(1), status="failed")


@pytest.mark.parametrize(
    "args",
    [["--shape", "event", "--scheme", "t-v1"], ["--shape", "webhook", "--scheme", "sha256"]],
    ids=["small-event-signed-t-v1", "webhook-event-signed-sha256"],
)
def test_send_test_in_either_format_is_processed(example: Running, args: list[str]) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg"), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '{"status":"processed"}' in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--event", "crawl.completed", "--status", "partial_success"],
        ["--event", "crawl.failed"],
        ["--event", "auto_tune.completed"],
        ["--event", "auto_tune.failed"],
        ["--event", "document.indexed"],
    ],
    ids=lambda args: " ".join(args[1:]),
)
def test_send_test_of_every_family_is_processed_and_logged_once(example: Running, args: list[str]) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg"), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '{"status":"processed"}' in result.stdout
    assert f"event={args[1]}" in result.stdout
    assert "t-v1" in result.stdout
    event_id = re.search(r"event_id=([0-9a-f-]{36})", result.stdout)
    assert event_id, result.stdout
    assert [line["type"] for line in example.logged(event_id=event_id.group(1))] == [args[1]]


def test_send_test_of_a_mis_signed_webhook_event_is_401(example: Running) -> None:
    result = cli("send-test", example.url("/webhooks/kreuzberg"), "--shape", "webhook", "--wrong-signature")
    assert result.returncode == 0  # refused as it should be
    answer = next(line for line in result.stdout.splitlines() if line.startswith("{"))
    assert json.loads(answer)["error"] == "signature_mismatch"
    assert "refused as expected (401)" in result.stdout


# -- simulate ------------------------------------------------------------------------------


def test_simulate_every_family_with_duplicates_handles_each_event_once(example: Running) -> None:
    before = len(example.logged())
    result = cli(
        "simulate",
        example.url("/webhooks/kreuzberg"),
        "--event", "all",
        "--event", "document.indexed",
        "--events", "24",
        "--duplicates", "0.5",
        "--concurrent-duplicates", "4",
        "--time-scale", "0.01",
        "--seed", "11",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert table(result.stdout)["total"] == 24
    assert "no event lost: all 24 delivered" in result.stdout
    handled = example.logged()[before:]
    exactly_once(handled, 24)
    assert {line["type"] for line in handled} >= {"crawl.completed", "auto_tune.completed", "document.indexed"}


def test_simulate_with_duplicates_delivers_every_event_exactly_once_to_the_example(example: Running) -> None:
    result = cli(
        "simulate",
        example.url("/webhooks/kreuzberg"),
        "--events", "24",
        "--concurrency", "4",
        "--duplicates", "0.5",
        "--concurrent-duplicates", "6",
        "--time-scale", "0.01",
        "--seed", "7",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    counts = table(result.stdout)
    assert counts["total"] == 24
    assert counts["permanently rejected"] == counts["dead-lettered"] == 0
    assert counts["delivered"] + counts["delivered after retries"] == 24
    assert "6 concurrent duplicates" in result.stdout
    seen = answers(result.stdout)
    assert set(seen) <= {"200", "429"}, seen
    assert sum(seen.values()) > 24 + 6  # the duplicates really went out
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    ids = set(re.findall(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", result.stdout))
    assert not ids  # nothing lost, so no event is listed


def test_simulate_webhook_events_with_duplicates_are_handled_exactly_once(example: Running) -> None:
    before = len(example.logged())
    result = cli(
        "simulate",
        example.url("/webhooks/kreuzberg"),
        "--shape", "webhook",
        "--events", "16",
        "--duplicates", "0.5",
        "--concurrent-duplicates", "4",
        "--time-scale", "0.01",
        "--seed", "11",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    counts = table(result.stdout)
    assert counts["delivered"] + counts["delivered after retries"] == 16
    assert "4 concurrent duplicates" in result.stdout
    assert sum(answers(result.stdout).values()) > 16 + 4  # the duplicates really went out
    exactly_once(example.logged()[before:], 16)


def test_simulate_retries_through_injected_failures_and_each_event_is_handled_once(flaky: Running) -> None:
    events = 20
    result = cli("simulate", flaky.url("/flaky"), "--events", str(events), "--time-scale", "0.002", "--seed", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = table(result.stdout)
    assert counts["delivered after retries"] >= events // 2  # every other event fails its first run
    assert counts["delivered"] + counts["delivered after retries"] == events
    seen = answers(result.stdout)
    assert seen["500"] >= events // 2
    assert seen["503"] >= 1
    exactly_once(flaky.logged(path="flaky"), events)
    assert "no event lost" in result.stdout


def test_simulate_retries_time_outs_and_in_flight_answers_until_acknowledged(flaky: Running) -> None:
    # The slow handler runs 0.4 s; the sender waits 0.2 s, retries 0.05 s later (429: still
    # in flight), then 0.3 s later gets the duplicate acknowledged.
    events = 6
    result = cli("simulate", flaky.url("/slow"), "--events", str(events), "--time-scale", "0.01", "--timeout", "0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    seen = answers(result.stdout)
    assert seen["time-out"] >= events // 2
    assert table(result.stdout)["delivered after retries"] >= events // 2
    exactly_once(flaky.logged(path="slow"), events)


def test_simulate_against_an_endpoint_answering_400_reports_permanently_rejected(flaky: Running) -> None:
    result = cli("simulate", flaky.url("/reject"), "--events", "5", "--time-scale", "0.001")
    assert result.returncode == 1
    counts = table(result.stdout)
    assert counts["permanently rejected"] == 5
    assert counts["delivered"] == counts["delivered after retries"] == counts["dead-lettered"] == 0
    assert answers(result.stdout) == Counter({"400": 5})  # a 4xx is never retried
    assert "LOST 5 of 5 events" in result.stdout


def test_simulate_of_job_documents_delivers_each_once(flaky: Running) -> None:
    result = cli("simulate", flaky.url("/flaky"), "--events", "6", "--shape", "document", "--time-scale", "0.002")
    assert result.returncode == 0, result.stdout + result.stderr
    assert table(result.stdout)["total"] == 6
    documents = [entry for entry in flaky.logged(path="flaky") if entry["attempt"] is None]  # not a small event
    exactly_once(documents, 6)
