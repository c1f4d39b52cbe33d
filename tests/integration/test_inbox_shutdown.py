"""A graceful restart (SIGTERM to uvicorn) lets the running inbox handler finish and settles it; the
deliveries claimed but not started are given back, so nothing runs twice after the restart."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from kreuzberg_webhooks.inbox import DeliveryState, SQLiteInbox
from tests.inbox.support import entry_for
from tests.servers import free_port, run_server, uvicorn_argv


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigterm_to_uvicorn_lets_the_running_handler_finish_and_settles_it(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    now = time.time()
    entries = [entry_for(received_at=now), entry_for(received_at=now + 1)]
    for entry in entries:
        inbox.enqueue(entry)
    log = tmp_path / "events.log"
    port = free_port()
    argv = uvicorn_argv("tests.integration.inbox_shutdown_app:app", port)
    with run_server(argv, port=port, env={"SHUTDOWN_DIR": str(tmp_path)}, log=tmp_path / "uvicorn.log") as server:
        wait_for(lambda: len(lines(log)) == 1, "the first handler to start")
        os.kill(server.proc.pid, signal.SIGTERM)  # what a deploy does
        wait_for(lambda: "Waiting for application shutdown" in server.output(), "uvicorn to begin its shutdown")
        (tmp_path / "go").touch()  # the handler finishes during the shutdown
        # uvicorn ends a graceful shutdown by raising the signal again: -SIGTERM, or 0.
        assert server.proc.wait(60) in (0, -signal.SIGTERM), server.output()
    started = {line.split()[1] for line in lines(log) if line.startswith("start")}
    ended = {line.split()[1] for line in lines(log) if line.startswith("end")}
    assert len(lines(log)) == 2, lines(log)
    assert started == ended, lines(log)
    (ran,) = started
    (other,) = {entry.job_id for entry in entries} - started
    states = {entry.job_id: inbox.get(entry.key) for entry in entries}
    assert (states[ran].state, states[ran].attempts) == (DeliveryState.DONE, 1)  # type: ignore[union-attr]
    # Claimed in the same batch, never started: back in the queue, the attempt not counted.
    assert (states[other].state, states[other].attempts) == (DeliveryState.QUEUED, 0)  # type: ignore[union-attr]
