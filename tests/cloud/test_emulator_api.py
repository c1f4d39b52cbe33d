"""The emulator as a stand-in for the vendor's own clients: the jobs API's current shapes, on a real server."""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks.emulator import Emulator, Faults, WebhookConfig
from tests.cloud.support import Received, running_sink

pytestmark = pytest.mark.slow

KEY = "emulator-api-test-key-0123456789"
TERMINAL = ("completed", "partial_success", "failed", "cancelled")


def api(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)


def poll(client: httpx.Client, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if document["status"] in TERMINAL:
            return document
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def shared() -> Iterator[Emulator]:
    with Emulator(KEY, job_delay=0.05) as emulator:
        yield emulator


def test_an_empty_webhook_url_is_no_webhook() -> None:
    with running_sink() as sink, Emulator(KEY, job_delay=0) as emulator, api(emulator) as client:
        response = client.post(
            "/v1/extract", files={"file": ("a.txt", b"a", "text/plain")}, data={"webhook": json.dumps({"url": ""})}
        )
        assert response.status_code == 202
        [job_id] = response.json()["job_ids"]
        document = poll(client, job_id)
        assert emulator.wait_for_webhooks(10)
    assert document["status"] == "completed"
    assert "webhook_delivery" not in document
    assert sink.received == []


def test_a_job_document_has_its_type_and_mime_type_and_no_result_until_done() -> None:
    with Emulator(KEY, job_delay=0.3) as emulator, api(emulator) as client:
        response = client.post("/v1/extract", files={"file": ("page.html", b"<p>hi</p>", "text/html")})
        [job_id] = response.json()["job_ids"]
        first = client.get(f"/v1/jobs/{job_id}").json()
        done = poll(client, job_id)
    assert (first["job_type"], first["mime_type"], first["status"]) == ("extraction", "text/html", "pending")
    assert "result" not in first
    assert "completed_at" not in first
    assert done["result"]["mime_type"] == "text/html"
    assert done["result"]["content"] == "<p>hi</p>"
    assert done["completed_at"].endswith("Z")
    assert done["child_job_ids"] == []


def test_a_failed_job_says_why_in_error() -> None:
    with Emulator(KEY, job_delay=0, failure_rate=1.0) as emulator, api(emulator) as client:
        [job_id] = client.post("/v1/extract", files={"file": ("a.pdf", b"%PDF")}).json()["job_ids"]
        document = poll(client, job_id)
    assert document["status"] == "failed"
    assert isinstance(document["error"], str)
    assert document["error"]
    assert "result" not in document


def test_json_documents_carry_base64_data_and_a_mime_type(shared: Emulator) -> None:
    data = "résumé\n".encode()
    body = {"documents": [{"data": base64.b64encode(data).decode(), "filename": "cv.txt", "mime_type": "text/plain"}]}
    with api(shared) as client:
        response = client.post("/v1/extract", json=body)
        assert response.status_code == 202
        [job_id] = response.json()["job_ids"]
        document = poll(client, job_id)
    assert (document["filename"], document["mime_type"]) == ("cv.txt", "text/plain")
    assert document["result"]["content"] == data.decode()


def test_json_urls_with_a_crawl_config_make_a_crawl_whose_children_name_it(shared: Emulator) -> None:
    urls = ["https://example.com/docs", "https://example.com/docs/a.html"]
    body = {"urls": [{"url": url, "crawl_config": {"max_depth": 1}} for url in urls]}
    with api(shared) as client:
        answer = client.post("/v1/extract", json=body).json()
        [crawl_id] = answer["crawl_job_ids"]
        crawl = poll(client, crawl_id)
        children = [client.get(f"/v1/jobs/{child['id']}").json() for child in crawl["jobs"]]
    assert crawl["job_type"] == "crawl"
    assert crawl["seed_urls"] == urls
    assert crawl["progress"]["documents_extracted"] == 2
    assert [child["source_url"] for child in children] == urls
    assert {child["parent_crawl_job_id"] for child in children} == {crawl_id}


def test_list_jobs_answers_summaries_by_limit_and_offset(shared: Emulator) -> None:
    ids = shared.submit([(f"{n}.txt", b"x", "text/plain") for n in range(4)])
    with api(shared) as client:
        page = client.get("/v1/jobs", params={"limit": 2, "offset": 1}).json()
        bad = client.get("/v1/jobs", params={"limit": "many"})
    assert (page["limit"], page["offset"]) == (2, 1)
    assert [summary["id"] for summary in page["jobs"]] == list(reversed(ids))[1:3]
    for summary in page["jobs"]:
        assert (summary["job_type"], summary["mime_type"]) == ("extraction", "text/plain")
        assert {"filename", "status", "created_at"} <= summary.keys()
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation"


def test_the_result_endpoint_answers_409_until_the_job_is_done() -> None:
    with Emulator(KEY, job_delay=0.3) as emulator, api(emulator) as client:
        [job_id] = emulator.submit([("a.txt", b"the text", "text/plain")])
        early = client.get(f"/v1/jobs/{job_id}/result")
        poll(client, job_id)
        result = client.get(f"/v1/jobs/{job_id}/result")
        unknown = client.get(f"/v1/jobs/{uuid.uuid4()}/result")
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "conflict"
    assert result.status_code == 200
    body = result.json()
    assert (body["job_id"], body["status"], body["cached"]) == (job_id, "completed", False)
    [document] = body["results"]
    assert document["content"] == "the text"
    assert document["counts"] == {"pages": 1, "tables": 0, "images": 0}
    assert unknown.status_code == 404


def test_delete_cancels_a_job_and_its_webhook_says_cancelled() -> None:
    with running_sink() as sink, Emulator(KEY, job_delay=5) as emulator, api(emulator) as client:
        files = {"file": ("a.txt", b"a", "text/plain")}
        webhook = json.dumps({"url": sink.url, "secret": "s" * 32})
        [job_id] = client.post("/v1/extract", files=files, data={"webhook": webhook}).json()["job_ids"]
        first = client.delete(f"/v1/jobs/{job_id}")
        again = client.delete(f"/v1/jobs/{job_id}")
        unknown = client.delete(f"/v1/jobs/{uuid.uuid4()}")
        [got] = sink.wait_for(1)
        document = client.get(f"/v1/jobs/{job_id}").json()
    assert (first.status_code, again.status_code, unknown.status_code) == (204, 204, 404)
    assert document["status"] == "cancelled"
    assert (got.payload["event"], got.payload["job_id"]) == ("job.cancelled", job_id)


def test_webhook_delivery_is_the_services_record_of_its_attempts() -> None:
    answers = iter([503, 503, 200])

    def answer(_: Received) -> int:
        return next(answers, 200)

    with running_sink(answer) as sink, Emulator(KEY, job_delay=0, time_scale=0.001) as emulator, api(emulator) as c:
        [job_id] = emulator.submit([("a.txt", b"a")], webhook=WebhookConfig(sink.url))
        assert emulator.wait_for_webhooks(10)
        delivered = c.get(f"/v1/jobs/{job_id}").json()["webhook_delivery"]
    with running_sink(lambda _: 410) as sink, Emulator(KEY, job_delay=0) as emulator, api(emulator) as client:
        [job_id] = emulator.submit([("a.txt", b"a")], webhook=WebhookConfig(sink.url))
        assert emulator.wait_for_webhooks(10)
        failed = client.get(f"/v1/jobs/{job_id}").json()["webhook_delivery"]
        summary = client.get("/v1/jobs").json()["jobs"][0]["webhook_delivery"]
    assert delivered == {"attempt_count": 3, "status": "delivered", "last_error": "HTTP 503 from receiver"}
    assert failed == {"attempt_count": 1, "status": "failed", "last_error": "HTTP 410 from receiver"}
    assert summary == failed


def test_inline_job_webhooks_carry_results_as_an_object_and_uuid_event_ids() -> None:
    with running_sink() as sink, Emulator(KEY, job_delay=0) as emulator:
        emulator.submit([("a.txt", b"inline", "text/plain")], webhook=WebhookConfig(sink.url, None, {"k": "v"}))
        [got] = sink.wait_for(1)
    payload = got.payload
    assert payload["results"]["content"] == "inline"
    assert payload["metadata"] == {"k": "v"}
    assert str(uuid.UUID(payload["event_id"])) == payload["event_id"]


def test_crawl_webhooks_are_the_crawl_family_with_partial_success() -> None:
    def extractor(filename: str, data: bytes, mime_type: str) -> str:
        if "broken" in filename:
            raise ValueError("unreadable page")
        return data.decode()

    urls = ["https://example.com/ok", "https://example.com/broken"]
    with running_sink() as sink, Emulator(KEY, job_delay=0, extractor=extractor) as emulator:
        crawl_id = emulator.submit_crawl(urls, WebhookConfig(sink.url, None, {"run": "7"}))
        [got] = sink.wait_for(1)
    payload = got.payload
    assert (payload["event"], payload["crawl_job_id"], payload["status"]) == (
        "crawl.completed",
        crawl_id,
        "partial_success",
    )
    assert "job_id" not in payload
    assert payload["progress"] == {
        "documents_discovered": 2,
        "documents_extracted": 1,
        "documents_failed": 1,
        "pages_crawled": 2,
    }
    uuid.UUID(payload["event_id"])


def test_a_crawl_whose_pages_all_fail_sends_crawl_failed_with_an_error() -> None:
    with running_sink() as sink, Emulator(KEY, job_delay=0, failure_rate=1.0) as emulator:
        emulator.submit_crawl(["https://example.com/x"], WebhookConfig(sink.url))
        [got] = sink.wait_for(1)
    assert (got.payload["event"], got.payload["status"]) == ("crawl.failed", "failed")
    assert set(got.payload["error"]) == {"code", "message"}


BAD_BODIES = [
    {"documents": 5},
    {"documents": True},
    {"documents": [5]},
    {"documents": [{"data": 5}]},
    {"documents": [{"data": "***not base64***"}]},
    {"documents": [{"content": "x", "filename": 7}]},
    {"urls": 5},
    {"urls": [{"url": 5}]},
    {"urls": [{"url": "ftp://example.com"}]},
    {"documents": [{"content": "x"}], "webhook": 5},
    {"documents": [{"content": "x"}], "webhook": {"url": "http://127.0.0.1/", "metadata": [1]}},
    {"documents": [{"content": "x"}], "webhook": {"url": "http://127.0.0.1/", "secret": 5}},
    {},
    [],
    "documents",
    None,
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=[json.dumps(b) for b in BAD_BODIES])
def test_every_malformed_submission_gets_a_400_in_the_vendors_envelope(shared: Emulator, body: Any) -> None:
    with api(shared) as client:
        response = client.post("/v1/extract", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation"
    assert isinstance(error["message"], str)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["documents", "urls", "webhook", "data", "url", "content", "mime_type", "filename"])
SHAPED = st.dictionaries(FIELDS, JSON | st.lists(st.dictionaries(FIELDS, JSON, max_size=4), max_size=2), max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=SHAPED | JSON)
def test_any_json_submission_is_answered_202_or_400(shared: Emulator, body: Any) -> None:
    with api(shared) as client:
        response = client.post("/v1/extract", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code in (202, 400)
    if response.status_code == 400:
        assert set(response.json()["error"]) == {"code", "message"}


def _raw_exchange(emulator: Emulator, request: bytes, timeout: float = 10.0) -> bytes:
    host, port = emulator.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_an_unfinished_body_is_cut_off_by_the_read_timeout() -> None:
    head = (
        f"POST /v1/extract HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    with Emulator(KEY, read_timeout=0.3) as emulator:
        answer = _raw_exchange(emulator, head + b'{"documents"')
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in answer


def test_a_malformed_content_length_gets_a_400_or_411_envelope(shared: Emulator) -> None:
    head = f"POST /v1/extract HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: -5\r\n\r\n"
    answer = _raw_exchange(shared, head.encode())
    assert answer.split(b" ", 2)[1] in (b"400", b"411")
    assert b'"error":{"code"' in answer


def test_an_idle_connection_is_closed_after_the_read_timeout() -> None:
    with Emulator(KEY, read_timeout=0.3) as emulator:
        host, port = emulator.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert sock.recv(1) == b""  # closed by the server, long before our own 10 s


def test_faults_can_answer_any_retry_after() -> None:
    with Emulator(KEY, faults=Faults(api_errors=1.0, retry_after="-3"), seed=2) as emulator, api(emulator) as client:
        answers = [client.get("/v1/jobs") for _ in range(12)]
    assert {r.headers["Retry-After"] for r in answers if r.status_code == 429} == {"-3"}


def test_a_cancelled_crawl_reads_cancelled_and_sends_no_crawl_webhook() -> None:
    with running_sink() as sink, Emulator(KEY, job_delay=1.0) as emulator, api(emulator) as client:
        crawl_id = emulator.submit_crawl(["https://example.com/a", "https://example.com/b"], WebhookConfig(sink.url))
        assert client.delete(f"/v1/jobs/{crawl_id}").status_code == 204
        assert emulator.wait_for_webhooks(10)  # every finish has run, the superseded ones too
        crawl = client.get(f"/v1/jobs/{crawl_id}").json()
        summary = client.get("/v1/jobs").json()["jobs"][0]
    assert crawl["status"] == "cancelled"
    assert {child["status"] for child in crawl["jobs"]} == {"cancelled"}
    assert summary["status"] == "cancelled"
    assert sink.received == []
