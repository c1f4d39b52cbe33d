"""The emulator: a real HTTP server on 127.0.0.1 that behaves like Kreuzberg Cloud's jobs API and webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import ConfigurationError, JobEvent, Verifier
from kreuzberg_webhooks.emulator import Emulator, Faults
from kreuzberg_webhooks.emulator.multipart import FormError, parse_form
from kreuzberg_webhooks.events import WebhookEvent
from tests.cloud.support import running_sink
from tests.servers import free_port, run_server

pytestmark = pytest.mark.slow

KEY = "emulator-test-key-0123456789"
SECRET = "emulator-test-webhook-secret-0123456789abcdef"


def api(emulator: Emulator, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def poll_until_terminal(client: httpx.Client, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if document["status"] in ("completed", "partial_success", "failed", "cancelled"):
            return document
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def test_extract_answers_202_and_the_job_ends_with_the_uploaded_text() -> None:
    data = b"first line\r\nsecond line \xe2\x82\xac"
    with Emulator(KEY, job_delay=0.2) as emulator, api(emulator) as client:
        response = client.post("/v1/extract", files=[("file", ("note.txt", data, "text/plain"))])
        assert response.status_code == 202
        answer = response.json()
        assert answer["status"] == "pending"
        [job_id] = answer["job_ids"]
        first = client.get(f"/v1/jobs/{job_id}").json()
        assert first["status"] in ("pending", "processing")
        assert "result" not in first
        document = poll_until_terminal(client, job_id)
    assert document["status"] == "completed"
    assert document["filename"] == "note.txt"
    assert document["result"]["content"] == data.decode()
    assert uuid.UUID(document["id"]) == uuid.UUID(job_id)


def test_an_extractor_gives_the_text_and_fails_what_it_cannot_read() -> None:
    def extractor(filename: str, data: bytes, mime_type: str) -> str:
        if filename.endswith(".bin"):
            raise ValueError("unsupported format")
        return data.decode().upper()

    with Emulator(KEY, job_delay=0, extractor=extractor) as emulator, api(emulator) as client:
        readable, unreadable = emulator.submit([("a.txt", b"shout"), ("b.bin", b"\x00")])
        first = poll_until_terminal(client, readable)
        second = poll_until_terminal(client, unreadable)
    assert first["result"]["content"] == "SHOUT"
    assert second["status"] == "failed"
    assert second["error"] == "ValueError: unsupported format"


def test_failed_jobs_have_no_result() -> None:
    with Emulator(KEY, job_delay=0, failure_rate=1.0) as emulator, api(emulator) as client:
        [job_id] = client.post("/v1/extract", files={"file": ("a.txt", b"x")}).json()["job_ids"]
        document = poll_until_terminal(client, job_id)
    assert document["status"] == "failed"
    assert "result" not in document


@pytest.mark.parametrize(
    ("path", "key", "status", "code"),
    [
        ("/v1/jobs/not-a-uuid", KEY, 400, "validation"),
        (f"/v1/jobs/{uuid.uuid4()}", KEY, 404, "job_not_found"),
        (f"/v1/jobs/{uuid.uuid4()}", "wrong-key", 401, "unauthorized"),
        ("/v1/jobs", "wrong-key", 401, "unauthorized"),
    ],
    ids=["malformed-id", "unknown-id", "bad-key", "bad-key-list"],
)
@pytest.mark.parametrize("style", ["envelope", "flat"])
def test_errors_in_both_body_styles(path: str, key: str, status: int, code: str, style: str) -> None:
    with Emulator(KEY, error_style=style) as emulator, api(emulator, key) as client:
        response = client.get(path)
    assert response.status_code == status
    error = response.json()["error"]
    if style == "flat":
        assert isinstance(error, str)
        assert error
    else:
        assert error["code"] == code


def test_a_stopped_emulator_answers_nothing_more_even_on_a_kept_alive_connection() -> None:
    emulator = Emulator(KEY).start()
    client = api(emulator)
    assert client.get("/v1/jobs").status_code == 200  # the connection is now kept alive
    emulator.stop()
    with pytest.raises(httpx.TransportError):
        client.get("/v1/jobs")
    client.close()


def test_list_jobs_pages_most_recent_first() -> None:
    with Emulator(KEY) as emulator, api(emulator) as client:
        ids = emulator.submit([(f"{n}.txt", b"x") for n in range(5)])
        page = client.get("/v1/jobs", params={"limit": 2, "offset": 1}).json()
        assert client.get("/v1/jobs", params={"limit": 0}).status_code == 400
    assert page["total"] == 5
    assert [job["id"] for job in page["jobs"]] == list(reversed(ids))[1:3]


def test_crawl_job_lists_one_child_job_per_url() -> None:
    urls = ["https://example.com/a", "https://example.com/b.pdf"]
    with Emulator(KEY, job_delay=0, status_case="upper") as emulator, api(emulator) as client:
        response = client.post("/v1/extract", json={"documents": [{"url": url} for url in urls]})
        [crawl_id] = response.json()["crawl_job_ids"]
        document = poll_until_terminal_upper(client, crawl_id)
    assert document["status"] == "COMPLETED"
    assert [child["source_url"] for child in document["jobs"]] == urls
    assert "filename" not in document


def poll_until_terminal_upper(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        document: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if document["status"] == "COMPLETED":
            return document
        time.sleep(0.02)
    raise AssertionError("crawl did not finish")


def test_dashboard_webhooks_verify_with_the_package() -> None:
    with running_sink() as sink, Emulator(KEY, webhook_url=sink.url, webhook_secret=SECRET, job_delay=0) as emulator:
        ids = emulator.submit([("a.txt", b"a"), ("b.txt", b"b")])
        received = sink.wait_for(2)
        assert emulator.wait_for_webhooks(10)
    verifier = Verifier(SECRET)
    events = [verifier.verify(got.body, got.headers) for got in received]
    assert all(isinstance(event, JobEvent) for event in events)
    assert sorted(str(event.job_id) for event in events) == sorted(ids)
    assert {str(event.project_id) for event in events} == {emulator.project_id}


def test_inline_webhook_is_a_timestamp_signed_event_with_results_and_metadata() -> None:
    inline_secret = "inline-secret-0123456789abcdef0123456789"
    with running_sink() as sink, Emulator(KEY, job_delay=0) as emulator, api(emulator) as client:
        webhook = {"url": sink.url, "secret": inline_secret, "metadata": {"request_id": "r-1"}}
        client.post("/v1/extract", files={"file": ("a.txt", b"hello")}, data={"webhook": json.dumps(webhook)})
        [got] = sink.wait_for(1)
    stamp, _, digest = got.headers["X-Webhook-Signature"].partition(",v1=")
    t = stamp.removeprefix("t=")
    expected = hmac.new(inline_secret.encode(), f"{t}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(digest, expected)
    event = Verifier(inline_secret).verify(got.body, got.headers)  # the package reads the vendor's format
    assert isinstance(event, WebhookEvent)
    assert event.has_inline_results
    assert event.result is not None
    assert event.result.content == "hello"
    payload = got.payload
    assert payload["event"] == "job.completed"
    assert payload["metadata"] == {"request_id": "r-1"}
    assert payload["results"]["content"] == "hello"


def test_inline_document_format_carries_the_full_job_document() -> None:
    with running_sink() as sink, Emulator(KEY, job_delay=0, inline_format="document") as emulator:
        [job_id] = emulator.submit([("a.txt", b"hi")], webhook=_config(sink.url))
        [got] = sink.wait_for(1)
    event = Verifier(SECRET).verify(got.body, got.headers)
    assert str(event.job_id) == job_id
    assert got.payload["result"]["content"] == "hi"


def _config(url: str) -> Any:
    from kreuzberg_webhooks.emulator import WebhookConfig

    return WebhookConfig(url, SECRET, {"k": "v"})


def test_dropped_webhooks_are_never_sent_and_duplicates_are_sent_twice() -> None:
    with running_sink() as sink:
        faults = Faults(drop=1.0)
        with Emulator(KEY, webhook_url=sink.url, webhook_secret=SECRET, job_delay=0, faults=faults) as emulator:
            emulator.submit([("a.txt", b"a")] * 5)
            assert emulator.wait_for_webhooks(10)
            assert emulator.stats.webhooks_dropped == 5
        assert sink.received == []
        faults = Faults(duplicate=1.0)
        with Emulator(KEY, webhook_url=sink.url, webhook_secret=SECRET, job_delay=0, faults=faults) as emulator:
            emulator.submit([("a.txt", b"a")] * 3)
            received = sink.wait_for(6)
            assert emulator.wait_for_webhooks(10)
    attempts = sorted((got.payload["event_id"], got.payload["attempt_count"]) for got in received)
    assert [n for _, n in attempts] == [1, 2] * 3


def test_a_cancelled_job_announces_itself_once() -> None:
    with running_sink() as sink:
        emulator = Emulator(KEY, webhook_url=sink.url, webhook_secret=SECRET, job_delay=0.3)
        with emulator:
            [job_id] = emulator.submit([("a.txt", b"a")])
            assert emulator.cancel(job_id)
            assert emulator.wait_for_webhooks(10)  # past the job's original finish too
    [got] = sink.received
    assert got.payload["status"] == "cancelled"
    assert got.payload["job_id"] == job_id


def test_a_failing_receiver_gets_every_retry_then_the_event_is_dead_lettered() -> None:
    with running_sink(lambda _: 503) as sink:
        emulator = Emulator(KEY, webhook_url=sink.url, webhook_secret=SECRET, job_delay=0, time_scale=0.001)
        with emulator:
            emulator.submit([("a.txt", b"a")])
            received = sink.wait_for(5)
            assert emulator.wait_for_webhooks(10)
    assert [got.payload["attempt_count"] for got in received] == [1, 2, 3, 4, 5]
    assert emulator.events[0].outcome == "dead-lettered"


def test_a_permanent_4xx_stops_the_sender() -> None:
    with running_sink(lambda _: 400) as sink:
        emulator = Emulator(KEY, webhook_url=sink.url, webhook_secret=SECRET, job_delay=0, time_scale=0.001)
        with emulator:
            emulator.submit([("a.txt", b"a")])
            assert emulator.wait_for_webhooks(10)
    assert len(sink.received) == 1
    assert emulator.events[0].outcome == "rejected"


def test_concurrent_copies_leave_at_once() -> None:
    with running_sink() as sink:
        faults = Faults(concurrent=1.0)
        with Emulator(KEY, webhook_url=sink.url, webhook_secret=SECRET, job_delay=0, faults=faults) as emulator:
            emulator.submit([("a.txt", b"a")])
            received = sink.wait_for(2)
    assert received[0].body == received[1].body


def test_injected_api_errors_are_503_or_429_with_retry_after() -> None:
    with Emulator(KEY, faults=Faults(api_errors=1.0, retry_after=7), seed=1) as emulator, api(emulator) as client:
        responses = [client.get(f"/v1/jobs/{uuid.uuid4()}") for _ in range(20)]
    assert {response.status_code for response in responses} == {429, 503}
    assert all(r.headers["Retry-After"] == "7" for r in responses if r.status_code == 429)
    assert emulator.stats.api_faults == 20


@pytest.mark.parametrize(
    "options",
    [{"faults": Faults()}, {"failure_rate": 2.0}, {"inline_format": "xml"}, {"job_delay": -1.0}, {"time_scale": 0.0}],
    ids=["ok", "rate>1", "format", "delay<0", "scale=0"],
)
def test_settings_that_cannot_work_are_refused(options: dict[str, Any]) -> None:
    if options == {"faults": Faults()}:
        Emulator(KEY, **options)
        with pytest.raises(ConfigurationError):
            Faults(drop=1.5)
        return
    with pytest.raises(ConfigurationError):
        Emulator(KEY, **options)


def test_bad_uploads_get_a_400() -> None:
    with Emulator(KEY) as emulator, api(emulator) as client:
        no_file = client.post("/v1/extract", data={"other": "x"})
        bad_webhook = client.post("/v1/extract", files={"file": ("a", b"a")}, data={"webhook": '{"url": "ftp://x"}'})
        not_json = client.post("/v1/extract", content=b"{", headers={"Content-Type": "application/json"})
    assert [r.status_code for r in (no_file, bad_webhook, not_json)] == [400, 400, 400]


@settings(max_examples=60, deadline=None)
@given(
    files=st.lists(st.tuples(st.text(min_size=1, max_size=20), st.binary(max_size=300)), min_size=1, max_size=4),
    webhook=st.text(max_size=50),
)
def test_multipart_round_trip(files: list[tuple[str, bytes]], webhook: str) -> None:
    request = httpx.Request(
        "POST", "http://x/", files=[("file", (name, data)) for name, data in files], data={"webhook": webhook}
    )
    body = request.read()
    parts = parse_form(request.headers["Content-Type"], body)
    assert [(p.name, p.data) for p in parts] == [("webhook", webhook.encode()), *(("file", d) for _, d in files)]


def test_multipart_without_parts_is_refused() -> None:
    with pytest.raises(FormError):
        parse_form("multipart/form-data; boundary=x", b"nothing here")
    with pytest.raises(FormError):
        parse_form("text/plain", b"")


def test_emulate_command_serves_until_stopped_and_never_prints_the_key(tmp_path: Any) -> None:
    port = free_port()
    argv = ["python", "-m", "kreuzberg_webhooks", "emulate", "--port", str(port), "--api-key", KEY]
    with run_server(argv, port=port, log=tmp_path / "emulate.log") as server:
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"})
        [job_id] = client.post("/v1/extract", files={"file": ("a.txt", b"abc")}).json()["job_ids"]
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200
        client.close()
        server.proc.terminate()
        server.proc.wait(10)
    output = server.output()
    assert f"http://127.0.0.1:{port}" in output
    assert "1 jobs" in output
    assert KEY not in output
