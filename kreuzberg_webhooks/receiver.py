"""The delivery lifecycle: verify, claim, run the handlers, then complete or release.

This is the only module that talks to a replay store. Every decision — which
status answers which situation — is made by the small pure functions at the
top; :meth:`Receiver.handle` (sync) and :meth:`Receiver.handle_async` drive
the same steps, so every adapter answers the same way (``docs/contract.md`` §4).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar, cast

from ._slots import slot_setter
from .events import Event
from .exceptions import (
    ConfigurationError,
    DeliveryInFlight,
    HandlerFailed,
    MethodNotAllowed,
    StoreUnavailable,
    WebhookError,
)
from .stores.base import AsyncReplayStore, Claim, ClaimState, ReplayStore
from .stores.memory import MemoryStore
from .verify import Secrets, Verifier

__all__ = ["CATCH_ALL", "DEFAULT_LEASE", "Delivery", "Handler", "Outcome", "Receiver"]

logger = logging.getLogger("kreuzberg_webhooks")

#: Register a handler for every event type with ``@receiver.on()`` or ``@receiver.on("*")``.
CATCH_ALL = "*"
#: How long a claim holds before another request may take the event over.
#: Longer than the sender's 30 s time-out, so a slow handler is not run twice
#: by the next retry (5 s later); shorter than the 5-minute step of the retry
#: schedule, so the event of a worker that died mid-handler is processed then.
DEFAULT_LEASE = 120.0

Handler: TypeAlias = Callable[[Event], "Awaitable[object] | object"]
H = TypeVar("H", bound=Handler)

_JSON = ("content-type", "application/json")
_NEW = ClaimState.NEW  # enum member look-ups are slow; these run on every delivery
_DONE = ClaimState.DONE
_PROCESSED_BODY = b'{"status":"processed"}'
_DUPLICATE_BODY = b'{"status":"duplicate"}'


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one delivery, ready for an adapter to send."""

    status_code: int
    #: ``processed``, ``duplicate``, or the error's reason code.
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    event: Event | None = None

    @property
    def ok(self) -> bool:
        """Whether the answer is 2xx (the sender will not retry)."""
        return 200 <= self.status_code < 300

    @property
    def duplicate(self) -> bool:
        """Whether the event had already been processed."""
        return self.reason == "duplicate"

    @classmethod
    def processed(cls, event: Event) -> Outcome:
        """200: the handlers ran."""
        if cls is not Outcome:
            return cls(200, "processed", (_JSON,), _PROCESSED_BODY, event)
        return _processed(event)

    @classmethod
    def already_processed(cls, event: Event) -> Outcome:
        """200, marked duplicate: acknowledged, never redone."""
        return cls(200, "duplicate", (_JSON, ("x-kreuzberg-duplicate", "true")), _DUPLICATE_BODY, event)

    @classmethod
    def from_error(cls, error: WebhookError, event: Event | None = None) -> Outcome:
        """The answer for *error*: its status and a small JSON body with the reason code."""
        headers: tuple[tuple[str, str], ...] = (_JSON,)
        if isinstance(error, DeliveryInFlight):
            headers += (("retry-after", str(error.retry_after)),)
        elif isinstance(error, MethodNotAllowed):
            headers += (("allow", "POST"),)
        body = json.dumps({"error": error.reason, "detail": error.detail}, separators=(",", ":"))
        return cls(error.status_code, error.reason, headers, body.encode(), event)


_PROCESSED_HEADERS = (_JSON,)
_set_status_code = slot_setter(Outcome, "status_code")
_set_reason = slot_setter(Outcome, "reason")
_set_headers = slot_setter(Outcome, "headers")
_set_body = slot_setter(Outcome, "body")
_set_event = slot_setter(Outcome, "event")


