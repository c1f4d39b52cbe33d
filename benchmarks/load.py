"""Rows 6-8: deliveries per second over real HTTP, driven by wrk on loopback.

Each pair (ours, hand-written) is served at the same time on two free ports,
one worker each (uvicorn for ASGI, gunicorn's sync worker for WSGI), and
measured in alternating rounds so both see the same machine. wrk uses one
thread and 16 connections. Its Lua script cannot sign, so it POSTs deliveries
signed beforehand, each a distinct event: our receiver processes every
request (claim, handler, complete), none is answered as a duplicate.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import deliveries
from .servers import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "apps" / "post.lua"
BIN = Path(sys.executable).parent
CONNECTIONS = 16


@dataclass(frozen=True)
class App:
    name: str
    module: str  # benchmarks.apps.<module>:<attribute>
    server: str  # "uvicorn" or "gunicorn"

    def argv(self, port: int) -> list[str]:
        if self.server == "uvicorn":
            return [
                str(BIN / "uvicorn"),
                self.module,
                "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--loop", "uvloop", "--http", "httptools",
                "--log-level", "warning", "--no-access-log",
            ]  # fmt: skip
        return [
            str(BIN / "gunicorn"),
            self.module,
            "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning",
        ]  # fmt: skip


@dataclass(frozen=True)
class Pair:
    row: str
    ours: App
    baseline: App
    #: the adapter module that must exist for this row
    needs: str


PAIRS = (
    Pair(
        "6",
        App("FastAPI + middleware (endpoint)", "benchmarks.apps.fastapi_ours:app", "uvicorn"),
        App("vendor docs' FastAPI handler", "benchmarks.apps.fastapi_vendor:app", "uvicorn"),
        "kreuzberg_webhooks.adapters.asgi",
    ),
    Pair(
        "7",
        App("Starlette route + middleware (guard)", "benchmarks.apps.starlette_guard:app", "uvicorn"),
        App("hand-written Starlette route", "benchmarks.apps.starlette_hand:app", "uvicorn"),
        "kreuzberg_webhooks.adapters.asgi",
    ),
    Pair(
        "8 Flask",
        App("Flask view + @webhook", "benchmarks.apps.flask_ours:app", "gunicorn"),
        App("hand-written Flask view", "benchmarks.apps.flask_hand:app", "gunicorn"),
        "kreuzberg_webhooks.adapters.flask",
    ),
    Pair(
        "8 Django",
        App("Django view + KreuzbergWebhookMixin", "benchmarks.apps.django_ours:application", "gunicorn"),
        App("hand-written Django view", "benchmarks.apps.django_hand:application", "gunicorn"),
        "kreuzberg_webhooks.adapters.django.views",
    ),
)


@dataclass(frozen=True)
class PairResult:
    pair: Pair
    #: requests per second, one per round
    ours: list[float]
    baseline: list[float]
    #: ours / baseline throughput, the median of the per-round ratios
    speedup: float
    requests_ours: int
    #: requests per second of our app served from another checkout (``--against``), one per round
    against: list[float] | None = None
    #: the server's CPU time per request (µs; its process group: master and workers), one per round
    #: and side: a cost that other load on the machine disturbs far less than the rate
    cpu: dict[str, list[float]] | None = None


@dataclass
class Feed:
    """The file of signed deliveries and where the next wrk run starts in it.

    Each server is a fresh process with an empty store, so every pair starts
    at the first delivery; only our side must never see one twice.
    """

    path: Path
    count: int
    position: int = 0
    wrapped: bool = False

    def take(self, used: int) -> None:
        self.position += used
        if self.position >= self.count:
            self.wrapped = True
            self.position %= self.count


def write_feed(directory: Path, count: int) -> Feed:
    path = directory / "deliveries.tsv"
    with path.open("w") as out:
        for body, headers in deliveries.unique_deliveries(count):
            out.write(f"{headers['X-Webhook-Signature']}\t{body.decode()}\n")
    return Feed(path, count)


_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TOTAL = re.compile(r"(\d+) requests in")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_ERRORS = re.compile(r"Socket errors: (.*)")


def wrk(port: int, feed: Feed, duration: float) -> tuple[float, int]:
    """One wrk run against *port*; returns (requests/s, requests). Fails on any non-2xx answer."""
    argv = [
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration:g}s", "-s", str(LUA),
        f"http://127.0.0.1:{port}/webhooks/kreuzberg", "--", str(feed.path), str(feed.position),
    ]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rate, total = _RATE.search(output), _TOTAL.search(output)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    bad = _NON_2XX.search(output)
    if bad is not None:
        raise RuntimeError(f"{bad.group(1)} answers were not 2xx on port {port}:\n{output}")
    errors = _ERRORS.search(output)
    if errors is not None and re.search(r"(connect|read|write|timeout) [1-9]", errors.group(1)):
        # gunicorn's sync worker closes every connection; wrk counts nothing else as an error.
        raise RuntimeError(f"wrk reported socket errors on port {port}:\n{output}")
    feed.take(int(total.group(1)))
    return float(rate.group(1)), int(total.group(1))


def available(pair: Pair) -> bool:
    import importlib

    try:
        importlib.import_module(pair.needs)
    except ImportError:
        return False
    return True


def run_pair(
    pair: Pair,
    feed: Feed,
    directory: Path,
    *,
    rounds: int,
    duration: float,
    warmup: float,
    against: Path | None = None,
) -> PairResult:
    """Serve the pair (and, given *against*, our app from that checkout too) and measure it in rotating rounds."""
    sides = {"ours": (pair.ours, ROOT), "baseline": (pair.baseline, ROOT)}
    if against is not None:
        sides["against"] = (pair.ours, against)
    ports = {side: free_port() for side in sides}
    feeds = {side: Feed(feed.path, feed.count) for side in sides}
    rates: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    groups: dict[str, int] = {}
    served = 0
    with contextlib.ExitStack() as stack:
        for side, (app, root) in sides.items():
            env = {"PYTHONPATH": str(root), "PATH": f"{BIN}:{_path()}"}
            log = directory / f"{side}.log"
            proc = stack.enter_context(serve(app.argv(ports[side]), port=ports[side], log=log, env=env, cwd=root))
            groups[side] = proc.pid  # serve() starts each server in a session (and process group) of its own
        if warmup:
            for side in sides:
                wrk(ports[side], feeds[side], warmup)
        names = list(sides)
        for index in range(rounds):
            # Each side goes first in turn, so none always runs on the machine the previous one left.
            order: Sequence[str] = names[index % len(names) :] + names[: index % len(names)]
            for side in order:
                before = group_cpu_seconds(groups[side])
                rate, total = wrk(ports[side], feeds[side], duration)
                cpu[side].append((group_cpu_seconds(groups[side]) - before) / total * 1e6)
                rates[side].append(rate)
                if side == "ours":
                    served += total
    speedup = statistics.median(a / b for a, b in zip(rates["ours"], rates["baseline"], strict=True))
    feed.wrapped = feed.wrapped or feeds["ours"].wrapped
    return PairResult(pair, rates["ours"], rates["baseline"], speedup, served, rates.get("against"), cpu)


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of the live processes in process group *group* (Linux /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        # After the command's ")": state, ppid, pgrp, … utime is field 14 of stat, stime 15.
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _path() -> str:
    return os.environ.get("PATH", "")


def run(
    *,
    rounds: int,
    duration: float,
    warmup: float,
    feed_size: int,
    rows: Sequence[str] | None = None,
    against: Path | None = None,
) -> tuple[list[PairResult | Pair], bool]:
    """Every pair whose adapter exists (a missing one is returned as the bare Pair), or those of *rows*."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    results: list[PairResult | Pair] = []
    with tempfile.TemporaryDirectory(prefix="kreuzberg-load-") as tmp:
        directory = Path(tmp)
        feed = write_feed(directory, feed_size)
        for pair in PAIRS:
            if rows is not None and pair.row not in rows and pair.row.split()[0] not in rows:
                continue
            if not available(pair):
                results.append(pair)
                continue
            results.append(
                run_pair(pair, feed, directory, rounds=rounds, duration=duration, warmup=warmup, against=against)
            )
    return results, feed.wrapped


