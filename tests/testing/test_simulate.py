"""The sender simulator behind ``kreuzberg-webhooks simulate``: the sender's rules, the retry schedule,
duplicates, both signature formats, the report and the progress bar.

Driven with a scripted transport and a recording ``wait``;
``tests/integration/test_cli_against_server.py`` runs it against real servers.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import Verifier
from kreuzberg_webhooks.testing.simulate import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    Answer,
    EventOutcome,
    Progress,
    Simulation,
    Verdict,
    classify,
    redact_url,
)
from tests.servers import BIN, free_port

SECRET = "cli-unit-secret-do-not-print-0123456789abcdef"


# -- the simulator's sender rules ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (400, Verdict.PERMANENT),
        (401, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (409, Verdict.PERMANENT),
        (413, Verdict.PERMANENT),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (None, Verdict.RETRY),
        (302, Verdict.RETRY),
    ],
    ids=lambda value: str(value) if not isinstance(value, Verdict) else value.value,
)
def test_sender_rule_for_each_answer(status: int | None, verdict: Verdict) -> None:
    assert classify(status) is verdict


class Scripted:
    """A transport answering from a script per request number; records what was sent."""

    def __init__(self, *statuses: int | None) -> None:
        self.statuses = list(statuses)
        self.sent: list[tuple[bytes, dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        with self.lock:
            self.sent.append((body, headers))
            status = self.statuses[min(len(self.sent), len(self.statuses)) - 1]
        return Answer(status, error="time-out" if status is None else None)


def recording_wait() -> tuple[list[float], Any]:
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    return waits, wait


def simulation(transport: Any, wait: Any = None, **options: Any) -> Simulation:
    options.setdefault("events", 1)
    options.setdefault("concurrency", 1)
    return Simulation("http://127.0.0.1:9/hooks", SECRET, transport=transport, wait=wait, **options)


def test_retries_follow_the_documented_schedule_then_dead_letter() -> None:
    transport, (waits, wait) = Scripted(503), recording_wait()
    report = simulation(transport, wait, time_scale=0.5).run()
    assert waits == [delay * 0.5 for delay in RETRY_DELAYS] == [2.5, 15.0, 150.0, 150.0]
    assert len(transport.sent) == MAX_ATTEMPTS == 5
    assert report.results[0].outcome is EventOutcome.DEAD_LETTERED
    assert report.lost == report.results


def test_each_attempt_is_re_signed_with_the_next_attempt_count_same_id_and_timestamp() -> None:
    transport, (_, wait) = Scripted(500, 429, None, 200), recording_wait()
    report = simulation(transport, wait).run()
    payloads = [json.loads(body) for body, _ in transport.sent]
    assert [p["attempt_count"] for p in payloads] == [1, 2, 3, 4]
    assert len({p["event_id"] for p in payloads}) == len({p["timestamp"] for p in payloads}) == 1
    signatures = [headers["X-Webhook-Signature"] for _, headers in transport.sent]
    assert len(set(signatures)) == 4
    verifier = Verifier(SECRET)
    for body, headers in transport.sent:
        assert verifier.verify(body, headers).event_id == payloads[0]["event_id"]
        assert headers["X-Idempotency-Key"] == payloads[0]["event_id"]
    assert report.results[0].outcome is EventOutcome.DELIVERED_AFTER_RETRIES


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_4xx_other_than_429_stops_at_once_and_is_permanent(status: int) -> None:
    transport, (waits, wait) = Scripted(status), recording_wait()
    report = simulation(transport, wait).run()
    assert len(transport.sent) == 1
    assert waits == []
    assert report.results[0].outcome is EventOutcome.PERMANENTLY_REJECTED


def test_first_time_2xx_is_delivered_without_retries() -> None:
    transport = Scripted(200)
    report = simulation(transport, events=5, concurrency=3).run()
    assert len(transport.sent) == 5
    assert report.count(EventOutcome.DELIVERED) == 5
    assert "no event lost: all 5 delivered" in report.render()


@pytest.mark.parametrize(("scale", "timeout"), [(1.0, 30.0), (0.5, 15.0), (0.01, 1.0), (0.0001, 1.0)])
def test_time_out_is_the_senders_30_s_scaled_with_a_floor(scale: float, timeout: float) -> None:
    assert simulation(Scripted(200), time_scale=scale).timeout == timeout
    assert simulation(Scripted(200), time_scale=scale, timeout=0.2).timeout == 0.2


def test_duplicates_redeliver_a_delivered_event_as_its_next_attempt() -> None:
    transport = Scripted(200)
    report = simulation(transport, events=4, duplicates=1.0).run()
    assert len(transport.sent) == 8
    per_event: dict[str, list[int]] = {}
    for body, _ in transport.sent:
        payload = json.loads(body)
        per_event.setdefault(payload["event_id"], []).append(payload["attempt_count"])
    assert sorted(map(sorted, per_event.values())) == [[1, 2]] * 4
    assert all(len(result.redeliveries) == 1 for result in report.results)
    assert simulation(Scripted(200), events=4, duplicates=0.0).run().results[0].redeliveries == []


def test_concurrent_duplicates_send_two_first_attempts_at_the_same_moment() -> None:
    # Every event is a concurrent pair: each first attempt waits for its twin at a barrier,
    # which only opens if both requests are in flight together.
    barriers: dict[str, threading.Barrier] = {}
    lock = threading.Lock()
    sent: list[str] = []

    def transport(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        event_id = json.loads(body)["event_id"]
        with lock:
            barrier = barriers.setdefault(event_id, threading.Barrier(2))
            sent.append(event_id)
        barrier.wait(timeout=10)
        return Answer(200)

    report = simulation(transport, events=3, concurrency=2, concurrent_duplicates=3).run()
    assert len(sent) == 6
    assert all(len(result.chains) == 2 for result in report.results)
    assert report.count(EventOutcome.DELIVERED) == 3


def test_concurrent_duplicates_pick_exactly_k_events() -> None:
    transport = Scripted(200)
    report = simulation(transport, events=10, concurrency=4, concurrent_duplicates=4, seed=3).run()
    assert sum(len(result.chains) == 2 for result in report.results) == 4
    assert len(transport.sent) == 14


def test_a_twin_rejected_for_good_does_not_lose_an_event_its_pair_delivered() -> None:
    transport = Scripted(409, 200)
    report = simulation(transport, concurrent_duplicates=1).run()
    assert report.results[0].outcome is EventOutcome.DELIVERED


def test_job_documents_are_resent_identically() -> None:
    transport, (_, wait) = Scripted(503, 503, 200), recording_wait()
    report = simulation(transport, wait, shape="document").run()
    bodies = {body for body, _ in transport.sent}
    assert len(bodies) == 1
    assert "X-Idempotency-Key" not in transport.sent[0][1]
    assert report.results[0].outcome is EventOutcome.DELIVERED_AFTER_RETRIES


def test_report_lists_lost_events_and_the_answers(tmp_path: Path) -> None:
    transport = Scripted(400)
    report = simulation(transport, events=2, concurrency=1).run()
    text = report.render()
    assert "  permanently rejected            2" in text
    assert "answers: 400 x2" in text
    for result in report.results:
        assert f"{result.key} (400)" in text


def test_simulation_repr_and_report_never_show_the_secret() -> None:
    sim = simulation(Scripted(500, 200), recording_wait()[1])
    assert SECRET not in repr(sim)
    assert SECRET not in sim.run().render()


def test_cancel_stops_further_attempts() -> None:
    transport = Scripted(503)
    sim = simulation(transport, time_scale=100)
    sim.cancel()
    assert sim.run().results[0].chains == [[]]
    assert transport.sent == []


# -- the progress bar ---------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_on_a_terminal_and_erased_at_the_end() -> None:
    terminal = FakeTerminal()
    simulation(Scripted(200), events=2).run(progress=terminal)
    output = terminal.getvalue()
    assert "\r[" + "-" * 30 + "] 0/2 events" in output
    assert "\r[" + "#" * 30 + "] 2/2 events" in output
    assert output.endswith("\r\x1b[K")


def test_progress_bar_counts_lost_events() -> None:
    terminal = FakeTerminal()
    simulation(Scripted(400), events=2).run(progress=terminal)
    assert "2/2 events, 2 lost" in terminal.getvalue()


def test_no_progress_bar_when_not_a_terminal() -> None:
    pipe = io.StringIO()
    simulation(Scripted(200), events=3).run(progress=pipe)
    assert pipe.getvalue() == ""
    assert not Progress(pipe, 3).active


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000/hooks", "http://127.0.0.1:8000/hooks"),
        ("https://user:s3cret@example.com/hooks?x=1", "https://user:***@example.com/hooks?x=1"),
        ("https://:s3cret@example.com/", "https://***@example.com/"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_progress_bar_goes_to_stderr_on_a_real_terminal_and_not_to_stdout() -> None:
    import os
    import pty

    master, slave = pty.openpty()
    env = {"KREUZBERG_WEBHOOK_SECRET": SECRET, "PATH": str(BIN)}
    argv = [str(BIN / "kreuzberg-webhooks"), "simulate", f"http://127.0.0.1:{free_port()}/", "--events", "2"]
    proc = subprocess.Popen([*argv, "--time-scale", "0.0001"], stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    terminal = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed and drained
            break
        if not chunk:
            break
        terminal += chunk
    os.close(master)
    assert proc.returncode == 1
    assert b"2/2 events, 2 lost" in terminal
    assert terminal.endswith(b"\r\x1b[K")
    assert "[" not in out.split("\n", 1)[0]
    assert "dead-lettered                   2" in out


def clocked_wait() -> tuple[Any, Any]:
    """A wait that moves a fake clock by the backoff instead of sleeping."""
    now = [float(int(time.time()))]  # the payloads are stamped with the real time

    def wait(seconds: float) -> bool:
        now[0] += seconds
        return False

    return wait, lambda: now[0]


def test_simulated_webhook_events_are_re_signed_with_a_fresh_t_each_attempt() -> None:
    transport = Scripted(503, 503, 503, 200)
    wait, clock = clocked_wait()
    report = simulation(transport, wait, shape="webhook", status="failed", clock=clock).run()
    assert report.results[0].outcome is EventOutcome.DELIVERED_AFTER_RETRIES
    bodies = {body for body, _ in transport.sent}
    assert len(bodies) == 1  # the same event, byte for byte: no attempt_count in this format
    ts = [int(re.match(r"t=(\d+),", headers["X-Webhook-Signature"]).group(1)) for _, headers in transport.sent]  # type: ignore[union-attr]
    assert [t - ts[0] for t in ts] == [0, 5, 35, 335]  # the backoff, each attempt signed when it leaves
    payload = json.loads(bodies.pop())
    assert payload["event"] == "job.failed"
    for (body, headers), t in zip(transport.sent, ts, strict=True):
        assert "X-Idempotency-Key" not in headers
        event = Verifier(SECRET, clock=lambda t=t: t).verify(body, headers)
        assert event.event_id == payload["event_id"]


def test_simulate_can_sign_the_small_event_t_v1() -> None:
    transport = Scripted(200)
    simulation(transport, scheme="t-v1").run()
    body, headers = transport.sent[0]
    assert headers["X-Webhook-Signature"].startswith("t=")
    assert "attempt_count" in json.loads(body)
    assert Verifier(SECRET).verify(body, headers).type == "job." + json.loads(body)["status"].replace(
        "partial_success", "completed"
    )


def test_simulation_refuses_an_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown signature scheme"):
        simulation(Scripted(200), scheme="sha1")


@pytest.mark.parametrize(
    "options",
    [{"timeout": 1e300}, {"timeout": float("nan")}, {"timeout": 0.0}, {"time_scale": 1e300}],
    ids=lambda options: " ".join(f"{k}={v}" for k, v in options.items()),
)
def test_simulation_refuses_a_time_out_or_backoff_no_timer_can_hold(options: dict[str, float]) -> None:
    # Refused when given, not as an OverflowError from the socket in the middle of a run.
    with pytest.raises(ValueError, match=r"time-out|time scale"):
        simulation(Scripted(200), **options)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:hunter2@[::1/hooks", "http://user:***@[::1/hooks"),
        ("http://:hunter2@[zz::1]/", "http://:***@[zz::1]/"),
        ("http://[::1/hooks?q=a:b@c", "http://[::1/hooks?q=a:b@c"),
    ],
)
def test_redact_url_hides_the_password_of_a_url_that_does_not_parse(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_every_family_can_be_simulated_each_event_one_of_them_signed_t_v1() -> None:
    transport = Scripted(200)
    events = ("crawl.completed", "auto_tune.failed", "job.completed", "document.indexed")
    report = simulation(transport, events=60, concurrency=4, seed=3, event_types=events).run()
    assert report.count(EventOutcome.DELIVERED) == 60
    payloads = [json.loads(body) for body, _ in transport.sent]
    assert {payload["event"] for payload in payloads} == set(events)
    crawl_statuses = {payload["status"] for payload in payloads if payload["event"] == "crawl.completed"}
    assert crawl_statuses <= {"completed", "partial_success"}
    for _, headers in transport.sent:
        assert headers["X-Webhook-Signature"].startswith("t=")
        assert "X-Idempotency-Key" not in headers


def test_a_status_an_event_cannot_carry_is_refused_when_given() -> None:
    with pytest.raises(ValueError, match=r"crawl\.failed does not carry the status 'completed'"):
        simulation(Scripted(200), event_types=["crawl.failed"], status="completed")
    with pytest.raises(ValueError, match="event_types is empty"):
        simulation(Scripted(200), event_types=[])
