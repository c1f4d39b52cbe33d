"""The jobs client against the emulator running as a real server on 127.0.0.1 (no patched transport)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kreuzberg_webhooks import ConfigurationError, CrawlJobDocument, JobDocument, JobStatus, parse_event
from kreuzberg_webhooks.cloud import (
    APIUnavailable,
    AsyncJobsClient,
    Backoff,
    InvalidAPIKey,
    InvalidJobId,
    JobNotFound,
    JobNotReady,
    JobsAPIError,
    JobsClient,
    JobTimeout,
    PermanentAPIError,
)
from kreuzberg_webhooks.emulator import Emulator, Faults
from kreuzberg_webhooks.testing import FrozenClock, job_event_payload
from tests.servers import free_port

pytestmark = pytest.mark.slow

KEY = "client-test-key-4f1c9a7e2b"
FAST = Backoff(initial=0.01, cap=0.05)


@pytest.fixture
def cloud() -> Iterator[Emulator]:
    with Emulator(KEY, job_delay=0.1) as emulator:
        yield emulator


def client_for(emulator: Emulator, **options: Any) -> JobsClient:
    return JobsClient(KEY, emulator.base_url, backoff=FAST, **options)


class FakeTime:
    """A clock the client's sleeps advance: retries over minutes run instantly."""

    def __init__(self) -> None:
        self.clock = FrozenClock(1000.0)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)


def test_wait_for_job_returns_the_same_typed_document_a_webhook_delivers(cloud: Emulator) -> None:
    [job_id] = cloud.submit([("a.txt", b"hello world")])
    with client_for(cloud) as client:
        document = client.wait_for_job(job_id, timeout=10, poll_interval=0.02)
    assert isinstance(document, JobDocument)
    assert document.status is JobStatus.COMPLETED
    assert document.result is not None
    assert document.result.content == "hello world"
    delivered = parse_event(document.raw)
    assert type(delivered) is type(document)
    assert delivered == document


def test_uppercase_statuses_are_normalised_and_unknown_fields_kept() -> None:
    with Emulator(KEY, job_delay=0, status_case="upper") as cloud, client_for(cloud) as client:
        [job_id] = cloud.submit([("a.txt", b"x")])
        document = client.wait_for_job(job_id, timeout=10, poll_interval=0.02)
    assert document.status is JobStatus.COMPLETED
    assert "child_job_ids" in document.raw


def test_crawl_jobs_parse_as_crawl_documents_and_their_children_can_be_iterated() -> None:
    urls = ["https://example.com/a", "https://example.com/b"]
    with Emulator(KEY, job_delay=0) as cloud, client_for(cloud) as client:
        crawl_id = cloud.submit_crawl(urls)
        crawl = client.wait_for_job(crawl_id, timeout=10, poll_interval=0.02)
        assert isinstance(crawl, CrawlJobDocument)
        children = list(client.iter_child_jobs(crawl))
        by_id = list(client.iter_child_jobs(crawl_id))
    assert [child.id for child in children] == list(crawl.job_ids)
    assert [child.id for child in by_id] == list(crawl.job_ids)
    assert [c.result.content for c in children if isinstance(c, JobDocument) and c.result] == [
        f"Page at {url}" for url in urls
    ]


@pytest.mark.parametrize("style", ["envelope", "flat"])
@pytest.mark.parametrize(
    ("job_id", "key", "error", "status"),
    [
        ("not-a-uuid", KEY, InvalidJobId, 400),
        (str(uuid.uuid4()), KEY, JobNotFound, 404),
        (str(uuid.uuid4()), "a-wrong-key-0000", InvalidAPIKey, 401),
    ],
    ids=["400", "404", "401"],
)
def test_permanent_errors_are_typed_and_sent_once(
    job_id: str, key: str, error: type[PermanentAPIError], status: int, style: str
) -> None:
    with Emulator(KEY, error_style=style) as cloud, JobsClient(key, cloud.base_url, backoff=FAST) as client:
        with pytest.raises(error) as caught:
            client.get_job(job_id)
        assert cloud.stats.api_requests == 1
    assert caught.value.status_code == status
    assert caught.value.job_id == job_id
    assert str(status) in str(caught.value)
    if style == "envelope":
        assert caught.value.code is not None


