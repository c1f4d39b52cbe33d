"""The vendor's own clients against the emulator under its real server: every call of kreuzberg-cloud-sdk
0.3.1 and xberg-io-sdk 0.9.0's jobs surface works, and every body the emulator produces (job documents,
list summaries, results, errors and the inline webhooks it sends) parses with xberg-io-sdk's models."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kreuzberg_cloud as kc
import pytest
import xberg_io_sdk as xs
from xberg_io_sdk._generated_api.models import (
    CrawlWebhookEvent,
    ErrorResponse,
    GetJobResponseVariant0,
    GetJobResponseVariant1,
    JobResult,
    JobSummary,
    ListJobsResponse,
    WebhookEvent,
)

from kreuzberg_webhooks.emulator import Emulator, Faults, WebhookConfig
from tests.cloud.support import Sink, running_sink

pytestmark = pytest.mark.slow

KEY = "vendor-sdk-key-0123456789abcdef"
POLL = 0.02
UNKNOWN = "6f1c1d1e-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with running_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
def cloud() -> Iterator[Emulator]:
    with Emulator(KEY, job_delay=0.05, time_scale=0.001) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def failing() -> Iterator[Emulator]:
    with Emulator(KEY, job_delay=0.05, failure_rate=1.0) as emulator:
        yield emulator


@pytest.fixture
def note(tmp_path: Path) -> Path:
    path = tmp_path / "note.txt"
    path.write_text("hello from the vendor's client")
    return path


# -- kreuzberg-cloud-sdk 0.3.1 ------------------------------------------------------------


def test_kreuzberg_cloud_extract_get_and_wait(cloud: Emulator, note: Path) -> None:
    with kc.KreuzbergCloud(api_key=KEY, base_url=cloud.base_url) as client:
        job = client.extract(file=note)  # always sends a webhook part {"url": ""}
        assert job.status in ("pending", "processing")
        assert client.get_job(str(job.id)).id == job.id
        done = client.wait_for_job(str(job.id), poll_interval=POLL)
    assert done.status == "completed"
    assert done.result.content == "hello from the vendor's client"


def test_kreuzberg_cloud_batch_extract_and_wait_and_wait_for_jobs(cloud: Emulator, note: Path) -> None:
    with kc.KreuzbergCloud(api_key=KEY, base_url=cloud.base_url) as client:
        jobs = client.extract_batch([note, b"raw bytes"])
        waited = client.wait_for_jobs([str(job.id) for job in jobs], poll_interval=POLL)
        one = client.extract_and_wait(file=note, poll_interval=POLL)
    assert [job.status for job in waited] == ["completed", "completed"]
    assert [job.result.content for job in waited] == ["hello from the vendor's client", "raw bytes"]
    assert one.status == "completed"


def test_kreuzberg_cloud_returns_a_failed_job_with_its_reason(failing: Emulator, note: Path) -> None:
    with kc.KreuzbergCloud(api_key=KEY, base_url=failing.base_url) as client:
        job = client.extract_and_wait(file=note, poll_interval=POLL)
    assert job.status == "failed"
    assert job.additional_properties["error"]


def test_kreuzberg_cloud_sandbox_key_and_errors(cloud: Emulator, note: Path) -> None:
    with kc.KreuzbergCloud.from_sandbox(base_url=cloud.base_url) as sandboxed:
        assert sandboxed.extract_and_wait(file=note, poll_interval=POLL).status == "completed"
    with kc.KreuzbergCloud(api_key=KEY, base_url=cloud.base_url) as client, pytest.raises(kc.NotFoundError):
        client.get_job(UNKNOWN)
    with kc.KreuzbergCloud(api_key="wrong", base_url=cloud.base_url) as client, pytest.raises(kc.AuthError):
        client.extract(file=note)


def test_kreuzberg_cloud_async_client(cloud: Emulator, note: Path) -> None:
    async def run() -> list[str]:
        async with kc.AsyncKreuzbergCloud(api_key=KEY, base_url=cloud.base_url) as client:
            one = await client.extract_and_wait(file=note, poll_interval=POLL)
            jobs = await client.extract_batch([note, note])
            done = await client.wait_for_jobs([str(job.id) for job in jobs], poll_interval=POLL)
            fetched = await client.get_job(str(one.id))
            return [one.status, fetched.status, *(job.status for job in done)]

    assert asyncio.run(run()) == ["completed"] * 4


# -- xberg-io-sdk 0.9.0 ------------------------------------------------------------------


def test_xberg_extract_get_wait_and_result(cloud: Emulator, note: Path) -> None:
    with xs.XbergClient(api_key=KEY, base_url=cloud.base_url) as client:
        job = client.extract(file=note)
        assert job.mime_type == "text/plain"
        assert isinstance(client.get_job(str(job.id)), GetJobResponseVariant0)
        with pytest.raises(xs.XbergError) as early:
            client.get_job_result(str(job.id))
        done = client.wait_for_job(str(job.id), poll_interval=POLL)
        result = client.get_job_result(str(job.id))
    assert early.value.status_code == 409
    assert (done.status, done.result.content) == ("completed", "hello from the vendor's client")
    assert result.status == "completed"
    assert [document.content for document in result.results] == ["hello from the vendor's client"]


def test_xberg_extract_with_a_webhook_batch_and_wait_for_jobs(cloud: Emulator, sink: Sink, note: Path) -> None:
    with xs.XbergClient(api_key=KEY, base_url=cloud.base_url) as client:
        webhook = {"url": sink.url, "secret": "s" * 32, "metadata": {"order": "A-17"}}
        [job] = [client.extract(file=note, webhook=webhook)]
        batch = client.extract_batch([note, b"two"])
        waited = client.wait_for_jobs([str(j.id) for j in [job, *batch]], poll_interval=POLL)
        one = client.extract_and_wait(file=note, poll_interval=POLL)
        tracked = client.get_job(str(job.id))
    assert [j.status for j in waited] == ["completed"] * 3
    assert one.status == "completed"
    assert isinstance(tracked, GetJobResponseVariant0)
    assert tracked.webhook_delivery.attempt_count >= 1


def test_xberg_list_jobs_parses_as_the_sdks_list(cloud: Emulator) -> None:
    cloud.submit([("a.txt", b"a", "text/plain"), ("b.txt", b"b", "text/plain")])
    with xs.XbergClient(api_key=KEY, base_url=cloud.base_url) as client:
        page = ListJobsResponse.from_dict(client.list_jobs(limit=2, offset=0))
    assert (page.limit, page.offset, len(page.jobs)) == (2, 0, 2)
    assert page.total >= 2


def test_xberg_cancel_job_and_its_cancelled_webhook(sink: Sink) -> None:
    with Emulator(KEY, job_delay=30) as slow, xs.XbergClient(api_key=KEY, base_url=slow.base_url) as client:
        [job_id] = slow.submit([("a.txt", b"a")], webhook=WebhookConfig(sink.url))
        client.cancel_job(job_id)
        client.cancel_job(job_id)  # 204 whether pending or already terminal
        cancelled = client.get_job(job_id)
        with pytest.raises(xs.XbergError, match="cancelled"):
            client.wait_for_job(job_id, poll_interval=POLL)
        with pytest.raises(xs.NotFoundError):
            client.cancel_job(UNKNOWN)
        deadline = time.monotonic() + 10
        while not any(r.payload.get("job_id") == job_id for r in list(sink.received)):
            assert time.monotonic() < deadline, "no job.cancelled webhook"
            time.sleep(POLL)
    assert cancelled.status == "cancelled"
    [event] = [r.payload for r in sink.received if r.payload.get("job_id") == job_id]
    assert event["event"] == "job.cancelled"


def test_xberg_raises_on_a_failed_job_with_the_reason(failing: Emulator, note: Path) -> None:
    with xs.XbergClient(api_key=KEY, base_url=failing.base_url) as client, pytest.raises(xs.XbergError) as caught:
        client.extract_and_wait(file=note, poll_interval=POLL)
    assert "ended with status 'failed'" in str(caught.value)
    assert "could not be read" in str(caught.value)


def test_xberg_retries_through_injected_rate_limits(note: Path) -> None:
    faults = Faults(api_errors=0.4, retry_after=0)
    with Emulator(KEY, job_delay=0.05, faults=faults, seed=4) as flaky:
        with xs.XbergClient(api_key=KEY, base_url=flaky.base_url, retries=8) as client:
            job = client.extract_and_wait(file=note, poll_interval=POLL)
        assert flaky.stats.api_faults > 0
    assert job.status == "completed"


def test_xberg_crawl_and_json_documents_submitted_as_the_api_takes_them(cloud: Emulator) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    crawl = {"urls": [{"url": "https://example.com/docs", "crawl_config": {"max_depth": 1}}]}
    documents = {"documents": [{"data": base64.b64encode(b"json doc").decode(), "filename": "a.txt"}]}
    with httpx.Client(base_url=cloud.base_url, headers=headers) as raw:
        [crawl_id] = raw.post("/v1/extract", json=crawl).json()["crawl_job_ids"]
        [doc_id] = raw.post("/v1/extract", json=documents).json()["job_ids"]
    with xs.XbergClient(api_key=KEY, base_url=cloud.base_url) as client:
        deadline = time.monotonic() + 10
        while (crawl_job := client.get_job(crawl_id)).status not in ("completed", "partial_success", "failed"):
            assert time.monotonic() < deadline
            time.sleep(POLL)
        child = client.get_job(str(crawl_job.jobs[0].id))
        document = client.wait_for_job(doc_id, poll_interval=POLL)
    assert isinstance(crawl_job, GetJobResponseVariant1)
    assert crawl_job.progress.documents_extracted == 1
    assert isinstance(child, GetJobResponseVariant0)
    assert str(child.parent_crawl_job_id) == crawl_id
    assert document.result.content == "json doc"


def test_xberg_async_client(cloud: Emulator, note: Path) -> None:
    async def run() -> tuple[str, str, int, str]:
        async with xs.AsyncXbergClient(api_key=KEY, base_url=cloud.base_url) as client:
            job = await client.extract_and_wait(file=note, poll_interval=POLL)
            result = await client.get_job_result(str(job.id))
            page = await client.list_jobs(limit=3)
            doomed = await client.extract(file=note)
            await client.cancel_job(str(doomed.id))
            status = (await client.get_job(str(doomed.id))).status
            return job.status, result.status, len(page["jobs"]), status

    assert asyncio.run(run()) == ("completed", "completed", 3, "cancelled")


# -- every body the emulator produces, read with the SDK's models ---------------------------


def _get(client: httpx.Client, path: str) -> Any:
    return client.get(path).json()


def test_every_document_summary_result_error_and_webhook_parses_with_the_sdks_models() -> None:
    def extractor(filename: str, data: bytes, mime_type: str) -> str:
        if b"unreadable" in data or "broken" in filename:
            raise ValueError("unreadable")
        return data.decode()

    with (
        running_sink() as hooks,
        Emulator(KEY, job_delay=0.2, time_scale=0.001, extractor=extractor) as emulator,
        httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {KEY}"}) as client,
    ):
        webhook = WebhookConfig(hooks.url, "w" * 32, {"order": "A-1"})
        ok, bad, doomed = emulator.submit(
            [("a.txt", b"fine", "text/plain"), ("b.pdf", b"unreadable", "application/pdf"), ("c.txt", b"c")],
            webhook=webhook,
        )
        crawl_id = emulator.submit_crawl(["https://example.com/a", "https://example.com/broken"], webhook)
        failed_crawl = emulator.submit_crawl(["https://example.com/broken"], webhook)
        seen = [_get(client, f"/v1/jobs/{job_id}") for job_id in (ok, bad, doomed, crawl_id)]  # pending
        seen.append(_get(client, "/v1/jobs"))
        early_result = client.get(f"/v1/jobs/{ok}/result")
        emulator.cancel(doomed)
        assert emulator.wait_for_webhooks(20)
        documents = [_get(client, f"/v1/jobs/{job_id}") for job_id in (ok, bad, doomed, crawl_id, failed_crawl)]
        children = [_get(client, f"/v1/jobs/{child['id']}") for child in documents[3]["jobs"]]
        listing = _get(client, "/v1/jobs?limit=100")
        result = _get(client, f"/v1/jobs/{ok}/result")
        errors = [
            client.get(f"/v1/jobs/{UNKNOWN}"),
            client.get("/v1/jobs/not-a-uuid"),
            client.post("/v1/extract", json={"documents": 5}),
            early_result,
            httpx.get(emulator.base_url + "/v1/jobs"),
        ]
    for document in [*seen[:4], *documents, *children]:
        model = GetJobResponseVariant1 if document["job_type"] == "crawl" else GetJobResponseVariant0
        assert model.from_dict(document).to_dict()["id"] == document["id"]
    for page in (seen[4], listing):
        assert len(ListJobsResponse.from_dict(page).jobs) == len(page["jobs"])
        for summary in page["jobs"]:
            JobSummary.from_dict(summary)
    assert JobResult.from_dict(result).results[0].content == "fine"
    assert [response.status_code for response in errors] == [404, 400, 400, 409, 401]
    for response in errors:
        assert ErrorResponse.from_dict(response.json()).error.code
    bodies = [received.payload for received in hooks.received]
    families = sorted(body["event"] for body in bodies)
    assert families == ["crawl.completed", "crawl.failed", "job.cancelled", "job.completed", "job.failed"]
    for body in bodies:
        if body["event"].startswith("crawl."):
            assert str(CrawlWebhookEvent.from_dict(body).crawl_job_id) == body["crawl_job_id"]
        else:
            assert WebhookEvent.from_dict(body).job_id == body["job_id"]
    assert str(uuid.UUID(documents[0]["id"])) == ok


def test_inline_document_webhooks_parse_as_the_sdks_job_documents() -> None:
    with running_sink() as hooks, Emulator(KEY, job_delay=0, inline_format="document") as emulator:
        [job_id] = emulator.submit([("a.txt", b"doc", "text/plain")], webhook=WebhookConfig(hooks.url))
        crawl_id = emulator.submit_crawl(["https://example.com/a"], WebhookConfig(hooks.url))
        received = hooks.wait_for(2)
    by_id = {received_.payload["id"]: received_.payload for received_ in received}
    assert GetJobResponseVariant0.from_dict(by_id[job_id]).result.content == "doc"
    assert GetJobResponseVariant1.from_dict(by_id[crawl_id]).status == "completed"
