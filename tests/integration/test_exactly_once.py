"""Exactly-once across processes: an example under a real server with four workers sharing one Redis.

20 distinct events x 10 copies each, fired concurrently at four worker
processes with ``KREUZBERG_REDIS_URL`` set: ``examples/starlette_app.py`` under
uvicorn (the async Redis store, endpoint mode) and ``examples/flask_app.py``
under gunicorn (the sync Redis store, the view decorator's guard mode). Every
event's handler runs exactly once, every answer is 2xx or 429, and a final
retry of each event that got a 429 is acknowledged.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.redis_harness import App, delivery, event_id, serve
from tests.servers import BIN, ROOT

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

pytest_plugins = ["tests.redis_server"]

EVENTS, COPIES, CONCURRENCY, WORKERS = 20, 10, 20, 4


def worker_pids(server_pid: int) -> list[int]:
    """The live child processes of the server (uvicorn's workers), from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server_pid and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return children


def wait_for_workers(server_pid: int, timeout: float = 30.0) -> int:
    """Poll until the server has forked all its workers (gunicorn starts them one after
    another, after the first one already answers); return how many it has."""
    deadline = time.monotonic() + timeout
    while (count := len(worker_pids(server_pid))) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


SERVERS = {
    "starlette-uvicorn": [
        str(BIN / "uvicorn"), "--app-dir", str(ROOT / "examples"), "starlette_app:app",
        "--host", "127.0.0.1", "--port", "{port}", "--workers", str(WORKERS), "--log-level", "warning",
    ],
    "flask-gunicorn": [
        str(BIN / "gunicorn"), "--pythonpath", str(ROOT / "examples"), "flask_app:app",
        "--bind", "127.0.0.1:{port}", "--workers", str(WORKERS), "--threads", "2", "--log-level", "warning",
    ],
}  # fmt: skip


@pytest.mark.parametrize("server", list(SERVERS))
def test_four_workers_sharing_redis_run_each_event_exactly_once(
    server: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    argv = SERVERS[server]
    # A key prefix of this test's own: the shared server holds other tests' keys.
    url = f"{redis_server.url}?key_prefix=exactly-once-{tmp_path.name}:"
    deliveries = [delivery() for _ in range(EVENTS)]
    # Copies of one event go out next to each other, so they race for the same key on different workers.
    requests = [d for d in deliveries for _ in range(COPIES)]
    random.Random(4).shuffle(requests)  # a fixed shuffle: reproducible, still interleaved

    with serve(tmp_path, url, argv=argv) as app:
        warm_up(app)
        assert wait_for_workers(app.server.proc.pid) >= WORKERS

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            replies = list(pool.map(lambda d: (event_id(d[0]), app.post(*d).status), requests))

        statuses = Counter(status for _, status in replies)
        assert set(statuses) <= {200, 429}, statuses
        handled = Counter(line["event_id"] for line in app.log())
        assert handled == Counter({event_id(body): 1 for body, _ in deliveries}), "some handler ran twice or never"

        refused = {event for event, status in replies if status == 429}
        for body, headers in deliveries:
            if event_id(body) in refused:
                retry = app.post(body, headers)
                assert (retry.status, json.loads(retry.body)) == (200, {"status": "duplicate"})
        assert Counter(line["event_id"] for line in app.log()) == handled  # the retries ran nothing
        print(f"answers: {dict(statuses)}; events answered 429 at least once: {len(refused)}")


def warm_up(app: App) -> None:
    """One delivery through the server, so every answer measured below comes from a ready worker."""
    body, headers = delivery()
    assert app.post(body, headers).status == 200
    app.events_log.unlink()
