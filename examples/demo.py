"""The demo: a real receiver on 127.0.0.1 receiving real signed deliveries, then the whole loop
on a local Kreuzberg Cloud.

Part 1 starts ``examples/starlette_app.py`` under uvicorn on a free loopback port,
sends it five deliveries over HTTP — a valid one, the same one again, a forged
one, a stale one and one with a status Kreuzberg might add later — prints what
each got back and what the handler saw, checks every answer against
docs/contract.md §4, and stops the server.

Part 2 starts the emulator (``kreuzberg_webhooks.emulator``) and the same app
pointed at it: documents go in through the app's ``POST /extract``, the emulator
drops some of their webhooks on purpose and sends others twice, and the app's
reconciler fetches the jobs whose webhook never came. Every job's text must be
stored exactly once; a table says which way each one came. The demo exits 0
only if everything matched.

Run it with ``scripts/demo`` (which installs what it needs), or
``python examples/demo.py`` in an environment that has the package and uvicorn.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kreuzberg_webhooks import ReplayWindow, sign
from kreuzberg_webhooks.emulator import Emulator, Faults
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery

EXAMPLES = Path(__file__).resolve().parent
PATH = "/webhooks/kreuzberg"


@dataclass
class Case:
    """One delivery and the answer the contract promises for it."""

    name: str
    body: bytes
    headers: dict[str, str]
    status: int
    answer: str  # "processed", "duplicate", or the error's reason code
    why: str


@dataclass
class Reply:
    status: int
    answer: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    """Run the Starlette example under uvicorn until the block ends."""
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLES), "starlette_app:app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not listen on 127.0.0.1:{port} within 30 s")
            time.sleep(0.05)
        yield
    finally:
        # The server has its own process group: its workers stop with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def post(port: int, body: bytes, headers: dict[str, str]) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", PATH, body, headers)
        response = conn.getresponse()
        data: dict[str, Any] = json.loads(response.read())
        return Reply(response.status, str(data.get("status") or data.get("error")))
    finally:
        conn.close()


def cases(secret: str) -> list[Case]:
    now = time.time()
    valid = job_event_payload(now=now)
    body, headers = signed_delivery(secret, valid)
    # The sender's retry of the same event: a new attempt_count, signed again.
    retry_body, retry_headers = signed_delivery(secret, dict(valid, attempt_count=2))
    forged_headers = dict(headers, **{"X-Webhook-Signature": sign(body, "a forger's guess at the secret 0123")})
    stale_age = ReplayWindow().max_age + 3600  # an hour past the default replay window
    stale = job_event_payload(now=now - stale_age)
    stale_body, stale_headers = signed_delivery(secret, stale)
    future_kind = job_event_payload(now=now, status="archived")
    new_body, new_headers = signed_delivery(secret, future_kind)
    return [
        Case("valid delivery", body, headers, 200, "processed", "the handler runs once"),
        Case("the same event again", retry_body, retry_headers, 200, "duplicate", "acknowledged, never redone"),
        Case("forged signature", body, forged_headers, 401, "signature_mismatch", "the handler never sees it"),
        Case(
            f"stale timestamp ({stale_age / 3600:g} h old)",
            stale_body,
            stale_headers,
            400,
            "stale_timestamp",
            "a replayed capture",
        ),
        Case("unknown status 'archived'", new_body, new_headers, 200, "processed", "new kinds are never dropped"),
    ]


def main() -> int:
    secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="kreuzberg-demo-") as tmp:
        events_log = Path(tmp) / "events.jsonl"
        env = {
            "KREUZBERG_WEBHOOK_SECRET": secret,
            "KREUZBERG_EVENTS_LOG": str(events_log),
            "KREUZBERG_STORE_URL": f"sqlite:///{Path(tmp) / 'replay.sqlite3'}",
            "KREUZBERG_REDIS_URL": "",
        }
        port = free_port()
        todo = cases(secret)
        print(f"Serving examples/starlette_app.py with uvicorn (2 workers) on http://127.0.0.1:{port}{PATH}\n")
        replies: list[Reply] = []
        with serve(port, env, Path(tmp) / "server.log"):
            for case in todo:
                replies.append(post(port, case.body, case.headers))
        print("Server stopped.\n")

        failures = 0
        print(f"   {'delivery':<28} {'got back':<24} {'contract says':<24} why")
        for case, reply in zip(todo, replies, strict=True):
            ok = (reply.status, reply.answer) == (case.status, case.answer)
            failures += not ok
            got = f"{reply.status} {reply.answer}"
            expected = f"{case.status} {case.answer}"
            print(f"{'ok' if ok else '!!'} {case.name:<28} {got:<24} {expected:<24} {case.why}")

        seen = [json.loads(line) for line in events_log.read_text().splitlines()] if events_log.exists() else []
        print("\nWhat the handler saw (one JSON line per processed event, from KREUZBERG_EVENTS_LOG):")
        for line in seen:
            print(f"   {json.dumps(line)}")
        expected_seen = [json.loads(todo[0].body)["event_id"], json.loads(todo[4].body)["event_id"]]
        if [line["event_id"] for line in seen] != expected_seen:
            failures += 1
            print("!! the handler should have seen exactly the valid delivery and the unknown status, once each")

    failures += the_whole_loop(secret)
    if failures:
        print(f"\nFAILED: {failures} check(s) did not match the contract.")
        return 1
    print("\nEvery answer matched docs/contract.md §4, and the handler ran exactly once per new event and per job.")
    return 0


DOCUMENTS = [
    ("invoice-2031.txt", "Invoice 2031: 3 x widgets, total 1,234.56 EUR"),
    ("contract.txt", "This agreement is made between the parties named below, " * 3),
    ("minutes.txt", "Minutes of the board meeting: budget approved, hiring paused."),
    ("receipt.txt", "Receipt: coffee 3.20, croissant 2.10"),
    ("report-q3.txt", "Quarterly report: revenue up 12 %, costs flat. " * 5),
    ("letter.txt", "Dear customer, your order has shipped."),
    ("memo.txt", "Memo: the office is closed on Friday."),
    ("notes.txt", "Notes: call the supplier about the delayed parts."),
]


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one ``file`` field."""
    boundary = secrets.token_hex(12)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def the_whole_loop(secret: str) -> int:
    """Part 2: documents in, some webhooks lost on purpose, every text stored exactly once. Returns failures."""
    api_key = secrets.token_urlsafe(24)
    faults = Faults(drop=0.4, duplicate=0.25)
    with (
        tempfile.TemporaryDirectory(prefix="kreuzberg-demo-cloud-") as tmp,
        Emulator(api_key, job_delay=0.5, time_scale=0.01, faults=faults, seed=2033) as cloud,
    ):
        events_log = Path(tmp) / "events.jsonl"
        port = free_port()
        env = {
            "KREUZBERG_WEBHOOK_SECRET": secret,
            "KREUZBERG_EVENTS_LOG": str(events_log),
            "KREUZBERG_STORE_URL": f"sqlite:///{Path(tmp) / 'replay.sqlite3'}",
            "KREUZBERG_REDIS_URL": "",
            "KREUZBERG_API_URL": cloud.base_url,
            "KREUZBERG_API_KEY": api_key,
            "KREUZBERG_WEBHOOK_URL": f"http://127.0.0.1:{port}{PATH}",
            "KREUZBERG_RECONCILE_INTERVAL": "0.5",
            "KREUZBERG_RECONCILE_AFTER": "2",
        }
        print(f"\n--- Part 2: the whole loop on a local Kreuzberg Cloud (the emulator, {cloud.base_url}) ---\n")
        print(
            f"The app gets {len(DOCUMENTS)} documents on POST /extract and submits each with a webhook block; "
            f"the emulator drops {faults.drop:.0%} of the webhooks on purpose and sends {faults.duplicate:.0%} twice; "
            "the app's reconciler (every 0.5 s, after a 2 s grace) fetches the jobs no webhook closed.\n"
        )
        texts: dict[str, tuple[str, str]] = {}
        with serve(port, env, Path(tmp) / "server.log"):
            for filename, text in DOCUMENTS:
                body, content_type = multipart(filename, text.encode())
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    conn.request("POST", "/extract", body, {"Content-Type": content_type})
                    response = conn.getresponse()
                    answer = json.loads(response.read())
                finally:
                    conn.close()
                if response.status != 202:
                    print(f"!! POST /extract answered {response.status}: {answer}")
                    return 1
                texts[answer["job_ids"][0]] = (filename, text)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not set(texts) <= {line["job_id"] for line in _lines(events_log)}:
                time.sleep(0.1)
            cloud.wait_for_webhooks(30)
            time.sleep(1.0)  # late duplicates and one more reconcile pass: nothing may be stored twice
        lines = _lines(events_log)
        fate = {event.job_id: event for event in cloud.events}

    failures = 0
    print(f"   {'document':<18} {'job':<10} {'chars':>5} {'stored':>7}  {'times':>5}  {'came by':<10} webhook")
    for job_id, (filename, text) in texts.items():
        stored = [line for line in lines if line["job_id"] == job_id]
        event = fate.get(job_id)
        webhook = "never sent (dropped on purpose)" if event is None or event.outcome == "dropped" else "delivered"
        if event is not None and event.duplicate and event.outcome == "delivered":
            webhook += ", then sent again (duplicate)"
        good = len(stored) == 1 and stored[0]["content_length"] == len(text)
        failures += not good
        way = stored[0]["via"] if stored else "-"
        length = stored[0]["content_length"] if stored else "-"
        mark = "  " if good else "X "
        row = f"{filename:<18} {job_id[:8]:<10} {len(text):>5} {length!s:>7}  {len(stored):>5}  {way:<10} {webhook}"
        print(f"{mark} {row}")
    came = Counter(line["via"] for line in lines)
    print(
        f"\n{len(texts)} documents, {sum(e.outcome == 'dropped' for e in fate.values())} webhooks never sent, "
        f"{sum(e.duplicate and e.outcome == 'delivered' for e in fate.values())} sent twice: "
        f"{len(lines)} texts stored ({came['webhook']} by webhook, {came['reconcile']} by the reconciler)."
    )
    if failures:
        print(f"XX {failures} job(s) not stored exactly once with their whole text")
    return failures


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


if __name__ == "__main__":
    sys.exit(main())
