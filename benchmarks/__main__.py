"""``python -m benchmarks [--quick] [--output FILE]``: run every benchmark, print one table, write RESULTS.md."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = {"standardwebhooks": "standardwebhooks", "svix": "svix", "stripe": "stripe"}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    quick: bool
    verify_rounds: int
    verify_batch: int
    lifecycle_rounds: int
    lifecycle_batch: int
    throughput_rounds: int
    store_rounds: int
    store_batch: int
    memory_body: int
    http_rounds: int
    http_duration: float
    http_warmup: float
    feed_size: int


FULL = Settings(False, 200, 500, 100, 2000, 25, 7, 5000, 50 * MIB, 5, 2.0, 1.0, 250_000)
QUICK = Settings(True, 1, 20, 1, 50, 1, 1, 50, 4 * MIB, 1, 1.0, 0.0, 40_000)


@dataclass(frozen=True)
class Row:
    number: str
    measurement: str
    ours: str
    other: str
    ratio: str
    target: str
    met: bool | None  # None: reported only, or not available


# -- what the run needs --------------------------------------------------------


def ensure_tools() -> None:
    """Install the peers (pip) and wrk / redis-server (apt-get, as root) when they are missing."""
    missing = [package for package, module in PEERS.items() if importlib.util.find_spec(module) is None]
    if missing:
        print(f"installing the peers: {' '.join(missing)}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
        importlib.invalidate_caches()
    for tool, package in (("wrk", "wrk"), ("redis-server", "redis-server")):
        if shutil.which(tool) is not None:
            continue
        if os.geteuid() == 0 and shutil.which("apt-get") is not None:
            print(f"installing {package} with apt-get", flush=True)
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
        else:
            raise SystemExit(f"{tool} is missing: install it (apt-get install {package}) and run again")


# -- formatting -----------------------------------------------------------------


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


# -- the rows -------------------------------------------------------------------


def micro_rows(settings: Settings, notes: list[str]) -> list[Row]:
    from . import micro

    verify = micro.verify_rows(rounds=settings.verify_rounds, batch=settings.verify_batch)
    timings = verify.timings
    ours, floor = timings.median("ours"), timings.median("floor")
    ratio = timings.ratio("ours", "floor")
    rows = [
        Row(
            "1",
            f"`Verifier.verify`, {verify.body_size}-byte event",
            _us(ours),
            f"floor {_us(floor)}",
            _x(ratio),
            "≤ 1.5x floor",
            ratio <= 1.5,
        )
    ]
    for peer in verify.peers:
        theirs = timings.median(peer)
        peer_ratio = timings.ratio(peer, "floor")
        rows.append(
            Row(
                "2",
                f"same, vs `{peer}`",
                _x(ratio) + " floor",
                f"{_us(theirs)} = {_x(peer_ratio)} floor",
                _x(timings.ratio("ours", peer)) + " of theirs",
                "faster than every peer",
                timings.ratio("ours", peer) < 1,
            )
        )
    timestamped = micro.timestamped_verify_row(rounds=settings.verify_rounds, batch=settings.verify_batch)
    t_ratio = timestamped.timings.ratio("ours", "floor")
    rows.append(
        Row(
            "1 t=",
            f"`Verifier.verify`, `t=…,v1=…` signature, {timestamped.body_size}-byte `WebhookEvent`",
            _us(timestamped.timings.median("ours")),
            f"floor {_us(timestamped.timings.median('floor'))}",
            _x(t_ratio),
            "≤ 1.5x floor",
            t_ratio <= 1.5,
        )
    )
    slots = micro.slot_build_row(rounds=settings.verify_rounds, batch=settings.verify_batch)
    by_slots = slots.median("slots")
    by_constructor = slots.median("constructor")
    saving = (by_constructor - by_slots) / ours
    rows.append(
        Row(
            "1 slots",
            "a `JobEvent` built as `parse_job_event` builds it: through its slots' setters (`_hot.slot_setter`)",
            _us(by_slots),
            f"its constructor {_us(by_constructor)}",
            f"saves {saving * 100:.1f}% of row 1",
            "saves ≥ 3% of row 1",
            saving >= 0.03,
        )
    )
    lifecycle = micro.lifecycle_row(rounds=settings.lifecycle_rounds, batch=settings.lifecycle_batch)
    life_ratio = lifecycle.ratio("lifecycle", "verify")
    limit_ratio = lifecycle.ratio("limit", "verify")
    rows.append(
        Row(
            "3",
            "`Receiver.handle`: verify + claim + no-op handler + complete (memory store)",
            _us(lifecycle.median("lifecycle")),
            f"row 1 {_us(lifecycle.median('verify'))}",
            f"{_x(life_ratio)} ({_x(lifecycle.ratio('lifecycle', 'limit'))} the limit)",
            "≤ 1.3x row 1",
            life_ratio <= 1.3,
        )
    )
    rows.append(
        Row(
            "3 limit",
            "the limit: the same guarantees written inline (verify, key, claim in a locked dict, no-op handler, "
            "done, a prebuilt answer)",
            _us(lifecycle.median("limit")),
            f"row 1 {_us(lifecycle.median('verify'))}",
            _x(limit_ratio),
            "reported: the least row 3 can be",
            None,
        )
    )
    for size in (MIB, 10 * MIB):
        batch = 10 if size == MIB else 2
        large = micro.throughput_row(size, rounds=settings.throughput_rounds, batch=1 if settings.quick else batch)
        ours_speed = size / large.median("ours") / 1e9
        hmac_speed = size / large.median("hmac") / 1e9
        speed_ratio = large.ratio("hmac", "ours")  # time of hmac / time of ours = our relative throughput
        rows.append(
            Row(
                "4",
                f"signature check, {size // MIB} MiB body",
                f"{ours_speed:.2f} GB/s",
                f"hmac {hmac_speed:.2f} GB/s",
                _x(speed_ratio),
                "≥ 0.9x hmac",
                speed_ratio >= 0.9,
            )
        )
    notes.append(
        f"Rows 1-3: {settings.verify_batch} (rows 1-2) and {settings.lifecycle_batch} (row 3) distinct deliveries of "
        "one project (new event and job ids each), every candidate timed over all of them in each of "
        f"{settings.verify_rounds} / {settings.lifecycle_rounds} interleaved rounds; the empty-loop cost is "
        "subtracted; ratios are medians of per-round ratios. Each peer verifies the same body signed in its own "
        "scheme (Standard Webhooks and Svix: `webhook-*`/`svix-*` headers; Stripe: `t=…,v1=…`). svix's `verify` "
        "returns nothing, so `json.loads` is added; ours returns the typed, validated, replay-checked event."
    )
    notes.append(
        "Row 1 t=: the inline webhook's format, timed like row 1 against its own floor (split the header into "
        "`t` and `v1`, HMAC-SHA256 over `t.` + body, `hmac.compare_digest`, `json.loads`; no window); ours "
        "is a default `Verifier` (both formats accepted) checking the `t` window and the body's `timestamp` too."
    )
    notes.append(
        "Row 1 slots: the one speed-up of the hot path that is not plain code. `parse_job_event` fills the "
        "frozen `JobEvent` through its slots' own setters (`_hot.slot_setter`, as `WebhookEvent` is) instead of "
        "its constructor, which stores each field through `object.__setattr__`; both build an event from the "
        "same values, the row shows the time it saves on every delivery as a share of row 1, and "
        "`tests/test_hot_path.py` holds the two equal."
    )
    notes.append(
        "Row 3 limit: the least a receiver with row 3's guarantees must do per delivery, timed on the same "
        "deliveries in the same rounds as row 3 and row 1 (`benchmarks.micro.limit`), written inline with no "
        "flow, no driver and no store class: `verify_scoped`, the delivery key (`protocol.keys.delivery_key`), "
        "a claim in a dict under a `threading.Lock` (a new or expired key gets an integer token and a lease "
        "from `time.monotonic()`, a live one is refused), the no-op handler with its claim held for a "
        "heartbeat to renew meanwhile (a dict entry set and removed; a raise would release the claim by its "
        "token), the key marked done for the retention counted from completion, and an answer built "
        "beforehand. It keeps no bound on its keys, writes no log line and looks up no handler by event type. "
        "Row 3's line gives its ratio to the limit as well; docs/performance.md says where the difference goes."
    )
    return rows


def _peak_memory(size: int, mode: str) -> dict[str, int]:
    """One ``benchmarks.memory`` run in a fresh process: a *size*-byte job document in *mode*."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", str(size), mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, int] = json.loads(output.strip().splitlines()[-1])
    answered = 200 if mode == "endpoint" else 202
    statuses = (result["status"], result["traced_status"], result["warm_status"])
    if statuses != (answered,) * 3 or result["handled"] != 3:
        raise RuntimeError(f"the memory benchmark's deliveries were not processed: {result}")
    return result


