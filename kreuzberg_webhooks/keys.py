"""The key a delivery is deduplicated on: who signed it, which job, which event type.

``docs/contract.md`` §4c: a job's handlers run exactly once per (project, job,
terminal status), whichever way it arrived and however many times. So the key
is built from signed content only — the job id and the event type — and scoped
by who signed it, never from an event id alone (one tenant could otherwise sign
another tenant's event id and turn the genuine delivery into a duplicate).

The event *type*, not the raw status, goes into the key: ``partial_success``
is a ``job.completed`` (§2), and the vendor's ``WebhookEvent`` format names the
type only, so both formats close the same job the same way.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

__all__ = ["KeyedEvent", "delivery_key"]


class KeyedEvent(Protocol):
    """What a key is built from: every typed event has both."""

    @property
    def job_id(self) -> UUID: ...

    @property
    def type(self) -> str: ...


def delivery_key(event: KeyedEvent, scope: str = "") -> str:
    """``<scope>|<job id>|<event type>``.

    *scope* says who signed the delivery: ``""`` for a receiver with static
    secrets (several static secrets are one sender rotating its secret), the
    project the secret resolver was asked for otherwise.
    """
    return f"{scope}|{event.job_id}|{event.type}"
