"""Under ``gunicorn --preload`` (the Flask example's own command) only the forked worker processes
run inbox handlers: the master, which imported the application and its worker, never claims."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kreuzberg_webhooks.inbox import DeliveryState, SQLiteInbox
from tests.inbox.support import entry_for
from tests.servers import ROOT, free_port, gunicorn_argv, run_server

EVENTS = 20


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_only_the_forked_workers_run_inbox_handlers_under_gunicorn_preload(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    entries = [entry_for(received_at=time.time()) for _ in range(EVENTS)]
    for entry in entries:  # already due when the master imports the application
        inbox.enqueue(entry)
    port = free_port()
    argv = gunicorn_argv("tests.integration.inbox_preload_app:app", port, pythonpath=ROOT)
    log = tmp_path / "events.log"
    with run_server(argv, port=port, env={"PRELOAD_DIR": str(tmp_path)}, log=tmp_path / "gunicorn.log") as server:
        wait_for(lambda: inbox.counts()[DeliveryState.DONE] == EVENTS, "every delivery done")
        master = server.proc.pid
    runs = [line.split() for line in log.read_text().splitlines()]
    assert Counter(job for _, job in runs) == Counter({entry.job_id: 1 for entry in entries})
    pids = {int(pid) for pid, _ in runs}
    assert master not in pids, "the gunicorn master ran inbox handlers"
