"""Reconcile passes as Celery and RQ tasks, run by real worker processes on a real Redis broker."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

from kreuzberg_webhooks.cloud import SQLiteTracker, TrackedJob
from kreuzberg_webhooks.emulator import Emulator
from tests.cloud.support import worker_processes
from tests.servers import BIN, ROOT

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

pytest_plugins = ["tests.redis_server"]
pytestmark = pytest.mark.slow

KEY = "tasks-test-key-0c1d"


@pytest.fixture
def setup(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[dict[str, str], list[str]]]:
    with Emulator(KEY, job_delay=0) as cloud:
        ids = cloud.submit([(f"{n}.txt", b"x" * n) for n in range(12)])
        now = time.time()
        SQLiteTracker(tmp_path / "tracker.sqlite3").track([TrackedJob(j, "", now, now) for j in ids])
        env = {
            "KREUZBERG_API_URL": cloud.base_url,
            "KREUZBERG_API_KEY": KEY,
            "KREUZBERG_TEST_DIR": str(tmp_path),
            "KREUZBERG_BROKER_URL": redis_server.url,
            "PYTHONPATH": str(ROOT),
        }
        yield env, ids


def runs(tmp_path: Path) -> Counter[str]:
    path = tmp_path / "events.log"
    return Counter(line.split()[0] for line in path.read_text().splitlines()) if path.exists() else Counter()


def test_a_celery_worker_runs_the_reconcile_task(setup: tuple[dict[str, str], list[str]], tmp_path: Path) -> None:
    env, ids = setup
    os.environ.update(env)  # the test process imports the same app to send the task
    try:
        from tests.cloud import tasks_app

        worker = [
            str(BIN / "celery"), "-A", "tests.cloud.tasks_app:celery_app", "worker", "--concurrency", "1",
            "--pool", "prefork", "-n", f"kwr-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "WARNING",
        ]  # fmt: skip
        with worker_processes([worker], env, tmp_path):
            first: dict[str, Any] = tasks_app.reconcile.delay().get(timeout=120)
            second: dict[str, Any] = tasks_app.reconcile.delay().get(timeout=120)
    finally:
        for name in env:
            os.environ.pop(name, None)
    assert first["checked"] == 12
    assert first["processed"] == 12
    assert second["checked"] == 0
    counts = runs(tmp_path)
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}


def test_an_rq_worker_runs_the_reconcile_job(setup: tuple[dict[str, str], list[str]], tmp_path: Path) -> None:
    from rq import Queue

    env, ids = setup
    queue_name = f"kwr-{uuid.uuid4().hex[:8]}"
    connection = redis.Redis.from_url(env["KREUZBERG_BROKER_URL"])
    queue = Queue(queue_name, connection=connection)
    worker = [str(BIN / "rq"), "worker", "--url", env["KREUZBERG_BROKER_URL"], "--logging_level", "WARNING", queue_name]
    with worker_processes([worker], env, tmp_path):
        job = queue.enqueue("kreuzberg_webhooks.cloud.tasks.rq_reconcile", "tests.cloud.tasks_app:reconciler")
        deadline = time.monotonic() + 120
        while job.get_status(refresh=True) not in ("finished", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert job.get_status() == "finished", job.exc_info
    result = job.return_value()
    assert result["processed"] == 12
    counts = runs(tmp_path)
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}