def _processed(event: Event) -> Outcome:
    """``Outcome.processed(event)``, built through the slots.

    Every delivery ends here: half the cost of the frozen dataclass's
    ``__init__`` (Outcome has no ``__post_init__``).
    """
    outcome = Outcome.__new__(Outcome)
    _set_status_code(outcome, 200)
    _set_reason(outcome, "processed")
    _set_headers(outcome, _PROCESSED_HEADERS)
    _set_body(outcome, _PROCESSED_BODY)
    _set_event(outcome, event)
    return outcome


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery whose event this request has claimed.

    Returned by :meth:`Receiver.begin`; settle it with :meth:`Receiver.finish`
    once the application's code has run.
    """

    event: Event
    key: str
    token: str


def _in_flight(event: Event, claim: Claim) -> DeliveryInFlight:
    return DeliveryInFlight(event_id=event.event_id, retry_after=math.ceil(claim.retry_after))


def _store_error(event: Event, error: BaseException) -> Outcome:
    logger.error(
        "replay store unavailable; delivery answered 503 (event_id=%s): %s",
        event.event_id or event.dedup_key,
        # A store's own StoreUnavailable says what failed; other exceptions may carry
        # connection URLs with credentials, so only their type is logged.
        f"{type(error).__name__}: {error.detail}" if isinstance(error, StoreUnavailable) else type(error).__name__,
    )
    if isinstance(error, StoreUnavailable):
        error.event_id = event.event_id
        error.detail = error.message  # the store's details stay in the log, out of the response
        return Outcome.from_error(error, event)
    return Outcome.from_error(StoreUnavailable(event_id=event.event_id), event)


def _claim_outcome(event: Event, claim: Claim) -> Outcome | None:
    """The answer when the claim did not go to this request, else ``None``."""
    return None if claim.state is _NEW else _refused(event, claim)


def _refused(event: Event, claim: Claim) -> Outcome:
    """The answer to a claim that found the event done or in flight."""
    if claim.state is _DONE:
        logger.info("duplicate delivery acknowledged (event_id=%s)", event.event_id or event.dedup_key)
        return Outcome.already_processed(event)
    error = _in_flight(event, claim)
    logger.warning("webhook delivery rejected: in_flight (status=429, event_id=%s)", event.event_id or event.dedup_key)
    return Outcome.from_error(error, event)


def _handler_error(event: Event) -> Outcome:
    logger.exception("webhook handler raised; claim released (event_id=%s)", event.event_id or event.dedup_key)
    return Outcome.from_error(HandlerFailed(event_id=event.event_id), event)


def _settle_error(event: Event, action: str) -> None:
    # After the handler has run, a store error must not turn into a retry that
    # redoes the work: the lease expires by itself.
    logger.exception("replay store failed to %s (event_id=%s)", action, event.event_id or event.dedup_key)


class Receiver:
    """Owns the delivery lifecycle and the handler registry.

    :param secrets: passed to the :class:`Verifier` (or give *verifier*).
    :param verifier: a ready :class:`Verifier`; then *verifier_options* must be empty.
    :param store: a replay store, sync or async. Default: a :class:`MemoryStore`
        (correct for one process only).
    :param lease: seconds a claim holds before a retry may take over an event
        whose processing never finished (the worker died).
    :param retention: seconds a processed event is remembered. Default: the
        replay window's span; shorter is refused, since a replay inside the
        window would then be processed again.
    :param verifier_options: keyword options of :class:`Verifier`.
    """

    def __init__(
        self,
        secrets: Secrets | None = None,
        *,
        verifier: Verifier | None = None,
        store: ReplayStore | AsyncReplayStore | None = None,
        lease: float = DEFAULT_LEASE,
        retention: float | None = None,
        **verifier_options: Any,
    ) -> None:
        if verifier is None:
            verifier = Verifier(secrets, **verifier_options)
        elif secrets is not None or verifier_options:
            raise ConfigurationError("pass either a verifier or the secrets and verifier options, not both")
        if not lease > 0:
            raise ConfigurationError("lease must be a positive number of seconds")
        span = verifier.window.span
        if retention is None:
            retention = span
        elif not retention >= span:  # also refuses NaN
            raise ConfigurationError(
                f"retention ({retention:g} s) is shorter than the replay window ({span:g} s): "
                "a replayed delivery could be processed twice"
            )
        self.verifier = verifier
        self.store: ReplayStore | AsyncReplayStore = MemoryStore() if store is None else store
        self.lease = float(lease)
        self.retention = float(retention)
        self._async_store = inspect.iscoroutinefunction(self.store.claim)
        self._inline_store = bool(getattr(self.store, "nonblocking", False))
        # A sync store that never blocks is called straight from the coroutines:
        # no thread, no extra await (the in-memory store, on every delivery).
        self._direct_store = self._inline_store and not self._async_store
        self._handlers: dict[str, list[Handler]] = {}
        # event type -> the handlers that run for it; rebuilt after add_handler.
        self._dispatch: dict[str, tuple[Handler, ...]] = {}

    # -- the handler registry ------------------------------------------------

    def on(self, event_type: str = CATCH_ALL) -> Callable[[H], H]:
        """Register a handler for ``job.completed``, ``job.failed``, ``job.cancelled``
        (or a newer ``job.<status>``), or for every event with no argument.

        Handlers take the typed event; they may be plain functions or
        coroutine functions. Handlers for the type run before catch-alls.
        """
        if not isinstance(event_type, str) or not (event_type == CATCH_ALL or event_type.startswith("job.")):
            raise ConfigurationError(f"unknown event type {event_type!r}: expected 'job.<status>' or '*'")

        def register(handler: H) -> H:
            self.add_handler(event_type, handler)
            return handler

        return register

    def add_handler(self, event_type: str, handler: Handler) -> None:
        """Register *handler* for *event_type* (``"*"`` for every event)."""
        if not callable(handler):
            raise ConfigurationError("a handler must be callable")
        self._handlers.setdefault(str(event_type), []).append(handler)
        self._dispatch = {}

    def handlers_for(self, event: Event) -> list[Handler]:
        """The handlers that run for *event*, in order."""
        return list(self._handlers_for_type(event.type))

    def _handlers_for_type(self, event_type: str) -> tuple[Handler, ...]:
        # Looked up on every delivery: one dict look-up instead of two and a list.
        handlers = self._dispatch.get(event_type)
        if handlers is None:
            handlers = (*self._handlers.get(event_type, ()), *self._handlers.get(CATCH_ALL, ()))
            self._dispatch[event_type] = handlers
        return handlers

    # -- endpoint mode: verify, claim, dispatch, settle -------------------------

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """Process one delivery synchronously and return the answer to send."""
        try:
            event = self.verifier.verify(body, headers)
        except WebhookError as error:
            return Outcome.from_error(error)
        store = self._sync_store()
        key = event.dedup_key
        try:
            claim = store.claim(key, self.lease)
        except Exception as error:
            return _store_error(event, error)
        if claim.state is not _NEW:
            return _refused(event, claim)
        assert claim.token is not None
        try:
            for handler in self._dispatch.get(event.type) or self._handlers_for_type(event.type):
                result = handler(event)
                # Handlers mostly return None, which skips the slower awaitable check.
                if result is not None and inspect.isawaitable(result):
                    asyncio.run(_await(result))
        except Exception:
            try:
                store.release(key, claim.token)
            except Exception:
                _settle_error(event, "release a claim")
            return _handler_error(event)
        try:
            store.complete(key, claim.token, self.retention)
        except Exception:
            _settle_error(event, "mark an event done")
        return _processed(event)

    async def handle_async(self, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """Process one delivery on an event loop; sync handlers run in a worker thread."""
        try:
            event = self.verifier.verify(body, headers)
        except WebhookError as error:
            return Outcome.from_error(error)
        key = event.dedup_key
        try:
            if self._direct_store:
                claim = cast(ReplayStore, self.store).claim(key, self.lease)
            else:
                claim = await self._claim_async(key)
        except Exception as error:
            return _store_error(event, error)
        if claim.state is not _NEW:
            return _refused(event, claim)
        assert claim.token is not None
        try:
            for handler in self._dispatch.get(event.type) or self._handlers_for_type(event.type):
                if inspect.iscoroutinefunction(handler):
                    await handler(event)
                else:
                    result = await asyncio.to_thread(handler, event)
                    if inspect.isawaitable(result):
                        await result
        except Exception:
            try:
                await self._store_call("release", key, claim.token)
            except Exception:
                _settle_error(event, "release a claim")
            return _handler_error(event)
        try:
            if self._direct_store:
                cast(ReplayStore, self.store).complete(key, claim.token, self.retention)
            else:
                await self._store_call("complete", key, claim.token, self.retention)
        except Exception:
            _settle_error(event, "mark an event done")
        return _processed(event)

    # -- guard mode: the application's own view is the handler -----------------

    def begin(self, body: bytes, headers: Mapping[str, str]) -> Delivery | Outcome:
        """Verify and claim a delivery for code the adapter runs itself.

        Returns a :class:`Delivery` when this request owns the event, or the
        :class:`Outcome` to send at once (an error, a duplicate, in flight).
        """
        try:
            event = self.verifier.verify(body, headers)
        except WebhookError as error:
            return Outcome.from_error(error)
        store = self._sync_store()  # outside the try: a misconfiguration must raise, not pass for a 503
        try:
            claim = store.claim(event.dedup_key, self.lease)
        except Exception as error:
            return _store_error(event, error)
        return _claim_outcome(event, claim) or Delivery(event, event.dedup_key, claim.token or "")

    def finish(self, delivery: Delivery, status_code: int) -> None:
        """Settle a :class:`Delivery` by the status the application answered.

        A 2xx marks the event done; anything else releases the claim, because
        the sender will retry and the retry must be processed.
        """
        store = self._sync_store()
        try:
            if 200 <= status_code < 300:
                store.complete(delivery.key, delivery.token, self.retention)
            else:
                store.release(delivery.key, delivery.token)
        except Exception:
            _settle_error(delivery.event, "settle a delivery")

    async def begin_async(self, body: bytes, headers: Mapping[str, str]) -> Delivery | Outcome:
        """The async :meth:`begin`."""
        try:
            event = self.verifier.verify(body, headers)
        except WebhookError as error:
            return Outcome.from_error(error)
        key = event.dedup_key
        try:
            if self._direct_store:
                claim = cast(ReplayStore, self.store).claim(key, self.lease)
            else:
                claim = await self._claim_async(key)
        except Exception as error:
            return _store_error(event, error)
        if claim.state is not _NEW:
            return _refused(event, claim)
        return Delivery(event, key, claim.token or "")

    async def finish_async(self, delivery: Delivery, status_code: int) -> None:
        """The async :meth:`finish`."""
        if self._direct_store:
            self.finish(delivery, status_code)  # a store that never blocks: no thread, no await
            return
        try:
            if 200 <= status_code < 300:
                await self._store_call("complete", delivery.key, delivery.token, self.retention)
            else:
                await self._store_call("release", delivery.key, delivery.token)
        except Exception:
            _settle_error(delivery.event, "settle a delivery")

    # -- store plumbing ---------------------------------------------------------

    def _sync_store(self) -> ReplayStore:
        if self._async_store:
            raise ConfigurationError("this receiver's store is async: use handle_async / begin_async")
        return self.store  # type: ignore[return-value]

    async def _claim_async(self, key: str) -> Claim:
        result: Claim = await self._store_call("claim", key, self.lease)
        return result

    async def _store_call(self, name: str, *args: Any) -> Any:
        method = getattr(self.store, name)
        if self._async_store:
            return await method(*args)
        if self._inline_store:
            return method(*args)
        return await asyncio.to_thread(method, *args)


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable
