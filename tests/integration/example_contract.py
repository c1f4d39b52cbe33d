"""What every example receiver answers over real HTTP, whatever its framework and server.

Each example's integration module subclasses :class:`ExampleContract` and
defines a module-scoped ``example`` fixture that starts its server (with the
environment of :func:`example_env`) through :func:`serve_example`. The
examples' events logs are the ground truth for "handled exactly once".
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import sign
from kreuzberg_webhooks.testing import (
    EVENT_TYPES,
    job_event_payload,
    new_ulid,
    payload_for_event,
    signed_delivery,
    statuses_for_event,
    webhook_event_payload,
)
from tests.servers import Reply, Server, free_port, http_request, run_server

SECRET = "integration-secret-0123456789abcdef0123"
LIMIT = 4096
PATH = "/webhooks/kreuzberg"


@dataclass
class Example:
    server: Server
    events_log: Path

    @property
    def url(self) -> str:
        return self.server.url + PATH

    def post(self, body: bytes | Iterator[bytes], headers: Any) -> Reply:
        return http_request(self.url, "POST", body, headers)

    def logged(self, event_id: str) -> list[dict[str, Any]]:
        if not self.events_log.exists():
            return []
        lines = [json.loads(line) for line in self.events_log.read_text().splitlines()]
        return [line for line in lines if line["event_id"] == event_id]


def example_env(tmp: Path) -> dict[str, str]:
    """The environment every example reads (examples/_shared.py), with its files under *tmp*."""
    return {
        "KREUZBERG_WEBHOOK_SECRET": SECRET,
        "KREUZBERG_EVENTS_LOG": str(tmp / "events.jsonl"),
        "KREUZBERG_STORE_URL": f"sqlite:///{tmp / 'replay.sqlite3'}",  # absolute: sqlite:////tmp/...
        "KREUZBERG_MAX_BODY_SIZE": str(LIMIT),  # keeps the 413 cases cheap
        "KREUZBERG_REDIS_URL": "",
    }


@contextlib.contextmanager
def serve_example(argv: Callable[[int], list[str]], tmp: Path, env: Mapping[str, str]) -> Iterator[Example]:
    """Run ``argv(port)`` on a free port until the block ends; its events log is ``tmp/events.jsonl``."""
    port = free_port()
    # The working directory is the temporary one: nothing is written into the checkout.
    with run_server(argv(port), port=port, env=env, cwd=tmp, log=tmp / "server.log") as server:
        yield Example(server, tmp / "events.jsonl")


#: Every webhook family the vendor sends (and one it may send tomorrow): (event, status, job_id).
FAMILY_IDS = [
    *[(event, None, None) for event in EVENT_TYPES],
    ("crawl.completed partial_success", "partial_success", None),
    ("job.completed RAG job (ULID)", None, new_ulid()),
    ("document.indexed (unknown)", None, None),
]
FAMILIES = [(name.split(" ")[0], status, job_id) for name, status, job_id in FAMILY_IDS]


def deliver(**overrides: Any) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    payload = job_event_payload(**overrides)
    body, headers = signed_delivery(SECRET, payload)
    return body, headers, payload


def chunks(body: bytes, size: int = 1024) -> Iterator[bytes]:
    return iter([body[i : i + size] for i in range(0, len(body), size)])


class ExampleContract:
    """The scenarios; a subclass runs them against its module's ``example`` fixture."""

    #: The JSON ``error`` of the 405 answer to a GET; None where the framework answers it in its own words.
    get_error: str | None = "method_not_allowed"

    def test_valid_delivery_is_processed_once_and_logged(self, example: Example) -> None:
        body, headers, payload = deliver()
        reply = example.post(body, headers)
        assert reply.status == 200, (reply, example.server.output())
        assert json.loads(reply.body) == {"status": "processed"}
        assert example.logged(payload["event_id"]) == [
            {
                "event_id": payload["event_id"],
                "type": "job.completed",
                "job_id": payload["job_id"],
                "status": "completed",
            }
        ]

    def test_t_signed_webhook_event_is_processed_once(self, example: Example) -> None:
        # The inline webhook's format (docs/contract.md §2): a WebhookEvent signed t=<now>,v1=<hex>.
        payload = webhook_event_payload()
        body, headers = signed_delivery(SECRET, payload)
        assert headers["X-Webhook-Signature"].startswith("t=")
        first = example.post(body, headers)
        # The sender's retry, signed afresh; a 429 (a guard that settles after its answer
        # is sent may still hold the claim) is retried, as the sender does.
        deadline = time.monotonic() + 10
        again = example.post(*signed_delivery(SECRET, payload))
        while again.status == 429 and time.monotonic() < deadline:
            again = example.post(*signed_delivery(SECRET, payload))
        assert (first.status, again.status) == (200, 200), (first, again, example.server.output())
        assert [json.loads(first.body), json.loads(again.body)] == [{"status": "processed"}, {"status": "duplicate"}]
        assert example.logged(payload["event_id"]) == [
            {
                "event_id": payload["event_id"],
                "type": "job.completed",
                "job_id": payload["job_id"],
                "status": "completed",
            }
        ]

    @pytest.mark.parametrize(("event", "status", "job_id"), FAMILIES, ids=[case[0] for case in FAMILY_IDS])
    def test_every_family_sent_twice_is_handled_once(
        self, example: Example, event: str, status: str | None, job_id: str | None
    ) -> None:
        # Each body as the vendor's SDK builds it, signed t=<now>,v1=<hex>; the retry signed afresh.
        overrides = {} if job_id is None else {"job_id": job_id}
        payload = payload_for_event(event, status=status, **overrides)
        first = example.post(*signed_delivery(SECRET, payload))
        again = self.retry(example, payload)
        assert (first.status, again.status) == (200, 200), (first, again, example.server.output())
        assert [json.loads(first.body), json.loads(again.body)] == [{"status": "processed"}, {"status": "duplicate"}]
        identity = payload.get("job_id") or payload.get("crawl_job_id") or payload.get("auto_tune_job_id")
        implied = statuses_for_event(event)  # a job event's status is its event's; an unknown event has none
        status = payload.get("status", implied[0] if implied else None)
        assert example.logged(payload["event_id"]) == [
            {"event_id": payload["event_id"], "type": event, "job_id": identity, "status": status}
        ]

    def retry(self, example: Example, payload: dict[str, Any]) -> Reply:
        """The sender's retry, signed afresh; a 429 (a guard that settles after its answer is
        sent may still hold the claim) is retried, as the sender does."""
        deadline = time.monotonic() + 10
        again = example.post(*signed_delivery(SECRET, payload))
        while again.status == 429 and time.monotonic() < deadline:
            again = example.post(*signed_delivery(SECRET, payload))
        return again

    def test_same_delivery_again_is_2xx_and_not_logged_twice(self, example: Example) -> None:
        body, headers, payload = deliver()
        first = example.post(body, headers)
        again = example.post(body, headers)
        assert (first.status, again.status) == (200, 200)
        assert json.loads(again.body) == {"status": "duplicate"}
        assert len(example.logged(payload["event_id"])) == 1

    def test_forged_delivery_is_401(self, example: Example) -> None:
        body, headers, payload = deliver()
        headers["X-Webhook-Signature"] = sign(body, "forger-secret-0123456789abcdef012345")
        reply = example.post(body, headers)
        assert reply.status == 401
        assert json.loads(reply.body)["error"] == "signature_mismatch"
        assert example.logged(payload["event_id"]) == []

    def test_two_signature_header_lines_are_401(self, example: Example) -> None:
        # Joined with ", " by the server (WSGI) or the adapter (ASGI): never a valid signature.
        body, headers, payload = deliver()
        lines = [*headers.items(), ("X-Webhook-Signature", headers["X-Webhook-Signature"])]
        reply = example.post(body, lines)
        assert reply.status == 401
        assert json.loads(reply.body)["error"] == "malformed_signature"
        assert example.logged(payload["event_id"]) == []

    def test_over_limit_body_is_413_and_the_server_stays_healthy(self, example: Example) -> None:
        body, headers, _ = deliver(padding="x" * (LIMIT * 4))
        reply = example.post(body, headers)
        assert reply.status == 413
        assert json.loads(reply.body)["error"] == "payload_too_large"
        body, headers, payload = deliver()
        assert example.post(body, headers).status == 200
        assert len(example.logged(payload["event_id"])) == 1

    def test_over_limit_chunked_body_is_413_and_the_server_stays_healthy(self, example: Example) -> None:
        body, headers, _ = deliver(padding="x" * (LIMIT * 4))
        reply = example.post(chunks(body), headers)
        assert reply.status == 413
        assert json.loads(reply.body)["error"] == "payload_too_large"
        body, headers, _ = deliver()
        assert example.post(body, headers).status == 200

    def test_chunked_body_without_content_length_is_processed(self, example: Example) -> None:
        body, headers, payload = deliver()
        reply = example.post(chunks(body, 50), headers)  # Transfer-Encoding: chunked, no Content-Length
        assert reply.status == 200, reply
        assert len(example.logged(payload["event_id"])) == 1

    def test_stale_timestamp_is_400(self, example: Example) -> None:
        body, headers, payload = deliver(timestamp=int(time.time()) - 3 * 24 * 3600)
        reply = example.post(body, headers)
        assert reply.status == 400
        assert json.loads(reply.body)["error"] == "stale_timestamp"
        assert example.logged(payload["event_id"]) == []

    def test_unknown_status_is_2xx_and_logged(self, example: Example) -> None:
        body, headers, payload = deliver(status="archived", region="eu-2")
        reply = example.post(body, headers)
        assert reply.status == 200
        assert [line["status"] for line in example.logged(payload["event_id"])] == ["archived"]

    def test_get_is_405(self, example: Example) -> None:
        reply = http_request(example.url, "GET")
        assert reply.status == 405
        assert reply.headers["allow"] == "POST"
        if self.get_error is not None:
            assert json.loads(reply.body)["error"] == self.get_error

    def test_a_delivery_to_a_path_it_does_not_serve_is_never_acknowledged(self, example: Example) -> None:
        # A 2xx there would tell a mistyped sender its events arrived.
        body, headers, payload = deliver()
        for path in (PATH + "x", PATH + "/extra", "/webhook/kreuzberg", "/nowhere"):
            reply = http_request(example.server.url + path, "POST", body, headers)
            assert reply.status == 404, (path, reply)
        assert not 200 <= http_request(example.server.url + "/", "POST", body, headers).status < 300
        assert example.logged(payload["event_id"]) == []
        assert example.post(body, headers).status == 200  # the right path still takes it

    def test_fifty_concurrent_copies_run_the_handler_exactly_once(self, example: Example) -> None:
        body, headers, payload = deliver()
        with ThreadPoolExecutor(max_workers=50) as pool:
            replies = list(pool.map(lambda _: example.post(body, headers), range(50)))
        statuses = sorted(reply.status for reply in replies)
        assert all(200 <= status < 300 or status == 429 for status in statuses), statuses
        processed = [
            reply for reply in replies if reply.status == 200 and json.loads(reply.body) == {"status": "processed"}
        ]
        assert len(processed) == 1  # the others were acknowledged as duplicates or told to retry
        for reply in replies:
            if reply.status == 429:
                assert int(reply.headers["retry-after"]) >= 1
        assert len(example.logged(payload["event_id"])) == 1