def test_503_and_429_are_retried_until_the_answer_comes() -> None:
    faults = Faults(api_errors=0.5, retry_after=0)
    with Emulator(KEY, job_delay=0, faults=faults, seed=3) as cloud, client_for(cloud) as client:
        ids = cloud.submit([(f"{n}.txt", str(n).encode()) for n in range(30)])
        documents = [client.wait_for_job(job_id, timeout=30, poll_interval=0.01) for job_id in ids]
        assert cloud.stats.api_faults > 0
    assert [d.result.content for d in documents if isinstance(d, JobDocument) and d.result] == [
        str(n) for n in range(30)
    ]


def test_retry_after_is_honoured_and_the_deadline_ends_the_retries() -> None:
    fake = FakeTime()
    with Emulator(KEY, faults=Faults(api_errors=1.0, retry_after=7), seed=5) as cloud:
        client = JobsClient(KEY, cloud.base_url, retry_deadline=60, clock=fake.clock, sleep=fake.sleep)
        with client, pytest.raises(APIUnavailable) as caught:
            client.get_job(uuid.uuid4())
        requests = cloud.stats.api_requests
    assert caught.value.status_code in (429, 503)
    assert "gave up after" in str(caught.value)
    assert 7.0 in fake.sleeps  # a 429's Retry-After
    assert set(fake.sleeps) <= {7.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0}
    assert sum(fake.sleeps) <= 60
    assert requests == len(fake.sleeps) + 1


def test_connection_errors_are_retried_within_the_deadline() -> None:
    fake = FakeTime()
    client = JobsClient(KEY, f"http://127.0.0.1:{free_port()}", retry_deadline=100, clock=fake.clock, sleep=fake.sleep)
    with client, pytest.raises(APIUnavailable, match="connection"):
        client.get_job(uuid.uuid4())
    assert fake.sleeps[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert sum(fake.sleeps) <= 100


def test_wait_for_job_gives_up_with_the_last_document() -> None:
    with Emulator(KEY, job_delay=60) as cloud, client_for(cloud) as client:
        [job_id] = cloud.submit([("slow.pdf", b"x")])
        with pytest.raises(JobTimeout) as caught:
            client.wait_for_job(job_id, timeout=0.3, poll_interval=0.05)
    assert isinstance(caught.value.last, JobDocument)
    assert caught.value.last.status in (JobStatus.PENDING, JobStatus.PROCESSING)


def test_wait_for_job_polls_on_the_seed_cadence() -> None:
    fake = FakeTime()
    with Emulator(KEY, job_delay=3600) as cloud:
        [job_id] = cloud.submit([("slow.pdf", b"x")])
        client = JobsClient(KEY, cloud.base_url, clock=fake.clock, sleep=fake.sleep)
        with client, pytest.raises(JobTimeout):
            client.wait_for_job(job_id, timeout=300)
    assert fake.sleeps[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert sum(fake.sleeps) == pytest.approx(300)


def test_extract_submits_files_with_a_webhook_block(cloud: Emulator) -> None:
    with client_for(cloud) as client:
        submission = client.extract(
            [("a.txt", b"alpha"), ("b.txt", b"beta", "text/plain")],
            webhook={"url": "http://127.0.0.1:9/hook", "secret": "s" * 32, "metadata": {"k": "v"}},
        )
        documents = [client.wait_for_job(i, timeout=10, poll_interval=0.02) for i in submission.job_ids]
    assert len(submission.all_ids) == 2
    assert [d.result.content for d in documents if isinstance(d, JobDocument) and d.result] == ["alpha", "beta"]


def test_result_for_fetches_only_when_the_delivery_carries_nothing(cloud: Emulator) -> None:
    [job_id] = cloud.submit([("a.txt", b"the text")])
    with client_for(cloud) as client:
        document = client.wait_for_job(job_id, timeout=10, poll_interval=0.02)
        before = cloud.stats.api_requests
        assert isinstance(document, JobDocument)
        assert client.result_for(document) is document.result  # a full job document: nothing fetched
        failed = parse_event(job_event_payload(job_id=job_id, status="failed"))
        assert client.result_for(failed) is None  # a failed job has no result to fetch
        inline = InlineEvent(job_id)
        carried = client.result_for(inline)
        webhook_event = parse_event(
            {
                "event": "job.completed",
                "event_id": "e-1",
                "job_id": job_id,
                "timestamp": "2026-12-02T05:00:00Z",
                "results": [{"content": "inline text"}],
            }
        )
        inline_result = client.result_for(webhook_event)
        assert inline_result is not None
        assert inline_result.content == "inline text"
        assert cloud.stats.api_requests == before
        too_large = parse_event(
            {"event": "job.completed", "event_id": "e-2", "job_id": job_id, "timestamp": "2026-12-02T05:00:00Z"}
        )
        fetched_large = client.result_for(too_large)  # results too large to send inline: one GET
        assert fetched_large is not None
        assert fetched_large.content == "the text"
        before += 1
        small = parse_event(job_event_payload(job_id=job_id, status="completed"))
        fetched = client.result_for(small)  # the dashboard's small event: one GET
        assert cloud.stats.api_requests == before + 1
    assert carried is not None
    assert carried.content == "page one\n\npage two"
    assert fetched is not None
    assert fetched.content == "the text"


class InlineEvent:
    """A WebhookEvent-like delivery with inline results (duck-typed until the formats land)."""

    type = "job.completed"
    has_inline_results = True

    def __init__(self, job_id: str) -> None:
        self.job_id = uuid.UUID(job_id)
        self.results = [{"content": "page one", "mime_type": "text/plain"}, {"content": "page two"}]


def test_an_existing_httpx_client_is_used_and_left_open(cloud: Emulator) -> None:
    [job_id] = cloud.submit([("a.txt", b"x")])
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda request: seen.append(request.url.path)]}) as http:
        with JobsClient(KEY, cloud.base_url, client=http) as client:
            client.get_job(job_id)
        assert not http.is_closed
    assert seen == [f"/v1/jobs/{job_id}"]


