"""pytest fixtures for Kreuzberg Cloud webhook tests.

Installed with the package and loaded through the ``pytest11`` entry point, so
the fixtures are there in every test session without a ``conftest.py``:

* ``kreuzberg_secret`` — the webhook secret the deliveries are signed with
  (override the fixture to use your app's test secret);
* ``kreuzberg_clock`` — a :class:`~kreuzberg_webhooks.testing.FrozenClock`;
* ``kreuzberg_delivery`` — a :class:`DeliveryFactory` building signed deliveries
  of any payload shape and every webhook family (``event="crawl.completed"``,
  ``"auto_tune.failed"``, an event this version does not know…), any status,
  any field overridden, signed in either format (``scheme="sha256"`` or
  ``"t-v1"``) with any secret, mis-signed or unsigned;
* ``kreuzberg_store`` — a fresh :class:`~kreuzberg_webhooks.MemoryStore` on the frozen clock;
* ``kreuzberg_receiver`` — a :class:`ReceiverFactory` for a ready
  :class:`~kreuzberg_webhooks.Receiver` wired to the three above;
* ``kreuzberg_post`` — posts a delivery through Flask's test client, Django's
  test client or Starlette's ``TestClient``.

::

    def test_failed_job_is_recorded(kreuzberg_post, kreuzberg_delivery, client):
        response = kreuzberg_post.flask(client, "/webhooks/kreuzberg", kreuzberg_delivery("failed"))
        assert response.status_code == 200

No web framework is imported until a helper for it is called.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import pytest

from ..adapters._missing import require
from ..events import event_type_for
from ..lifecycle.receiver import Receiver
from ..protocol.verify import DEFAULT_SIGNATURE_HEADER, Secrets
from ..stores.base import AsyncReplayStore, ReplayStore
from ..stores.memory import MemoryStore
from . import (
    SCHEMES,
    FrozenClock,
    crawl_job_document_payload,
    default_scheme,
    job_document_payload,
    job_event_payload,
    payload_for_event,
    signed_delivery,
    webhook_event_payload,
)

__all__ = [
    "DEFAULT_TEST_SECRET",
    "DeliveryFactory",
    "DeliveryPoster",
    "ReceiverFactory",
    "SignedDelivery",
    "kreuzberg_clock",
    "kreuzberg_delivery",
    "kreuzberg_post",
    "kreuzberg_receiver",
    "kreuzberg_secret",
    "kreuzberg_store",
    "post_with_django",
    "post_with_flask",
    "post_with_starlette",
    "response_json",
]

#: 40 bytes: long enough not to trigger :class:`~kreuzberg_webhooks.WeakSecretWarning`.
DEFAULT_TEST_SECRET = "whsec_test_kreuzberg_0123456789abcdefghij"  # noqa: S105 - a test secret, published on purpose
# What a mis-signed delivery is signed with: well-formed, just not the receiver's secret.
_WRONG_SECRET = "whsec_wrong_kreuzberg_0123456789abcdefghij"  # noqa: S105

Shape: TypeAlias = Literal["event", "document", "crawl", "webhook"]
#: A signature format: ``sha256=<hex>`` or ``t=<unix seconds>,v1=<hex>``.
Scheme: TypeAlias = Literal["sha256", "t-v1"]


@dataclass(frozen=True)
class SignedDelivery:
    """One delivery as it goes over the wire: the raw body and the request headers.

    Unpacks as ``body, headers = delivery``.
    """

    body: bytes
    headers: dict[str, str]
    #: The decoded payload (``None`` when the body was given as raw bytes).
    payload: dict[str, Any] | None = field(default=None, compare=False)
    #: The signature format it was signed in: ``"sha256"`` or ``"t-v1"``.
    scheme: str = field(default="sha256", compare=False)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.body, self.headers))

    @property
    def event_id(self) -> str | None:
        """The ``event_id`` of a small event or a ``WebhookEvent``; ``None`` for a job document."""
        value = (self.payload or {}).get("event_id")
        return value if isinstance(value, str) else None

    @property
    def signature(self) -> str | None:
        """The signature header's value, whatever the header is called."""
        for name, value in self.headers.items():
            if name.lower() == DEFAULT_SIGNATURE_HEADER.lower():
                return value
        return None


