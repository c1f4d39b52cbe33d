"""The dedupe key (``protocol/keys.py``): each event family keys by its own identity, one job
keys alike in every shape, and no key is longer than its bound."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_JOB_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_SCOPE_LENGTH,
    MAX_STATUS_LENGTH,
    AutoTuneWebhookEvent,
    CrawlWebhookEvent,
    Event,
    parse_event,
)
from kreuzberg_webhooks.protocol.keys import delivery_key
from kreuzberg_webhooks.testing import (
    job_document_payload,
    job_event_payload,
    signed_delivery,
    webhook_event_payload,
)
from tests.test_event_families import JOB, NOW, RFC3339, SECRET, receiver, unknown_event

_CASES = st.sampled_from([str.lower, str.upper, str.title, str.swapcase])


_TERMINAL = st.sampled_from(["completed", "partial_success", "failed", "cancelled"])


def test_each_family_keys_by_its_own_identity() -> None:
    crawl = parse_event({"event": "crawl.failed", "crawl_job_id": JOB.upper(), "timestamp": RFC3339})
    tune = parse_event(
        {"event": "auto_tune.completed", "auto_tune_job_id": "01JDQ9A1B2C3D4E5F6G7H8J9K0", "timestamp": RFC3339}
    )
    assert isinstance(crawl, CrawlWebhookEvent)
    assert isinstance(tune, AutoTuneWebhookEvent)
    assert delivery_key(crawl, "p") == f"p|{JOB}|crawl.failed"
    assert delivery_key(tune, "p") == "p|01JDQ9A1B2C3D4E5F6G7H8J9K0|auto_tune.completed"
    assert crawl.status == "failed"  # the type names it when the body has no status


@settings(max_examples=200, deadline=None)
@given(
    job=st.uuids().map(str) | st.from_regex(r"\A[0-9A-HJKMNP-TV-Z]{26}\Z"),
    status=_TERMINAL,
    case=st.tuples(_CASES, _CASES, _CASES),
    job_case=st.tuples(_CASES, _CASES),
    scope=st.text(max_size=20),
)
def test_one_job_keys_alike_in_every_shape_and_every_case(
    job: str, status: str, case: tuple[Any, ...], job_case: tuple[Any, ...], scope: str
) -> None:
    is_uuid = "-" in job
    # A UUID may come in any case; a ULID is kept as sent, so it is sent alike.
    spell = (lambda text, i: job_case[i](text)) if is_uuid else (lambda text, i: text)
    small = parse_event(job_event_payload(now=NOW, job_id=spell(job, 0), status=case[0](status)))
    document = parse_event(job_document_payload(now=NOW, id=spell(job, 1), status=case[1](status)))
    keys = {delivery_key(small, scope), delivery_key(document, scope)}
    if status != "partial_success":  # the webhook event names the type only
        inline = parse_event(webhook_event_payload(now=NOW, job_id=job, event=case[2](f"job.{status}")))
        keys.add(delivery_key(inline, scope))
    expected_job = job.lower() if is_uuid else job
    expected_type = "job.completed" if status == "partial_success" else f"job.{status}"
    assert keys == {f"{scope}|{expected_job}|{expected_type}"}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(job_event_payload(now=NOW, event_id="e" * 300), id="long-event-id"),
        pytest.param(job_event_payload(now=NOW, job_id="j" * 300), id="long-job-id"),
        pytest.param(job_event_payload(now=NOW, status="s" * 100), id="long-status"),
        pytest.param(webhook_event_payload(now=NOW, event="job." + "x" * 100), id="long-event-type"),
        pytest.param(unknown_event(event="y" * 300, event_id="u" * 1000), id="long-unknown-event"),
        pytest.param(job_document_payload(now=NOW, id="d" * 300), id="long-document-id"),
    ],
)
def test_a_longer_value_is_accepted_and_stands_in_by_its_digest(payload: dict[str, Any]) -> None:
    rx = receiver()
    seen: list[Event] = []
    rx.on()(seen.append)
    body, headers = signed_delivery(SECRET, payload, signed_at=NOW)
    assert [rx.handle(body, headers).reason for _ in range(2)] == ["processed", "duplicate"]
    (event,) = seen
    assert len(event.event_id or "") <= MAX_EVENT_ID_LENGTH
    assert len(event.job_id or "") <= MAX_JOB_ID_LENGTH
    assert len(event.type) <= MAX_EVENT_TYPE_LENGTH
    assert len(str(getattr(event, "status", ""))) <= MAX_STATUS_LENGTH
    assert len(delivery_key(event, "s" * MAX_SCOPE_LENGTH)) <= MAX_KEY_LENGTH


@settings(max_examples=200, deadline=None)
@given(
    event_id=st.text(min_size=1, max_size=400).filter(str.isprintable),
    job_id=st.text(min_size=1, max_size=400).filter(str.isprintable),
    status=st.text(min_size=1, max_size=200).filter(str.isprintable),
    kind=st.text(min_size=1, max_size=200).filter(str.isprintable),
)
def test_no_parsed_field_or_key_is_ever_longer_than_its_bound(
    event_id: str, job_id: str, status: str, kind: str
) -> None:
    events = [
        parse_event(job_event_payload(now=NOW, event_id=event_id, job_id=job_id, status=status)),
        parse_event(job_document_payload(now=NOW, id=job_id, status=status)),
        parse_event(unknown_event(event="z." + kind, event_id=event_id)),
    ]
    for event in events:
        assert len(event.event_id or "") <= MAX_EVENT_ID_LENGTH
        assert len(event.job_id or "") <= max(MAX_JOB_ID_LENGTH, 0)
        assert len(event.type) <= MAX_EVENT_TYPE_LENGTH
        assert len(delivery_key(event, "s" * MAX_SCOPE_LENGTH)) <= MAX_KEY_LENGTH
