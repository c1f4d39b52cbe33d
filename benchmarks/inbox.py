"""``python -m benchmarks.inbox``: acknowledgement throughput and latency, inbox mode vs endpoint mode.

Every mode serves the same Starlette app (uvicorn, one worker, uvloop + httptools)
with the SQLite replay store on a local file; inbox mode adds the SQLite inbox
(``synchronous=FULL``: every acknowledgement waits for an fsync, shared by the
writes that arrive together) and its embedded worker, which runs the handlers
in the same process while the load goes on, and after each of its rounds
the server's inbox is drained (every delivery handled) before the next round, so its
handlers never run during another mode's round; ``inbox-normal`` is the same with
``synchronous=NORMAL``, the replay store's own setting (safe from a crashed
process, not from a power cut). wrk -t1 -c16 with ``--latency``, alternating rounds after a warm-up;
medians of rounds. Each request is a distinct, freshly signed event.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .load import BIN, CONNECTIONS, LUA, ROOT, Feed, _path, write_feed
from .servers import free_port, serve

_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TOTAL = re.compile(r"(\d+) requests in")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk_latency(port: int, feed: Feed, duration: float) -> tuple[float, float, float, int]:
    """One wrk run: (requests/s, p50 ms, p99 ms, requests). Fails on any non-2xx answer."""
    argv = [
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration:g}s", "--latency", "-s", str(LUA),
        f"http://127.0.0.1:{port}/webhooks/kreuzberg", "--", str(feed.path), str(feed.position),
    ]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rate, total = _RATE.search(output), _TOTAL.search(output)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    if (bad := _NON_2XX.search(output)) is not None:
        raise RuntimeError(f"{bad.group(1)} answers were not 2xx:\n{output}")
    percentiles = {int(p): float(v) * _UNIT[u] for p, v, u in _PERCENTILE.findall(output)}
    feed.take(int(total.group(1)))
    return float(rate.group(1)), percentiles[50], percentiles[99], int(total.group(1))


#: Seconds an inbox may take to be drained after a round.
DRAIN_LIMIT = 60.0


def drain(url: str) -> float:
    """Wait until the inbox at *url* has nothing queued or running; the seconds it took."""
    from kreuzberg_webhooks.inbox import DeliveryState, open_inbox

    inbox = open_inbox(url)
    began = time.monotonic()
    try:
        while True:
            counts = inbox.counts()  # type: ignore[union-attr]
            if counts[DeliveryState.QUEUED] + counts[DeliveryState.RUNNING] == 0:
                return time.monotonic() - began
            if counts[DeliveryState.DEAD]:
                raise RuntimeError(f"deliveries went dead in {url}: {counts}")
            if time.monotonic() - began > DRAIN_LIMIT:
                raise RuntimeError(f"the handlers did not catch up within {DRAIN_LIMIT:.0f} s: {counts}")
            time.sleep(0.05)
    finally:
        close = getattr(inbox, "close", None)
        if callable(close):
            close()


@dataclass(frozen=True)
class ModeResult:
    rate: float  # acknowledgements per second, median of rounds
    p50: float  # milliseconds, median of rounds
    p99: float
    #: seconds the handlers took to catch up after a round (median; 0 in endpoint mode)
    drain: float = 0.0


MODES = ("endpoint", "inbox", "inbox-normal")


@dataclass(frozen=True)
class InboxResult:
    modes: dict[str, ModeResult]
    #: each inbox mode's throughput / endpoint mode's, the median of per-round ratios
    ratios: dict[str, float]


def measure(
    *,
    rounds: int,
    duration: float,
    warmup: float,
    feed_size: int,
    servers_for: dict[str, str] | None = None,
    against: Path | None = None,
) -> InboxResult:
    """Serve every mode side by side and measure them in rotating rounds.

    *servers_for* adds modes whose inbox is at a URL (``{"inbox-redis": "redis://…"}``);
    *against* adds the SQLite inbox modes served from that checkout (``inbox@against``).
    """
    with tempfile.TemporaryDirectory(prefix="kreuzberg-bench-inbox-") as tmp, contextlib.ExitStack() as stack:
        directory = Path(tmp)
        feed = write_feed(directory, feed_size)
        extra = servers_for or {}
        sources = {mode: (mode, ROOT) for mode in (*MODES, *extra)}
        if against is not None:
            sources.update({f"{mode}@against": (mode, against) for mode in MODES[1:]})
        modes = tuple(sources)
        ports = {mode: free_port() for mode in modes}
        feeds = {mode: Feed(feed.path, feed.count) for mode in modes}
        results: dict[str, list[tuple[float, float, float, float]]] = {mode: [] for mode in modes}
        inboxes = {
            mode: f"sqlite:///{directory / f'{mode}.sqlite3'}.inbox" for mode in modes if sources[mode][0] in MODES[1:]
        }
        inboxes.update(extra)
        servers = []
        for mode in modes:
            env = {
                "PYTHONPATH": str(sources[mode][1]),
                "PATH": f"{BIN}:{_path()}",
                "KREUZBERG_BENCH_MODE": sources[mode][0],
                "KREUZBERG_BENCH_DB": str(directory / f"{mode}.sqlite3"),
            }
            if mode in extra:
                env["KREUZBERG_BENCH_INBOX_URL"] = extra[mode]
            argv = [
                str(BIN / "uvicorn"), "benchmarks.apps.inbox_modes:app",
                "--host", "127.0.0.1", "--port", str(ports[mode]), "--workers", "1",
                "--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log",
            ]  # fmt: skip
            servers.append(serve(argv, port=ports[mode], log=directory / f"{mode}.log", env=env, cwd=sources[mode][1]))
        for server in servers:
            stack.enter_context(server)
        if warmup:
            for mode in modes:
                wrk_latency(ports[mode], feeds[mode], warmup)
                if mode in inboxes:
                    drain(inboxes[mode])
        for index in range(rounds):
            for mode in modes[index % len(modes) :] + modes[: index % len(modes)]:
                rate, p50, p99, _ = wrk_latency(ports[mode], feeds[mode], duration)
                results[mode].append((rate, p50, p99, drain(inboxes[mode]) if mode in inboxes else 0.0))

    def summary(mode: str) -> ModeResult:
        rates, p50s, p99s, drains = zip(*results[mode], strict=True)
        return ModeResult(*(statistics.median(values) for values in (rates, p50s, p99s, drains)))

    ratios = {
        mode: statistics.median(i[0] / e[0] for i, e in zip(results[mode], results["endpoint"], strict=True))
        for mode in modes[1:]
    }
    return InboxResult({mode: summary(mode) for mode in modes}, ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inbox", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--feed", type=int, default=200_000, help="distinct signed deliveries")
    parser.add_argument("--servers", action="store_true", help="also the Redis and PostgreSQL inboxes (real servers)")
    parser.add_argument("--against", type=Path, default=None, help="also the SQLite inbox modes from that checkout")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        if args.servers:
            urls = _start_servers(stack)
        result = measure(
            rounds=args.rounds,
            duration=args.duration,
            warmup=args.warmup,
            feed_size=args.feed,
            servers_for=urls,
            against=args.against.resolve() if args.against else None,
        )
    print("| mode | acknowledgements/s | p50 | p99 | handlers caught up after |")
    print("|---|---|---|---|---|")
    for mode, found in result.modes.items():
        print(f"| {mode} | {found.rate:,.0f}/s | {found.p50:.2f} ms | {found.p99:.2f} ms | {found.drain:.1f} s |")
    for mode, ratio in result.ratios.items():
        print(f"{mode} / endpoint throughput: {ratio:.2f}x (target >= 0.8x); p99 target <= 10 ms")
    return 0


def _start_servers(stack: contextlib.ExitStack) -> dict[str, str]:
    """A throw-away redis-server and PostgreSQL cluster on loopback, stopped when *stack* closes."""
    from tests.postgres_server import PostgresServer  # the tests' initdb helper (dev group: pytest)

    from .stores import redis_server

    directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kreuzberg-bench-servers-")))
    redis_port = stack.enter_context(redis_server(directory))
    postgres = stack.enter_context(PostgresServer().running())
    return {"inbox-redis": f"redis://127.0.0.1:{redis_port}/0", "inbox-postgres": postgres.url}


if __name__ == "__main__":
    raise SystemExit(main())
