"""Handlers typed as a new user types them; ``tests/test_typing.py`` checks this file with ``mypy --strict``.

Never imported by the test suite: it only has to type-check.
"""

from __future__ import annotations

from kreuzberg_webhooks import (
    AutoTuneWebhookEvent,
    CrawlJobDocument,
    CrawlWebhookEvent,
    Event,
    EventType,
    JobDocument,
    JobEvent,
    Receiver,
    UnknownEvent,
    WebhookEvent,
)

receiver = Receiver("a-secret-of-at-least-32-bytes-0123456789")


@receiver.on("job.completed")
def completed(event: JobEvent) -> None:
    print(event.project_id, event.attempt_count)


@receiver.on(EventType.JOB_FAILED)
async def failed(event: WebhookEvent) -> None:
    print(event.error)


@receiver.on("job.partial_success")
def partial(event: JobEvent | WebhookEvent | JobDocument) -> None:
    print(event.job_id)


@receiver.on("crawl.completed")
def crawled(event: CrawlWebhookEvent) -> None:
    print(event.crawl_job_id, event.progress)


@receiver.on("crawl.failed")
def crawl_document(event: CrawlJobDocument) -> None:
    print(event.job_ids)


@receiver.on("auto_tune.completed")
def tuned(event: AutoTuneWebhookEvent) -> None:
    print(event.best_score)


@receiver.on("unknown")
def unknown(event: UnknownEvent) -> None:
    print(event.raw)


@receiver.on()
def every(event: Event) -> None:
    print(event.type)


def still_a_function() -> None:
    completed(parse())  # the decorated handler keeps its own signature


def parse() -> JobEvent:
    raise RuntimeError
