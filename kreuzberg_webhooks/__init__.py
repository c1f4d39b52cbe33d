"""Receive Kreuzberg Cloud webhooks safely in any Python web app.

The core — signatures, the replay window, typed events, the delivery
lifecycle — uses the standard library only; framework adapters live in
:mod:`kreuzberg_webhooks.adapters` and import their framework when used.
"""

from __future__ import annotations

from .events import (
    CrawlJobDocument,
    Event,
    EventType,
    JobDocument,
    JobEvent,
    JobFailure,
    JobResult,
    JobStatus,
    WebhookEvent,
    parse_event,
)
from .exceptions import (
    ConfigurationError,
    DeliveryInFlight,
    FutureTimestamp,
    HandlerFailed,
    InvalidField,
    InvalidJSON,
    InvalidPayload,
    MalformedSignature,
    MethodNotAllowed,
    MissingField,
    MissingSignature,
    NotAnObject,
    PayloadTooLarge,
    ProjectMismatch,
    SecretsUnavailable,
    SignatureError,
    SignatureMismatch,
    StaleTimestamp,
    StoreUnavailable,
    TimestampOutOfWindow,
    TransientError,
    UnknownProject,
    WebhookError,
)
from .outcome import DeliveryReport
from .receiver import Delivery, Outcome, Receiver
from .signing import (
    Sha256Signature,
    SignatureScheme,
    TimestampedSignature,
    WeakSecretWarning,
    sign,
    sign_timestamped,
    verify_signature,
)
from .stores import AsyncReplayStore, Claim, ClaimState, MemoryStore, ReplayStore, SQLiteStore
from .verify import DEFAULT_MAX_BODY_SIZE, DEFAULT_SIGNATURE_HEADER, BodyReader, ReplayWindow, Verifier

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_SIGNATURE_HEADER",
    "AsyncReplayStore",
    "BodyReader",
    "Claim",
    "ClaimState",
    "ConfigurationError",
    "CrawlJobDocument",
    "Delivery",
    "DeliveryInFlight",
    "DeliveryReport",
    "Event",
    "EventType",
    "FutureTimestamp",
    "HandlerFailed",
    "InvalidField",
    "InvalidJSON",
    "InvalidPayload",
    "JobDocument",
    "JobEvent",
    "JobFailure",
    "JobResult",
    "JobStatus",
    "MalformedSignature",
    "MemoryStore",
    "MethodNotAllowed",
    "MissingField",
    "MissingSignature",
    "NotAnObject",
    "Outcome",
    "PayloadTooLarge",
    "ProjectMismatch",
    "Receiver",
    "ReplayStore",
    "ReplayWindow",
    "SQLiteStore",
    "SecretsUnavailable",
    "Sha256Signature",
    "SignatureError",
    "SignatureMismatch",
    "SignatureScheme",
    "StaleTimestamp",
    "StoreUnavailable",
    "TimestampOutOfWindow",
    "TimestampedSignature",
    "TransientError",
    "UnknownProject",
    "Verifier",
    "WeakSecretWarning",
    "WebhookError",
    "WebhookEvent",
    "__version__",
    "parse_event",
    "sign",
    "sign_timestamped",
    "verify_signature",
]