def memory_row(settings: Settings, notes: list[str]) -> list[Row]:
    try:
        importlib.import_module("kreuzberg_webhooks.adapters.asgi")
    except ImportError:
        return [Row("5", "peak memory, job document via the ASGI middleware", "not available", "", "", "≤ 2x", None)]
    result = _peak_memory(settings.memory_body, "endpoint")
    body = result["body_bytes"]
    ratio = result["traced_peak"] / body
    rows = [
        Row(
            "5",
            f"peak memory, {body / MIB:.0f} MiB job document via the ASGI middleware",
            f"+{result['traced_peak'] / MIB:.0f} MiB",
            f"body {body / MIB:.0f} MiB",
            _x(ratio) + " body",
            "≤ 2x body",
            ratio <= 2,
        )
    ]
    # Peak memory against body size (issue 20's scaling table), in endpoint and inbox mode.
    sizes = (MIB, settings.memory_body) if settings.quick else (MIB, 10 * MIB, settings.memory_body)
    for mode in ("endpoint", "inbox"):
        for size in sizes:
            found = result if (mode, size) == ("endpoint", settings.memory_body) else _peak_memory(size, mode)
            rows.append(
                Row(
                    "5",
                    f"peak memory against body size: {found['body_bytes'] / MIB:.0f} MiB, {mode} mode",
                    f"+{found['traced_peak'] / MIB:.1f} MiB",
                    f"RSS +{found['growth'] / MIB:.0f} MiB",
                    _x(found["traced_peak"] / found["body_bytes"]) + " body",
                    "reported",
                    None,
                )
            )
    notes.append(
        "Row 5: a fresh process receives a signed job document through `KreuzbergWebhookMiddleware` "
        "(endpoint mode), its body generated in 64 KiB chunks inside `receive()`, so the process holds no copy "
        "but the receiver's. The ratio is the peak of Python allocations under `tracemalloc` during the delivery; "
        f"the peak resident set grew by {result['growth'] / MIB:.0f} MiB over the warmed-up idle process (a "
        "figure the kernel's page reclaim on a busy machine can lower). A body of 256 KiB or more is streamed: "
        "its HMAC advances chunk by chunk and it is kept once, as the chunks it came in. Once the signature is "
        "checked, the JSON is decoded from those chunks (`decode_json_chunks`): every value that lies wholly in "
        "the chunk in hand goes to the `json` module's C scanner, a string or container that runs on into the "
        "next chunk is walked (a long string decoded piece by piece and grown in place), and each chunk is "
        "freed once decoded. At the peak the process holds the document and a chunk or two: about 1x the body "
        "for a document that is mostly its text, a little more at 1 MiB, where the chunks in flight count."
    )
    notes.append(
        "Row 5, peak memory against body size: the same delivery at 1, 10 and 50 MiB, in endpoint mode and "
        "in inbox mode (a SQLite inbox in a temporary directory). The inbox stores the exact signed bytes, so "
        "they are kept: joined once, and the document decoded from that copy, the bytes and the document alive "
        "together (about 2x). SQLite's own copy of the row is its C allocations, outside `tracemalloc`, in the "
        "resident set (RSS) only."
    )
    return rows


