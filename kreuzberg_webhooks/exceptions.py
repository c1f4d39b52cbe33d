"""Errors raised for a bad delivery, each carrying its HTTP answer.

The hierarchy::

    WebhookError                    every problem with one delivery
    ├── PayloadTooLarge             413 payload_too_large
    ├── SignatureError              401
    │   ├── MissingSignature        401 missing_signature
    │   ├── MalformedSignature      401 malformed_signature
    │   ├── SignatureMismatch       401 signature_mismatch
    │   ├── UnknownProject          401 unknown_project
    │   └── ProjectMismatch         401 project_mismatch
    ├── InvalidPayload              400
    │   ├── InvalidJSON             400 invalid_json
    │   ├── NotAnObject             400 not_an_object
    │   ├── MissingField            400 missing_field
    │   └── InvalidField            400 invalid_field
    ├── TimestampOutOfWindow        400
    │   ├── StaleTimestamp          400 stale_timestamp
    │   └── FutureTimestamp         400 future_timestamp
    ├── MethodNotAllowed            405 method_not_allowed
    ├── DeliveryInFlight            429 in_flight (with Retry-After)
    ├── HandlerFailed               500 handler_error
    └── TransientError              503
        ├── StoreUnavailable        503 store_unavailable
        └── SecretsUnavailable      503 secrets_unavailable

    ConfigurationError              a receiver set up wrongly (raised at construction)

Every status follows ``docs/contract.md`` §4: a 4xx other than 429 makes the sender
give the event up for good, so only problems that a retry cannot fix get one.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DeliveryInFlight",
    "FutureTimestamp",
    "HandlerFailed",
    "InvalidField",
    "InvalidJSON",
    "InvalidPayload",
    "MalformedSignature",
    "MethodNotAllowed",
    "MissingField",
    "MissingSignature",
    "NotAnObject",
    "PayloadTooLarge",
    "ProjectMismatch",
    "SecretsUnavailable",
    "SignatureError",
    "SignatureMismatch",
    "StaleTimestamp",
    "StoreUnavailable",
    "TimestampOutOfWindow",
    "TransientError",
    "UnknownProject",
    "WebhookError",
]


class WebhookError(Exception):
    """A delivery that cannot be accepted; carries its HTTP status and reason code."""

    status_code: int = 400
    reason: str = "bad_request"
    #: A fixed, safe sentence; never built from the body, a secret or a signature.
    message: str = "The delivery was rejected."

    def __init__(self, detail: str | None = None, *, event_id: str | None = None) -> None:
        self.detail = detail or self.message
        self.event_id = event_id
        super().__init__(self.detail)

    @property
    def retryable(self) -> bool:
        """Whether the sender will retry after this answer (429 and 5xx)."""
        return self.status_code == 429 or self.status_code >= 500


class PayloadTooLarge(WebhookError):
    """The body is over the configured size limit."""

    status_code = 413
    reason = "payload_too_large"
    message = "The request body is larger than this endpoint accepts."


class SignatureError(WebhookError):
    """The delivery's signature cannot be trusted."""

    status_code = 401
    reason = "invalid_signature"
    message = "The delivery's signature could not be verified."


class MissingSignature(SignatureError):
    """No signature header was sent."""

    reason = "missing_signature"
    message = "The signature header is missing."


class MalformedSignature(SignatureError):
    """The signature header is neither ``sha256=<64 hex>`` nor ``t=<unix seconds>,v1=<64 hex>``."""

    reason = "malformed_signature"
    message = "The signature header is not of the form sha256=<64 hex> or t=<unix seconds>,v1=<64 hex>."


class SignatureMismatch(SignatureError):
    """The signature does not match the body under any configured secret."""

    reason = "signature_mismatch"
    message = "The signature does not match the body."


class UnknownProject(SignatureError):
    """The secret resolver has no secret for the delivery's project."""

    reason = "unknown_project"
    message = "No webhook secret is configured for this delivery's project."


class ProjectMismatch(SignatureError):
    """The signed body's ``project_id`` is not the one its secrets were chosen for.

    The resolver is shown the ``project_id`` read from the body's first
    64 KiB; a body that names another project further in (a duplicate key)
    was not proven to come from that project.
    """

    reason = "project_mismatch"
    message = "The delivery's project_id is not the project whose secret signed it."


class InvalidPayload(WebhookError):
    """A correctly signed body that is not a valid delivery."""

    status_code = 400
    reason = "invalid_payload"
    message = "The delivery's body is not a valid webhook payload."


class InvalidJSON(InvalidPayload):
    """The body is not UTF-8 JSON."""

    reason = "invalid_json"
    message = "The delivery's body is not valid UTF-8 JSON."


class NotAnObject(InvalidPayload):
    """The body is JSON but not an object."""

    reason = "not_an_object"
    message = "The delivery's body is not a JSON object."


class MissingField(InvalidPayload):
    """A required field is absent."""

    reason = "missing_field"
    message = "A required field is missing."


class InvalidField(InvalidPayload):
    """A field has the wrong type or an invalid value."""

    reason = "invalid_field"
    message = "A field has the wrong type or value."


class TimestampOutOfWindow(WebhookError):
    """The signed ``timestamp`` is outside the replay window."""

    status_code = 400
    reason = "timestamp_out_of_window"
    message = "The delivery's timestamp is outside the accepted window."


class StaleTimestamp(TimestampOutOfWindow):
    """The signed ``timestamp`` is older than the replay window allows."""

    reason = "stale_timestamp"
    message = "The delivery's timestamp is too old."


class FutureTimestamp(TimestampOutOfWindow):
    """The signed ``timestamp`` is further in the future than the allowed clock skew."""

    reason = "future_timestamp"
    message = "The delivery's timestamp is too far in the future."


class MethodNotAllowed(WebhookError):
    """Deliveries are ``POST`` only."""

    status_code = 405
    reason = "method_not_allowed"
    message = "Webhook deliveries must use POST."


class DeliveryInFlight(WebhookError):
    """The same event is being processed by another request right now."""

    status_code = 429
    reason = "in_flight"
    message = "This event is already being processed; retry later."

    def __init__(
        self,
        detail: str | None = None,
        *,
        event_id: str | None = None,
        retry_after: int = 1,
    ) -> None:
        super().__init__(detail, event_id=event_id)
        self.retry_after = max(1, int(retry_after))


class HandlerFailed(WebhookError):
    """The application's handler raised; the claim was released for the retry."""

    status_code = 500
    reason = "handler_error"
    message = "The webhook handler failed; the delivery will be processed on retry."


class TransientError(WebhookError):
    """A problem on the receiving side that a retry can fix."""

    status_code = 503
    reason = "unavailable"
    message = "The receiver is temporarily unavailable."


class StoreUnavailable(TransientError):
    """The replay store could not be reached."""

    reason = "store_unavailable"
    message = "The replay store is unavailable; retry later."


class SecretsUnavailable(TransientError):
    """The secret resolver raised."""

    reason = "secrets_unavailable"
    message = "The webhook secrets could not be loaded; retry later."


class ConfigurationError(ValueError):
    """A verifier, receiver or store was configured in a way that cannot work safely."""