class DeliveryFactory:
    """Builds :class:`SignedDelivery` objects; the ``kreuzberg_delivery`` fixture.

    ::

        kreuzberg_delivery()                                 # job.completed, signed with kreuzberg_secret
        kreuzberg_delivery("failed", error_message="OCR timeout")
        kreuzberg_delivery(shape="document", metadata={"order": 7})
        kreuzberg_delivery(shape="webhook")                  # WebhookEvent, signed t=<now>,v1=<hex>
        kreuzberg_delivery(event="crawl.failed")             # CrawlWebhookEvent, signed t=,v1=
        kreuzberg_delivery("partial_success", event="crawl.completed")
        kreuzberg_delivery(event="auto_tune.completed")      # AutoTuneWebhookEvent
        kreuzberg_delivery(event="document.indexed")         # an event this version does not know
        kreuzberg_delivery(scheme="t-v1")                    # the small event in the other format
        kreuzberg_delivery(shape="webhook", signed_at=kreuzberg_clock.now - 600)   # stale t
        kreuzberg_delivery(timestamp=kreuzberg_clock.now - 90_000)   # stale
        kreuzberg_delivery(mis_signed=True)                  # 401 signature_mismatch
        kreuzberg_delivery(unsigned=True)                    # 401 missing_signature
        kreuzberg_delivery(secret="the-other-rotated-secret-…")
        kreuzberg_delivery.retry(first)                      # same event, attempt_count + 1 / a fresh t

    Event bodies of every family are stamped with the frozen clock's time,
    and so is a ``t=`` signature.
    """

    def __init__(self, secret: str | bytes, clock: FrozenClock, *, header: str = DEFAULT_SIGNATURE_HEADER) -> None:
        self.secret = secret
        self.clock = clock
        self.header = header

    def __call__(
        self,
        status: str | None = None,
        *,
        shape: Shape | None = None,
        event: str | None = None,
        secret: str | bytes | None = None,
        mis_signed: bool = False,
        unsigned: bool = False,
        signature: str | None = None,
        header: str | None = None,
        payload: dict[str, Any] | bytes | None = None,
        scheme: Scheme | None = None,
        signed_at: float | None = None,
        **overrides: Any,
    ) -> SignedDelivery:
        """Build one delivery.

        :param status: the job status (default ``completed``; ignored when *payload* is given).
        :param shape: ``"event"`` (the small project-webhook event, the default), ``"document"``
            (the full job document of a per-request webhook), ``"crawl"``
            (a crawl-job document listing the jobs it spawned) or ``"webhook"``
            (the inline webhook's ``WebhookEvent``, ``event`` = ``job.<status>``).
        :param event: a webhook of *event*'s family instead of a *shape*: ``job.*``
            (``WebhookEvent``), ``crawl.completed`` / ``crawl.failed`` (``CrawlWebhookEvent``;
            *status* ``partial_success`` for a partial crawl), ``auto_tune.completed`` /
            ``auto_tune.failed`` (``AutoTuneWebhookEvent``), or any other name: an event
            this version does not know (its catch-all handler's case).
        :param secret: sign with this secret instead of ``kreuzberg_secret``.
        :param mis_signed: sign with a different secret (a well-formed, wrong signature).
        :param unsigned: send no signature header at all.
        :param signature: send this exact header value (e.g. ``"sha256=nothex"``).
        :param header: the signature header's name, if your receiver renamed it.
        :param payload: a whole payload (dict or raw bytes) instead of a built one.
        :param scheme: ``"sha256"`` or ``"t-v1"``; default ``"t-v1"`` for a
            ``WebhookEvent`` (as the sender signs it), ``"sha256"`` otherwise.
        :param signed_at: the ``t`` of a ``t-v1`` signature (default: the frozen clock's time).
        :param overrides: payload fields to set; ``testing.OMIT`` removes a field.
        """
        if payload is None:
            payload = self.payload(status, shape=shape, event=event, **overrides)
        elif overrides:
            raise TypeError("pass field overrides or a payload, not both")
        if sum((mis_signed, unsigned, signature is not None)) > 1:
            raise TypeError("choose one of mis_signed, unsigned and signature")
        if scheme is None:
            scheme = "t-v1" if default_scheme(payload) == "t-v1" else "sha256"
        elif scheme not in SCHEMES:
            raise ValueError(f"unknown signature scheme {scheme!r}: expected 'sha256' or 't-v1'")
        key: str | bytes | None = None if unsigned else (_WRONG_SECRET if mis_signed else (secret or self.secret))
        body, headers = signed_delivery(
            key,
            payload,
            header=header or self.header,
            signature=signature,
            scheme=scheme,
            signed_at=self.clock.now if signed_at is None else signed_at,
        )
        return SignedDelivery(body, headers, None if isinstance(payload, bytes) else payload, scheme)

    def payload(
        self, status: str | None = None, *, shape: Shape | None = None, event: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """The decoded payload a delivery would carry, without signing it."""
        if event is not None:
            if shape not in (None, "webhook"):
                raise ValueError(f"event={event!r} builds a webhook of its family: it does not go with shape={shape!r}")
            return payload_for_event(event, now=self.clock.now, status=status, **overrides)
        status = status or "completed"
        if shape in (None, "event"):
            return job_event_payload(now=self.clock.now, status=status, **overrides)
        if shape == "document":
            return job_document_payload(now=self.clock.now, status=status, **overrides)
        if shape == "crawl":
            return crawl_job_document_payload(now=self.clock.now, status=status, **overrides)
        if shape == "webhook":
            overrides.setdefault("event", event_type_for(status))
            return webhook_event_payload(now=self.clock.now, **overrides)
        raise ValueError(f"unknown payload shape {shape!r}: expected 'event', 'document', 'crawl' or 'webhook'")

    def retry(self, delivery: SignedDelivery, *, secret: str | bytes | None = None) -> SignedDelivery:
        """The sender's next attempt of *delivery*: same event, re-signed in the same format.

        A small event's ``attempt_count`` goes up by one; a ``t=`` signature
        gets the frozen clock's current time, as the sender signs each attempt afresh.
        """
        if delivery.payload is None:
            raise ValueError("a delivery built from raw bytes cannot be retried")
        payload = dict(delivery.payload)
        if "event_id" in payload and "event" not in payload:
            payload["attempt_count"] = int(payload.get("attempt_count", 1)) + 1
        scheme: Scheme = "t-v1" if delivery.scheme == "t-v1" else "sha256"
        return self(payload=payload, secret=secret, scheme=scheme)


class ReceiverFactory:
    """Builds a ready :class:`~kreuzberg_webhooks.Receiver`; the ``kreuzberg_receiver`` fixture.

    By default it uses ``kreuzberg_secret``, the fresh ``kreuzberg_store`` and
    the frozen ``kreuzberg_clock``; every keyword is passed on::

        receiver = kreuzberg_receiver()
        seen = []
        receiver.on("job.completed")(seen.append)
        assert receiver.handle(*kreuzberg_delivery()).status_code == 200
    """

    def __init__(self, secret: str | bytes, store: MemoryStore, clock: FrozenClock) -> None:
        self.secret = secret
        self.store = store
        self.clock = clock

    def __call__(
        self,
        *handlers: Callable[[Any], object],
        secrets: Secrets | None = None,
        store: ReplayStore | AsyncReplayStore | None = None,
        **options: Any,
    ) -> Receiver:
        """A receiver; positional *handlers* are registered as catch-alls.

        With ``verifier=`` the verifier is used as it is (its own secrets and clock).
        """
        store = self.store if store is None else store
        if "verifier" in options:
            receiver = Receiver(store=store, **options)
        else:
            options.setdefault("clock", self.clock)
            receiver = Receiver(secrets or self.secret, store=store, **options)
        for handler in handlers:
            receiver.add_handler("*", handler)
        return receiver


# -- posting through a framework's test client ----------------------------------------


#: A :class:`SignedDelivery` or a ``(body, headers)`` pair such as ``testing.signed_delivery()`` returns.
AnyDelivery: TypeAlias = "SignedDelivery | tuple[bytes, Mapping[str, str]]"


def _as_delivery(delivery: AnyDelivery) -> tuple[bytes, dict[str, str]]:
    body, headers = delivery
    return bytes(body), dict(headers)


def post_with_flask(client: Any, url: str, delivery: AnyDelivery) -> Any:
    """POST *delivery* with a Flask test client (``app.test_client()``) or a Flask app; return the response."""
    body, headers = _as_delivery(delivery)
    if hasattr(client, "test_client"):  # a Flask app rather than its test client
        client = client.test_client()
    return client.post(url, data=body, headers=headers)


def post_with_django(client: Any, url: str, delivery: AnyDelivery) -> Any:
    """POST *delivery* with Django's test ``Client``; return the response.

    Django takes the content type as an argument and every other header as
    ``headers=`` (Django 4.2+).
    """
    body, headers = _as_delivery(delivery)
    content_type = "application/octet-stream"
    for name in list(headers):
        if name.lower() == "content-type":
            content_type = headers.pop(name)
    return client.post(url, data=body, content_type=content_type, headers=headers)


def post_with_starlette(app: Any, url: str, delivery: AnyDelivery) -> Any:
    """POST *delivery* with Starlette's ``TestClient`` (or an ASGI app to wrap in one); return the response."""
    # Imported here: the plugin must load without Starlette.
    TestClient = require("starlette.testclient", "starlette").TestClient

    body, headers = _as_delivery(delivery)
    if isinstance(app, TestClient):
        return app.post(url, content=body, headers=headers)
    with TestClient(app) as client:
        return client.post(url, content=body, headers=headers)


class DeliveryPoster:
    """Posts deliveries through a framework's test client; the ``kreuzberg_post`` fixture.

    Without a delivery, each method posts a fresh valid ``job.completed`` one::

        kreuzberg_post.flask(app.test_client(), "/webhooks/kreuzberg")
        kreuzberg_post.django(client, "/webhooks/kreuzberg", kreuzberg_delivery("failed"))
        kreuzberg_post.starlette(app, "/webhooks/kreuzberg", kreuzberg_delivery(mis_signed=True))
    """

    def __init__(self, deliveries: DeliveryFactory) -> None:
        self._deliveries = deliveries

    def _pick(self, delivery: AnyDelivery | None) -> AnyDelivery:
        return self._deliveries() if delivery is None else delivery

    def flask(self, client: Any, url: str, delivery: AnyDelivery | None = None) -> Any:
        """See :func:`post_with_flask`."""
        return post_with_flask(client, url, self._pick(delivery))

    def django(self, client: Any, url: str, delivery: AnyDelivery | None = None) -> Any:
        """See :func:`post_with_django`."""
        return post_with_django(client, url, self._pick(delivery))

    def starlette(self, app: Any, url: str, delivery: AnyDelivery | None = None) -> Any:
        """See :func:`post_with_starlette`."""
        return post_with_starlette(app, url, self._pick(delivery))


def response_json(response: Any) -> Any:
    """Decode a test client's JSON answer, whichever framework produced it."""
    content = getattr(response, "content", None)
    if content is None:
        content = response.get_data()
    return json.loads(content)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def kreuzberg_secret() -> str:
    """The webhook secret deliveries are signed with; override it to match your app's."""
    return DEFAULT_TEST_SECRET


@pytest.fixture
def kreuzberg_clock() -> FrozenClock:
    """A clock frozen at the current whole second; ``advance()`` it instead of sleeping."""
    return FrozenClock()


@pytest.fixture
def kreuzberg_delivery(kreuzberg_secret: str, kreuzberg_clock: FrozenClock) -> DeliveryFactory:
    """A :class:`DeliveryFactory`: ``kreuzberg_delivery("failed", mis_signed=True)``."""
    return DeliveryFactory(kreuzberg_secret, kreuzberg_clock)


@pytest.fixture
def kreuzberg_store(kreuzberg_clock: FrozenClock) -> MemoryStore:
    """A fresh, empty :class:`~kreuzberg_webhooks.MemoryStore` on the frozen clock."""
    return MemoryStore(clock=kreuzberg_clock)


@pytest.fixture
def kreuzberg_receiver(
    kreuzberg_secret: str, kreuzberg_store: MemoryStore, kreuzberg_clock: FrozenClock
) -> ReceiverFactory:
    """A :class:`ReceiverFactory`: ``kreuzberg_receiver(handler, lease=30)``."""
    return ReceiverFactory(kreuzberg_secret, kreuzberg_store, kreuzberg_clock)


@pytest.fixture
def kreuzberg_post(kreuzberg_delivery: DeliveryFactory) -> DeliveryPoster:
    """A :class:`DeliveryPoster` with ``.flask()``, ``.django()`` and ``.starlette()``."""
    return DeliveryPoster(kreuzberg_delivery)