def _ratio(mine: list[float], theirs: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.load --rows 7 [--against DIR]``: only the chosen rows, printed.

    ``--against DIR`` serves our app from another checkout (e.g. a worktree of
    ``main``) beside this one, in the same rotating rounds: a before/after
    from one run.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=main.__doc__)
    parser.add_argument("--rows", nargs="+", default=None, help='rows to run: "6", "7", "8" or "8 Flask"')
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--feed-size", type=int, default=250_000)
    parser.add_argument("--against", type=Path, default=None, help="another checkout whose app to serve beside ours")
    args = parser.parse_args(argv)
    results, wrapped = run(
        rounds=args.rounds,
        duration=args.duration,
        warmup=args.warmup,
        feed_size=args.feed_size,
        rows=args.rows,
        against=args.against.resolve() if args.against else None,
    )
    for result in results:
        if isinstance(result, Pair):
            print(f"row {result.row}: not available")
            continue
        print(f"row {result.pair.row}: {result.pair.ours.name} / {result.pair.baseline.name}")
        sides = {"ours": result.ours, "baseline": result.baseline}
        if result.against is not None:
            sides["against"] = result.against
        cpu = result.cpu or {}
        for side, rates in sides.items():
            print(f"  {side:9s} median {statistics.median(rates):8.0f}/s  rounds {[round(rate) for rate in rates]}")
            if cpu.get(side):
                spent = cpu[side]
                print(f"  {'':9s} CPU {statistics.median(spent):8.1f} µs/request  rounds {[round(x) for x in spent]}")
        print(f"  ours/baseline throughput {result.speedup:.3f}x (cost {1 / result.speedup:.3f}x)")
        if cpu:
            print(f"  ours/baseline CPU per request {_ratio(cpu['ours'], cpu['baseline']):.3f}x")
        if result.against is not None:
            old = statistics.median(a / b for a, b in zip(result.against, result.baseline, strict=True))
            new_old = statistics.median(a / b for a, b in zip(result.ours, result.against, strict=True))
            print(f"  against/baseline throughput {old:.3f}x (cost {1 / old:.3f}x); ours/against {new_old:.3f}x")
            if cpu:
                print(
                    f"  against/baseline CPU per request {_ratio(cpu['against'], cpu['baseline']):.3f}x; "
                    f"ours/against {_ratio(cpu['ours'], cpu['against']):.3f}x"
                )
    if wrapped:
        print("(the run wrapped around the delivery file: some requests were duplicates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
