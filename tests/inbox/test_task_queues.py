"""Celery and RQ with real worker processes and a real Redis broker: 4 gunicorn workers write
deliveries to the inbox and hand their keys to 2 queue workers; every handler runs exactly once."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kreuzberg_webhooks.inbox import DeliveryState, SQLiteInbox, open_inbox
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.servers import BIN, ROOT, free_port, http_request, run_server, stop

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer
    from tests.redis_server import RedisServer

pytest_plugins = ["tests.postgres_server", "tests.redis_server"]

SECRET = "task-queue-secret-0123456789abcdef0123456"
EVENTS, COPIES, SENDERS = 1000, 3, 16


def queue_env(tmp_path: Path, redis_url: str, kind: str) -> dict[str, str]:
    return {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_INBOX_URL": f"sqlite:///{tmp_path}/inbox.sqlite3",
        "KREUZBERG_STORE_URL": f"sqlite:///{tmp_path}/store.sqlite3",
        "KREUZBERG_EVENTS_LOG": str(tmp_path / "events.log"),
        "KREUZBERG_TASK_QUEUE": kind,
        "KREUZBERG_BROKER_URL": redis_url,
        "KREUZBERG_QUEUE_NAME": f"kw-{kind}-{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": str(ROOT),
    }


@contextlib.contextmanager
def queue_workers(argvs: list[list[str]], env: dict[str, str], logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    full_env = {**os.environ, **env}
    procs = []
    try:
        for index, argv in enumerate(argvs):
            with (logs / f"worker-{index}.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        argv, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        yield procs
    finally:
        for proc in procs:
            stop(proc, timeout=20)


def celery_workers(count: int) -> list[list[str]]:
    return [
        [
            str(BIN / "celery"), "-A", "tests.inbox.queue_app:celery_app", "worker",
            "--concurrency", "1", "--pool", "prefork", "-n", f"kw{index}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
        ]
        for index in range(count)
    ]  # fmt: skip


def rq_workers(count: int, env: dict[str, str]) -> list[list[str]]:
    return [
        [
            str(BIN / "rq"), "worker", "--url", env["KREUZBERG_BROKER_URL"], "--with-scheduler",
            "--name", f"kw{index}-{uuid.uuid4().hex[:6]}", "--logging_level", "WARNING", env["KREUZBERG_QUEUE_NAME"],
        ]
        for index in range(count)
    ]  # fmt: skip


def dramatiq_workers(count: int, env: dict[str, str]) -> list[list[str]]:
    return [
        [
            str(BIN / "dramatiq"), "tests.inbox.queue_app", "--processes", "1", "--threads", "2",
            "--queues", env["KREUZBERG_QUEUE_NAME"],
        ]
        for _ in range(count)
    ]  # fmt: skip


def queue_workers_for(kind: str, count: int, env: dict[str, str]) -> list[list[str]]:
    if kind == "celery":
        return celery_workers(count)
    if kind == "rq":
        return rq_workers(count, env)
    return dramatiq_workers(count, env)


def run_exactly_once(tmp_path: Path, redis_url: str, kind: str, **urls: str) -> None:
    env = {**queue_env(tmp_path, redis_url, kind), **urls}
    deliveries = [signed_delivery(SECRET, job_event_payload()) for _ in range(EVENTS)]
    requests = [d for d in deliveries for _ in range(COPIES)]
    random.Random(12).shuffle(requests)
    port = free_port()
    argv = [
        str(BIN / "gunicorn"), "tests.inbox.queue_app:app", "--workers", "4",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
    ]  # fmt: skip
    workers = queue_workers_for(kind, 2, env)
    with (
        run_server(argv, port=port, env=env, log=tmp_path / "gunicorn.log") as server,
        queue_workers(workers, env, tmp_path),
    ):

        def post(request: tuple[bytes, dict[str, str]]) -> int:
            return http_request(server.url + "/webhooks/kreuzberg", body=request[0], headers=request[1]).status

        with ThreadPoolExecutor(SENDERS) as pool:
            statuses = Counter(pool.map(post, requests))
        inbox: Any = open_inbox(env["KREUZBERG_INBOX_URL"])
        deadline = time.monotonic() + 600
        while inbox.counts()[DeliveryState.DONE] < EVENTS:
            assert time.monotonic() < deadline, inbox.counts()
            time.sleep(0.2)
    assert statuses == {202: EVENTS, 200: EVENTS * (COPIES - 1)}, statuses
    runs = Counter(line.split()[0] for line in (tmp_path / "events.log").read_text().splitlines())
    assert len(runs) == EVENTS
    assert set(runs.values()) == {1}
    worker_pids = {line.split()[1] for line in (tmp_path / "events.log").read_text().splitlines()}
    assert len(worker_pids) >= 2  # both queue workers took a share
    assert inbox.counts() == {
        DeliveryState.QUEUED: 0,
        DeliveryState.RUNNING: 0,
        DeliveryState.DONE: EVENTS,
        DeliveryState.DEAD: 0,
    }


@pytest.mark.slow
def test_celery_runs_every_handler_exactly_once(tmp_path: Path, redis_server: RedisServer) -> None:
    run_exactly_once(tmp_path, redis_server.url, "celery")


@pytest.mark.slow
def test_rq_runs_every_handler_exactly_once(tmp_path: Path, redis_server: RedisServer) -> None:
    run_exactly_once(tmp_path, redis_server.url, "rq")


@pytest.mark.slow
def test_dramatiq_runs_every_handler_exactly_once(tmp_path: Path, redis_server: RedisServer) -> None:
    run_exactly_once(tmp_path, redis_server.url, "dramatiq")


@pytest.mark.slow
def test_celery_over_postgresql_runs_every_handler_exactly_once(
    tmp_path: Path, redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    from tests.postgres_server import new_database  # a plugin module: imported once registered

    # The multi-machine shape: inbox and replay store in PostgreSQL, Redis as the broker only.
    database = new_database(postgres_server.url)
    run_exactly_once(tmp_path, redis_server.url, "celery", KREUZBERG_INBOX_URL=database, KREUZBERG_STORE_URL=database)


@pytest.mark.slow
def test_celery_over_redis_runs_every_handler_exactly_once(tmp_path: Path, redis_server: RedisServer) -> None:
    prefix = f"?key_prefix=kw-{uuid.uuid4().hex[:8]}:"
    run_exactly_once(
        tmp_path,
        redis_server.url,
        "celery",
        KREUZBERG_INBOX_URL=redis_server.url + prefix,
        KREUZBERG_STORE_URL=redis_server.url + prefix,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["celery", "rq", "dramatiq"])
def test_failed_deliveries_are_retried_by_the_queue_and_run_once_after_recovery(
    tmp_path: Path, redis_server: RedisServer, kind: str
) -> None:
    events = 30
    env = {**queue_env(tmp_path, redis_server.url, kind), "KREUZBERG_FAULT_FILE": str(tmp_path / "fault")}
    (tmp_path / "fault").touch()
    deliveries = [signed_delivery(SECRET, job_event_payload()) for _ in range(events)]
    port = free_port()
    argv = [
        str(BIN / "gunicorn"), "tests.inbox.queue_app:app", "--workers", "2",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
    ]  # fmt: skip
    workers = queue_workers_for(kind, 2, env)
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    with (
        run_server(argv, port=port, env=env, log=tmp_path / "gunicorn.log") as server,
        queue_workers(workers, env, tmp_path),
    ):
        for body, headers in deliveries:
            assert http_request(server.url + "/webhooks/kreuzberg", body=body, headers=headers).status == 202
        deadline = time.monotonic() + 300
        # Each delivery failed and was sent again for its next attempt, at least twice.
        while not all(r.attempts >= 2 for r in inbox.list(limit=1000)):
            assert time.monotonic() < deadline, inbox.counts()
            time.sleep(0.2)
        (tmp_path / "fault").unlink()
        while inbox.counts()[DeliveryState.DONE] < events:
            assert time.monotonic() < deadline, inbox.counts()
            time.sleep(0.2)
    runs = Counter(line.split()[0] for line in (tmp_path / "events.log").read_text().splitlines())
    assert len(runs) == events
    assert set(runs.values()) == {1}
    assert all(r.last_error is None for r in inbox.list(limit=1000))  # done: the drill's errors are history


@pytest.mark.slow
def test_a_celery_worker_killed_mid_handler_gives_the_delivery_back_after_the_lease(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    block, started = tmp_path / "block", tmp_path / "events.log.started"
    env = {
        **queue_env(tmp_path, redis_server.url, "celery"),
        "KREUZBERG_BLOCK_FILE": str(block),
        "KREUZBERG_TEST_LEASE": "3",
    }
    block.touch()
    body, headers = signed_delivery(SECRET, job_event_payload())
    port = free_port()
    argv = [
        str(BIN / "gunicorn"), "tests.inbox.queue_app:app", "--workers", "1",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
    ]  # fmt: skip
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    with (
        run_server(argv, port=port, env=env, log=tmp_path / "gunicorn.log") as server,
        queue_workers(celery_workers(2), env, tmp_path),
    ):
        assert http_request(server.url + "/webhooks/kreuzberg", body=body, headers=headers).status == 202
        deadline = time.monotonic() + 120
        while not (started.exists() and started.read_text().strip()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        victim = int(started.read_text().split()[1])
        os.kill(victim, signal.SIGKILL)  # the Celery pool process, in the middle of the handler
        block.unlink()
        while inbox.counts()[DeliveryState.DONE] < 1:
            assert time.monotonic() < deadline, inbox.counts()
            time.sleep(0.1)
    finished = (tmp_path / "events.log").read_text().splitlines()
    assert len(finished) == 1
    assert finished[0].split()[1] != str(victim)
    record = inbox.list()[0]
    assert (record.state, record.attempts) == (DeliveryState.DONE, 2)