def test_settings_that_cannot_work_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KREUZBERG_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="KREUZBERG_API_KEY"):
        JobsClient()
    with pytest.raises(ConfigurationError):
        JobsClient(KEY, "ftp://example.com")
    with pytest.raises(ConfigurationError):
        Backoff(initial=0)


def test_base_url_and_key_come_from_the_environment(cloud: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KREUZBERG_API_KEY", KEY)
    monkeypatch.setenv("KREUZBERG_API_URL", cloud.base_url + "/")
    [job_id] = cloud.submit([("a.txt", b"x")])
    with JobsClient() as client:
        assert client.base_url == cloud.base_url
        assert client.get_job(job_id).job_id == job_id
    monkeypatch.delenv("KREUZBERG_API_URL")
    assert JobsClient().base_url == "https://api.kreuzberg.dev"  # kreuzberg-cloud-sdk's DEFAULT_BASE_URL


def test_the_api_key_never_appears_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeTime()
    outputs: list[str] = []
    with Emulator(KEY, faults=Faults(api_errors=0.5, retry_after=0), seed=11) as cloud:
        outputs.append(repr(cloud))
        with JobsClient(KEY, cloud.base_url, clock=fake.clock, sleep=fake.sleep) as client:
            outputs.append(repr(client))
            outputs.append(repr(vars(client)))
            for job_id in ("not-a-uuid", str(uuid.uuid4())):
                with pytest.raises(JobsAPIError) as caught:
                    client.get_job(job_id)
                outputs += [str(caught.value), repr(caught.value), repr(caught.value.__cause__)]
        with JobsClient("wrong-" + KEY, cloud.base_url, clock=fake.clock, sleep=fake.sleep) as client:
            with pytest.raises(JobsAPIError) as caught:
                client.get_job(uuid.uuid4())
            outputs.append(str(caught.value))
    outputs.append(caplog.text)
    assert all(KEY not in output for output in outputs)
    assert "retrying" in caplog.text


def test_async_client_does_the_same(cloud: Emulator) -> None:
    async def scenario() -> tuple[list[Any], Any, Any]:
        async with AsyncJobsClient(KEY, cloud.base_url, backoff=FAST) as client:
            submission = await client.extract([("a.txt", b"one"), ("b.txt", b"two")])
            documents = await asyncio.gather(
                *(client.wait_for_job(i, timeout=10, poll_interval=0.02) for i in submission.job_ids)
            )
            small = parse_event(job_event_payload(job_id=str(submission.job_ids[0])))
            result = await client.result_for(small)
            crawl_id = cloud.submit_crawl(["https://example.com/x"])
            await client.wait_for_job(crawl_id, timeout=10, poll_interval=0.02)
            children = [child async for child in client.iter_child_jobs(crawl_id)]
            with pytest.raises(JobNotFound):
                await client.get_job(uuid.uuid4())
            return list(documents), result, children

    documents, result, children = asyncio.run(scenario())
    assert [d.result.content for d in documents] == ["one", "two"]
    assert result is not None
    assert result.content == "one"
    assert len(children) == 1


def test_get_result_answers_the_stored_results_once_the_job_is_done() -> None:
    with Emulator(KEY, job_delay=1.0) as cloud, client_for(cloud) as client:
        [job_id] = cloud.submit([("a.txt", b"stored text", "text/plain")])
        with pytest.raises(JobNotReady) as early:
            client.get_result(job_id)
        client.wait_for_job(job_id, timeout=10, poll_interval=0.01)
        stored = client.get_result(job_id)
        with pytest.raises(JobNotFound):
            client.get_result(uuid.uuid4())
    assert early.value.status_code == 409
    assert (stored.job_id, stored.status, stored.cached) == (job_id, "completed", False)
    [document] = stored.results
    assert (document.content, document.mime_type) == ("stored text", "text/plain")


def test_list_jobs_pages_summaries(cloud: Emulator) -> None:
    ids = cloud.submit([(f"{n}.txt", b"x", "text/plain") for n in range(3)])
    with client_for(cloud) as client:
        page = client.list_jobs(limit=2, offset=1)
        with pytest.raises(PermanentAPIError):
            client.list_jobs(limit=0)
    assert (page.total, page.limit, page.offset) == (3, 2, 1)
    assert [summary.job_id for summary in page.jobs] == list(reversed(ids))[1:3]
    assert {(s.job_type, s.mime_type, s.status) for s in page.jobs} <= {
        ("extraction", "text/plain", status) for status in ("pending", "processing", "completed")
    }


def test_cancel_job_cancels_and_an_unknown_job_is_not_found() -> None:
    with Emulator(KEY, job_delay=30) as cloud, client_for(cloud) as client:
        [job_id] = cloud.submit([("a.txt", b"x")])
        client.cancel_job(job_id)
        client.cancel_job(job_id)  # a finished job: nothing more to do, no error
        document = client.get_job(job_id)
        with pytest.raises(JobNotFound):
            client.cancel_job(uuid.uuid4())
    assert document.status == JobStatus.CANCELLED


def test_the_async_client_lists_cancels_and_gets_results(cloud: Emulator) -> None:
    async def run() -> tuple[Any, Any, Any]:
        async with AsyncJobsClient(KEY, cloud.base_url, backoff=FAST) as client:
            [done, doomed] = cloud.submit([("a.txt", b"async text"), ("b.txt", b"b")])
            await client.cancel_job(doomed)
            await client.wait_for_job(done, timeout=10, poll_interval=0.01)
            return await client.get_result(done), await client.list_jobs(limit=5), await client.get_job(doomed)

    stored, page, cancelled = asyncio.run(run())
    assert [document.content for document in stored.results] == ["async text"]
    assert page.total == 2
    assert cancelled.status == JobStatus.CANCELLED


@pytest.mark.parametrize("retry_after", ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"], ids=["zero", "negative", "past"])
def test_a_retry_after_of_zero_negative_or_past_still_waits_the_backoff(retry_after: str) -> None:
    backoff = Backoff(initial=0.05, cap=0.2)
    faults = Faults(rate_limited=1.0, retry_after=retry_after)
    with Emulator(KEY, faults=faults) as cloud:
        client = JobsClient(KEY, cloud.base_url, backoff=backoff, retry_deadline=0.5)
        with client, pytest.raises(APIUnavailable):
            client.get_job(uuid.uuid4())
        requests = cloud.stats.api_requests
    # 0.05 + 0.1 + 0.2 + 0.2 ... within 0.5 s: a handful of requests, not a storm
    assert 2 <= requests <= 8


def test_an_async_client_and_its_sync_twin_load_the_certificate_authorities_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The twin an AsyncReconciler fetches through verifies with the async client's own TLS
    context: the CA bundle is read once per client, not again in the first reconcile pass."""
    loaded: list[ssl.SSLContext] = []
    load = ssl.SSLContext.load_verify_locations

    def counting(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loaded.append(context)
        load(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    client = AsyncJobsClient(KEY, "https://api.example.test")
    assert client.threaded() is not None
    assert len(loaded) == 1
    (context,) = loaded
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    asyncio.run(client.aclose())
