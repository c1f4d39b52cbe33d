"""Handlers registered for a family whose events they cannot take: ``mypy --strict`` must refuse each.

``tests/test_typing.py`` checks that every line marked ``# wrong`` is an error.
"""

from __future__ import annotations

from kreuzberg_webhooks import AutoTuneWebhookEvent, CrawlWebhookEvent, JobEvent, Receiver

receiver = Receiver("a-secret-of-at-least-32-bytes-0123456789")


@receiver.on("job.completed")  # wrong
def completed(event: CrawlWebhookEvent) -> None: ...


@receiver.on("crawl.completed")  # wrong
def crawled(event: JobEvent) -> None: ...


@receiver.on("auto_tune.failed")  # wrong
def tuned(event: JobEvent) -> None: ...


@receiver.on()  # wrong
def every(event: AutoTuneWebhookEvent) -> None: ...
