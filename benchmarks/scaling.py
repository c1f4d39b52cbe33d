"""``python -m benchmarks.scaling``: acknowledgements/s and p99 against the number of uvicorn workers.

The inbox benchmark's app (:mod:`benchmarks.apps.inbox_modes`: the Starlette
middleware in inbox mode, each worker process with its embedded inbox worker
running the handlers) under ``uvicorn --workers N`` for N = 1, 2, 4, with the
SQLite inbox (``synchronous=FULL``), the Redis inbox (a real redis-server with
``appendonly yes``, its default fsync every second) and the PostgreSQL inbox (a
real cluster, ``fsync`` and ``synchronous_commit`` on). One backend at a time,
its three servers side by side, measured in rotating rounds (wrk -t1 -c16
``--latency``); after each round the server's inbox is drained (every delivery
handled) before the next round starts, so no server's handlers run during
another's round. Medians of rounds. Each server has an inbox of its own (a file,
a Redis database, a PostgreSQL database); the replay store is SQLite in each.
``--against DIR`` (repeatable) serves every point from that checkout too, in the
same rounds (``sqlite@DIR``): a before/after from one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .inbox import drain, wrk_latency
from .load import BIN, ROOT, Feed, _path, write_feed
from .servers import free_port, serve, stop

BACKENDS = ("sqlite", "redis", "postgres")
WORKERS = (1, 2, 4)


@dataclass(frozen=True)
class Point:
    backend: str
    workers: int
    rate: float  # acknowledgements per second, median of rounds
    p50: float  # milliseconds, median of rounds
    p99: float
    #: how long the handlers took to catch up after a round, in seconds (median)
    drain: float


def ensure_postgres() -> None:
    """Install PostgreSQL with apt-get (as root) when its binaries are missing, as scripts/test does."""
    import glob

    if glob.glob("/usr/lib/postgresql/*/bin/postgres") or shutil.which("postgres"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get") is not None:
        print("installing postgresql with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env)
    else:
        raise SystemExit("PostgreSQL is missing: install it (apt-get install postgresql) and run again")


@contextlib.contextmanager
def durable_redis(directory: Path) -> Iterator[int]:
    """A throw-away redis-server on a free loopback port, persisting as an inbox needs it
    (``appendonly yes``, fsync every second), stopped on exit."""
    import redis

    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    argv = [
        executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
    ]  # fmt: skip
    with (directory / "redis.log").open("wb") as log:
        proc = subprocess.Popen(argv, cwd=directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=port, socket_timeout=1).ping():
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(directory / 'redis.log').read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        stop(proc)


def _inbox_urls(backend: str, count: int, directory: Path, stack: contextlib.ExitStack) -> list[str]:
    """One inbox URL per server: its own file, Redis database or PostgreSQL database."""
    if backend == "sqlite":
        return [f"sqlite:///{directory / f'inbox-{index}.sqlite3'}" for index in range(count)]
    if backend == "redis":
        port = stack.enter_context(durable_redis(directory))
        return [f"redis://127.0.0.1:{port}/{index}" for index in range(count)]
    from tests.postgres_server import PostgresServer, new_database  # the tests' initdb helper (dev group)

    server = stack.enter_context(PostgresServer().running())
    return [new_database(server.url) for _ in range(count)]


def _measure_backend(
    backend: str,
    workers: Sequence[int],
    feed: Feed,
    directory: Path,
    *,
    rounds: int,
    duration: float,
    warmup: float,
    against: Sequence[Path] = (),
) -> list[Point]:
    sides = [(backend, ROOT)] + [(f"{backend}@{root.name}", root) for root in against]
    servers = [(label, root, count) for label, root in sides for count in workers]
    with contextlib.ExitStack() as stack:
        urls = _inbox_urls(backend, len(servers), directory, stack)
        ports = [free_port() for _ in servers]
        feeds = [Feed(feed.path, feed.count) for _ in servers]
        for index, ((label, root, count), port, url) in enumerate(zip(servers, ports, urls, strict=True)):
            env = {
                "PYTHONPATH": str(root),
                "PATH": f"{BIN}:{_path()}",
                "KREUZBERG_BENCH_MODE": "inbox" if backend == "sqlite" else f"inbox-{backend}",
                "KREUZBERG_BENCH_DB": str(directory / f"{backend}-{index}.sqlite3"),
            }
            if backend == "sqlite":  # the app's own SQLite inbox file is KREUZBERG_BENCH_DB + ".inbox"
                urls[index] = url = f"sqlite:///{env['KREUZBERG_BENCH_DB']}.inbox"
            else:
                env["KREUZBERG_BENCH_INBOX_URL"] = url
            argv = [
                str(BIN / "uvicorn"), "benchmarks.apps.inbox_modes:app",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(count),
                "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log",
            ]  # fmt: skip
            log = directory / f"{label}-{count}.log"
            stack.enter_context(serve(argv, port=port, log=log, env=env, cwd=root))
        for index, port in enumerate(ports):  # every worker process up, its handlers caught up
            wrk_latency(port, feeds[index], warmup)
            drain(urls[index])
        found: list[list[tuple[float, float, float, float]]] = [[] for _ in servers]
        order = list(range(len(servers)))
        for round_ in range(rounds):
            for index in order[round_ % len(order) :] + order[: round_ % len(order)]:
                rate, p50, p99, _ = wrk_latency(ports[index], feeds[index], duration)
                found[index].append((rate, p50, p99, drain(urls[index])))
    points = []
    for (label, _, count), results in zip(servers, found, strict=True):
        rates, p50s, p99s, drains = zip(*results, strict=True)
        points.append(
            Point(
                label,
                count,
                statistics.median(rates),
                statistics.median(p50s),
                statistics.median(p99s),
                statistics.median(drains),
            )
        )
    return points


def measure(
    *,
    rounds: int = 3,
    duration: float = 2.0,
    warmup: float = 1.0,
    feed_size: int = 60_000,
    backends: Sequence[str] = BACKENDS,
    workers: Sequence[int] = WORKERS,
    against: Sequence[Path] = (),
) -> list[Point]:
    """Every backend with every number of workers; see the module's docstring."""
    if "postgres" in backends:
        ensure_postgres()
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="kreuzberg-bench-scaling-") as tmp:
        directory = Path(tmp)
        feed = write_feed(directory, feed_size)
        for backend in backends:
            points.extend(
                _measure_backend(
                    backend,
                    workers,
                    feed,
                    directory,
                    rounds=rounds,
                    duration=duration,
                    warmup=warmup,
                    against=against,
                )
            )
    return points


def table(points: Sequence[Point]) -> str:
    """The scaling table: one line per backend and number of workers."""
    lines = [
        "| inbox | workers | acknowledgements/s | vs 1 worker | p50 | p99 | handlers caught up after |",
        "|---|---|---|---|---|---|---|",
    ]
    first = {point.backend: point.rate for point in points if point.workers == min(p.workers for p in points)}
    for point in points:
        lines.append(
            f"| {point.backend} | {point.workers} | {point.rate:,.0f}/s | {point.rate / first[point.backend]:.2f}x "
            f"| {point.p50:.1f} ms | {point.p99:.1f} ms | {point.drain:.1f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,redis,postgres")
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)), help="comma-separated worker counts")
    parser.add_argument(
        "--against", type=Path, action="append", default=[], help="another checkout to serve beside this one"
    )
    args = parser.parse_args(argv)
    points = measure(
        rounds=args.rounds,
        duration=args.duration,
        warmup=args.warmup,
        backends=[name for name in args.backends.split(",") if name],
        workers=[int(count) for count in args.workers.split(",") if count],
        against=[root.resolve() for root in args.against],
    )
    print(table(points))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
