"""A worker process SIGKILLed in the middle of a handler: its delivery comes back after the
lease and is processed once by another worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from kreuzberg_webhooks.inbox import DeliveryState, SQLiteInbox
from tests.inbox.support import SECRET, entry_for
from tests.servers import ROOT

LEASE = 2.0

APP = f'''
import os, time
from pathlib import Path
from kreuzberg_webhooks import Receiver
from kreuzberg_webhooks.stores import SQLiteStore

receiver = Receiver("{SECRET}", store=SQLiteStore(os.environ["STORE_PATH"]), lease={LEASE})

@receiver.on()
def handle(event):
    log = Path(os.environ["EVENTS_LOG"])
    with log.open("a") as out:
        out.write(f"started {{event.job_id}} {{os.getpid()}}\\n")
    while Path(os.environ["BLOCK_FILE"]).exists():  # the handler is stuck until the file goes
        time.sleep(0.01)
    with log.open("a") as out:
        out.write(f"finished {{event.job_id}} {{os.getpid()}}\\n")
'''


def log_lines(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "kreuzberg_webhooks", "inbox", "worker", "--receiver", "kill_app:receiver",
        "--lease", str(LEASE), "--poll-interval", "0.05",
    ]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_worker_killed_mid_handler_gives_the_delivery_back_after_the_lease(tmp_path: Path) -> None:
    (tmp_path / "kill_app.py").write_text(APP)
    block, events_log = tmp_path / "block", tmp_path / "events.log"
    block.touch()
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    entry = entry_for(received_at=time.time())
    inbox.enqueue(entry)
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "STORE_PATH": str(tmp_path / "store.sqlite3"),
        "EVENTS_LOG": str(events_log),
        "BLOCK_FILE": str(block),
        "KREUZBERG_INBOX_URL": f"sqlite:///{inbox.path}",
    }
    first = start_worker(env)
    second = None
    try:
        deadline = time.monotonic() + 60
        while not any(line[0] == "started" for line in log_lines(events_log)):
            assert first.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)  # in the middle of the handler
        first.wait(10)
        block.unlink()
        record = inbox.get(entry.key)
        assert record is not None
        assert record.state is DeliveryState.RUNNING  # still leased by the dead worker
        second = start_worker(env)
        deadline = time.monotonic() + 60
        while inbox.counts()[DeliveryState.DONE] < 1:
            assert second.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    lines = log_lines(events_log)
    assert Counter(line[0] for line in lines) == {"started": 2, "finished": 1}
    assert {line[1] for line in lines} == {entry.job_id}
    finished_by = next(line[2] for line in lines if line[0] == "finished")
    assert finished_by == str(second.pid if second else 0)
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.DONE, 2)
