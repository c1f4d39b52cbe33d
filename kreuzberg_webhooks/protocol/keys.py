"""The key a delivery is deduplicated on: who signed it, which job, which event type.

``docs/contract.md`` §4c: a job's handlers run exactly once per (project, job,
terminal status), whichever way it arrived and however many times. So the key
is built from signed content only — the job id and the event type — and scoped
by who signed it, never from an event id alone (one tenant could otherwise sign
another tenant's event id and turn the genuine delivery into a duplicate).

The event *type*, not the raw status, goes into the key: ``partial_success``
is a ``job.completed`` (§2), and the vendor's ``WebhookEvent`` format names the
type only, so both formats close the same job the same way. Each family keys by
its own identity: ``job_id`` for a job, ``crawl_job_id`` (or a crawl document's
``id``) for a crawl, ``auto_tune_job_id`` for an auto-tune run, and the
``event_id`` of an event whose family this version does not know.

Every part has a longest value (``docs/contract.md`` §4d): the ``MAX_*``
constants below, which every backend's schema holds. A longer value is still an
identity, so it is never refused: the parser stands its :func:`bounded` digest
in for it.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

__all__ = [
    "DIGEST_PREFIX",
    "MAX_EVENT_ID_LENGTH",
    "MAX_EVENT_TYPE_LENGTH",
    "MAX_JOB_ID_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_SCOPE_LENGTH",
    "MAX_STATUS_LENGTH",
    "KeyedEvent",
    "bounded",
    "delivery_key",
]

#: The longest ``event_id`` kept as sent (the vendor sends 36-character UUIDs).
MAX_EVENT_ID_LENGTH = 255
#: The longest job (crawl, auto-tune) id kept as sent (a UUID is 36 characters, a ULID 26).
MAX_JOB_ID_LENGTH = 128
#: The longest signer scope (a project id) kept as given.
MAX_SCOPE_LENGTH = 128
#: The longest status kept as sent.
MAX_STATUS_LENGTH = 64
#: The longest event type: ``auto_tune.`` (10 characters) and the longest status fit.
MAX_EVENT_TYPE_LENGTH = 80
#: The longest delivery key: ``<scope>|<job id or event id>|<event type>``.
MAX_KEY_LENGTH = MAX_SCOPE_LENGTH + 1 + max(MAX_EVENT_ID_LENGTH, MAX_JOB_ID_LENGTH) + 1 + MAX_EVENT_TYPE_LENGTH
#: What a :func:`bounded` digest starts with.
DIGEST_PREFIX = "sha256:"


def bounded(value: str, limit: int) -> str:
    """*value* when it has at most *limit* characters, else ``sha256:`` and the first 40 hex
    digits of its SHA-256 (47 characters, shorter than every limit above): the same value
    always gives the same digest, so a long identity still deduplicates."""
    if len(value) <= limit:
        return value
    return DIGEST_PREFIX + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class KeyedEvent(Protocol):
    """What a key is built from: every typed event has these."""

    @property
    def job_id(self) -> str | None: ...

    @property
    def event_id(self) -> str | None: ...

    @property
    def type(self) -> str: ...


def delivery_key(event: KeyedEvent, scope: str = "") -> str:
    """``<scope>|<job id>|<event type>`` (``<scope>|<event id>|<event type>`` for an event of a
    family this version does not know: it has no job id).

    *scope* says who signed the delivery: ``""`` for a receiver with static
    secrets (several static secrets are one sender rotating its secret), the
    project the verifying secret belongs to with a secret resolver
    (``docs/contract.md`` §4c).
    """
    return f"{scope}|{event.job_id or event.event_id}|{event.type}"