def http_rows(settings: Settings, notes: list[str]) -> list[Row]:
    from . import load

    results, wrapped = load.run(
        rounds=settings.http_rounds,
        duration=settings.http_duration,
        warmup=settings.http_warmup,
        feed_size=settings.feed_size,
    )
    rows = []
    for result in results:
        if isinstance(result, load.Pair):
            rows.append(Row(result.row, result.ours.name, "not available", "", "", "", None))
            continue
        pair = result.pair
        ours = sorted(result.ours)[len(result.ours) // 2]
        theirs = sorted(result.baseline)[len(result.baseline) // 2]
        if pair.row == "6":
            ratio, target, met = result.speedup, "≥ 1.5x throughput", result.speedup >= 1.5
            shown = _x(ratio) + " throughput"
        else:
            cost = 1 / result.speedup  # time per request, ours / hand-written
            limit = 1.15 if pair.row == "7" else 1.1
            ratio, target, met = cost, f"≤ {limit}x cost per request", cost <= limit
            shown = _x(cost) + " cost"
        rows.append(
            Row(pair.row, pair.ours.name, _rate(ours), f"{pair.baseline.name}: {_rate(theirs)}", shown, target, met)
        )
    notes.append(
        f"Rows 6-8: each pair served side by side (uvicorn 1 worker with uvloop + httptools, or gunicorn 1 sync "
        f"worker), wrk -t1 -c{load.CONNECTIONS} from loopback, {settings.http_rounds} alternating rounds of "
        f"{settings.http_duration:g} s after a {settings.http_warmup:g} s warm-up; medians of rounds, ratios "
        "are medians of per-round ratios. wrk's Lua cannot compute an HMAC, so it cycles through deliveries "
        "signed beforehand, each a distinct event: our receivers process every request (claim, handler, "
        "complete in the in-memory store) — none is answered as a duplicate — while the hand-written "
        "baselines have no replay protection at all."
        + (" (The run wrapped around the delivery file: some requests were duplicates.)" if wrapped else "")
    )
    return rows


def store_rows(settings: Settings, notes: list[str]) -> list[Row]:
    from . import stores

    rows = []
    for result in stores.run(rounds=settings.store_rounds, batch=settings.store_batch):
        if result.commands_per_operation is None:
            rows.append(Row("9", f"store: {result.name}", _rate(result.pairs_per_second), "", "", "report", None))
        else:
            trips = result.commands_per_operation
            rows.append(
                Row(
                    "9",
                    f"store: {result.name} (real redis-server on loopback)",
                    _rate(result.pairs_per_second),
                    "",
                    f"{trips:.2f} round trips per operation",
                    "1 round trip per operation",
                    trips <= 1.0,
                )
            )
    notes.append(
        "Row 9: claim + complete of a new key, counted as pairs per second (median of rounds); SQLite on a local "
        "file in WAL mode; Redis round trips counted on the client's connection."
    )
    return rows


def inbox_rows(settings: Settings, notes: list[str]) -> list[Row]:
    from . import inbox

    result = inbox.measure(
        rounds=settings.http_rounds, duration=settings.http_duration, warmup=settings.http_warmup, feed_size=20_000
    )
    theirs = result.modes["endpoint"]
    notes.append(
        "Row 10: the same Starlette app under uvicorn (1 worker) in inbox mode (SQLite inbox; the embedded worker "
        "runs the handlers in the same process meanwhile) and in endpoint mode (SQLite store, no-op handler in the "
        "request); synchronous=FULL (the default: an fsync per commit, shared by the writes that arrive together) "
        "and NORMAL (the store's own setting); wrk -t1 -c16 --latency, rotating rounds, medians. After each inbox "
        "round the inbox is drained before the next round starts, so no mode's handlers run during another's "
        "round; the handlers caught up "
        + ", ".join(f"{result.modes[mode].drain:.1f} s ({mode})" for mode in ("inbox", "inbox-normal"))
        + " after a round (median). At 16 connections a request's latency is about 16 / throughput: "
        "docs/performance.md says what bounds it."
    )
    rows = []
    for mode, label in (("inbox", "synchronous=FULL"), ("inbox-normal", "synchronous=NORMAL")):
        ours, ratio = result.modes[mode], result.ratios[mode]
        rows.append(
            Row(
                "10",
                f"SQLite inbox ({label}): acknowledgements at 16 connections",
                f"{_rate(ours.rate)}, p50 {ours.p50:.1f} ms, p99 {ours.p99:.1f} ms",
                f"endpoint mode, SQLite store: {_rate(theirs.rate)}, p99 {theirs.p99:.1f} ms",
                f"{ratio:.2f}x throughput",
                "≥ 0.8x throughput, p99 ≤ 10 ms",
                ratio >= 0.8 and ours.p99 <= 10,
            )
        )
    return rows


def reconcile_rows(settings: Settings, notes: list[str]) -> list[Row]:
    from . import reconcile

    # Many short rounds: on a shared machine a round's ratio swings by a quarter either way, the median
    # of many far less (the emulator's and the client's threads contend for two cores).
    jobs, rounds = (200, 1) if settings.quick else (1_500, 9)
    comparison_jobs, comparison_rounds = (100, 2) if settings.quick else (1_000, 16)
    remote_jobs, remote_rounds = (100, 2) if settings.quick else (1_000, 6)
    async_default, sync_default = reconcile.shipped_concurrency()
    notes.append(
        f"Row 11: {jobs:,} finished jobs tracked, none closed by a webhook, reconciled in one pass against "
        "`kreuzberg-webhooks emulate` in its own process (no-op handler, memory store and tracker), beside the "
        "same GETs through a bare httpx loop (send, read the body; no parsing, no retries) with the same "
        "concurrency and the same kind of client: sync: Reconciler, 4 threads, against httpx.Client in 4 threads; "
        "async: AsyncReconciler with an AsyncJobsClient on the caller's own httpx.AsyncClient, 8 at once, against "
        "httpx.AsyncClient in 8 tasks; async-threads: AsyncReconciler with a JobsClient, its requests in 8 threads "
        "(what it does by default with an AsyncJobsClient of its own pool), against httpx.Client in 8 threads; "
        "async default ÷ sync: AsyncReconciler with an AsyncJobsClient of its own pool beside the Reconciler, "
        "8 at once each, the same sync no-op handler, in "
        f"{comparison_rounds} rounds of {comparison_jobs:,} jobs "
        "(the two passes back to back, the order alternating): the median of the per-round ratios of their rates, "
        "with the middle half and the range of those ratios; the two do the same work (the async default runs "
        "the same sync client in threads), so a tie — 1.0 within the middle half — counts as at least as fast. "
        f"Async default ÷ sync, as shipped: the two reconcilers at their default concurrency ({async_default} and "
        f"{sync_default}), each with a client of its own pool, against an emulator that waits "
        f"{reconcile.REMOTE_LATENCY * 1000:g} ms before each answer (an API across a network), "
        f"{remote_rounds} rounds of {remote_jobs:,} jobs timed alike."
        f" The other lines: median over {rounds} interleaved round(s) of pass rate / loop rate; requests counted "
        "by the client's request hook. The emulator (Python's http.server) answers both sides alike: on a small "
        "machine it sets much of the loop's rate, so the ratio, not the rate, is the figure."
    )
    rows = []
    results = reconcile.measure(
        jobs, rounds=rounds, comparison_rounds=comparison_rounds, comparison_jobs=comparison_jobs
    )
    results.append(reconcile.measure_remote(remote_jobs, remote_rounds))
    for result in results:
        if result.mode == "async-vs-sync-remote":
            rows.append(
                Row(
                    "11",
                    f"reconcile pass, async default ÷ sync, as shipped ({async_default} / {sync_default} at once), "
                    f"the API {reconcile.REMOTE_LATENCY * 1000:g} ms away",
                    f"AsyncReconciler {result.rate:,.0f} jobs/s",
                    f"Reconciler {result.loop_rate:,.0f} jobs/s",
                    f"{result.ratio:.2f}x sync (median of {len(result.ratios)} rounds; {result.spread})",
                    f"≥ {reconcile.TARGET_ASYNC_OVER_SYNC}x sync",
                    result.met,
                )
            )
            continue
        if result.is_comparison:
            rows.append(
                Row(
                    "11",
                    f"reconcile pass, async default ÷ sync, {result.concurrency} at once each",
                    f"AsyncReconciler {result.rate:,.0f} jobs/s",
                    f"Reconciler {result.loop_rate:,.0f} jobs/s",
                    f"{result.ratio:.3f}x sync (median of {len(result.ratios)} rounds; {result.spread})"
                    + (": a tie" if result.is_tie else ""),
                    f"≥ {reconcile.TARGET_ASYNC_OVER_SYNC}x sync, or a tie",
                    result.met,
                )
            )
            continue
        rows.append(
            Row(
                "11",
                f"reconcile pass, {result.mode}, {result.concurrency} at once",
                f"{result.rate:,.0f} jobs/s",
                f"bare httpx loop {result.loop_rate:,.0f} GETs/s",
                f"{result.ratio:.2f}x the loop, {result.requests_per_job:.2f} requests per open job",
                f"≥ {reconcile.TARGET_RATIO}x the loop, 1 request per open job",
                result.met,
            )
        )
    return rows


def scaling_section(settings: Settings) -> str:
    """The scaling table (its own section of the report): inbox acknowledgements against workers."""
    from . import scaling

    if settings.quick:
        points = scaling.measure(rounds=1, duration=1.0, warmup=1.0, feed_size=20_000, workers=(1, 2))
    else:
        points = scaling.measure()
    return "\n".join(
        [
            "## Scaling: inbox acknowledgements against uvicorn workers",
            "",
            scaling.table(points),
            "",
            "The Starlette app of row 10 in inbox mode under `uvicorn --workers N` (each worker process with its "
            "embedded inbox worker running the handlers) with the SQLite inbox (`synchronous=FULL`), the Redis inbox "
            "(a real redis-server, `appendonly yes`, fsync every second) and the PostgreSQL inbox (a real cluster, "
            "`fsync` and `synchronous_commit` on); wrk -t1 -c16 --latency, the three worker counts of one backend "
            "in rotating rounds, each round followed by draining that server's inbox (the last column: how long its "
            "handlers took to catch up), medians of rounds. What limits each curve: docs/performance.md.",
            "",
        ]
    )


# -- the report -----------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tool_version(argv: list[str]) -> str:
    try:
        output = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    return (output.stdout or output.stderr).strip().splitlines()[0]


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = (
        *("kreuzberg-webhooks", "standardwebhooks", "svix", "stripe", "fastapi", "starlette", "uvicorn"),
        *("uvloop", "httptools", "flask", "werkzeug", "django", "gunicorn", "redis"),
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{model}, {os.cpu_count()} cores",
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {_version(name)}" for name in packages),
        "tools": f"{_tool_version(['redis-server', '--version'])}; {_tool_version(['wrk', '--version'])}",
    }


def table(rows: list[Row]) -> str:
    lines = [
        "| # | measurement | ours | floor / peer | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "—"}[row.met]
        lines.append(
            f"| {row.number} | {row.measurement} | {row.ours} | {row.other} | {row.ratio} | {row.target} | {met} |"
        )
    return "\n".join(lines)


def report(rows: list[Row], notes: list[str], info: dict[str, str], settings: Settings, elapsed: float) -> str:
    mode = " (quick smoke run: one round each, figures not meaningful)" if settings.quick else ""
    return "\n".join(
        [
            f"# Benchmark results{mode}",
            "",
            "Written by `benchmarks/run` (`python -m benchmarks`); how to read it: docs/performance.md.",
            "",
            f"- Date: {info['date']} (the run took {elapsed:.0f} s)",
            f"- Machine: {info['cpu']}; {info['os']} (shared with other work: hence many short interleaved rounds)",
            f"- Python {info['python']}",
            f"- Packages: {info['packages']}",
            f"- Tools: {info['tools']}",
            "",
            table(rows),
            "",
            "## How",
            "",
            *(f"- {note}" for note in notes),
            "- The floor is what a hand-written receiver must do at the very least: "
            '`"sha256=" + hmac.new(key, body, sha256).hexdigest()`, `hmac.compare_digest`, `json.loads`. '
            "It has no types, no replay window and no deduplication.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="run each benchmark once (the smoke test)")
    parser.add_argument("--output", type=Path, help="where to write the results (default: benchmarks/RESULTS.md)")
    parser.add_argument("--no-http", action="store_true", help="skip rows 6-8 (the servers and wrk)")
    parser.add_argument(
        "--no-scaling", action="store_true", help="skip the scaling table (inbox workers; the longest section)"
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    output = args.output or (None if args.quick else HERE / "RESULTS.md")
    ensure_tools()
    started = time.monotonic()
    notes: list[str] = []
    rows: list[Row] = []
    steps = [
        ("rows 1-4: verification", lambda: micro_rows(settings, notes)),
        ("row 5: peak memory", lambda: memory_row(settings, notes)),
        ("row 9: stores", lambda: store_rows(settings, notes)),
        ("row 11: reconciling tracked jobs against the emulator", lambda: reconcile_rows(settings, notes)),
    ]
    if not args.no_http:
        steps.insert(2, ("rows 6-8: HTTP under uvicorn / gunicorn with wrk", lambda: http_rows(settings, notes)))
        steps.append(("row 10: the SQLite inbox's acknowledgements", lambda: inbox_rows(settings, notes)))
    for title, step in steps:
        print(f"… {title}", flush=True)
        rows.extend(step())
    rows.sort(key=lambda row: int(row.number.split()[0]))
    scaling = ""
    if not (args.no_http or args.no_scaling):
        print("… scaling: the inboxes' acknowledgements with 1, 2 and 4 uvicorn workers", flush=True)
        scaling = scaling_section(settings)
    elapsed = time.monotonic() - started
    text = report(rows, notes, machine(), settings, elapsed) + (f"\n{scaling}" if scaling else "")
    print()
    print(table(rows))
    if scaling:
        print()
        print(scaling)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
