"""Pure ASGI middleware for Starlette, FastAPI and any other ASGI application.

It needs no framework at all — only the ASGI interface — so importing this
module never imports Starlette. Two modes:

- ``mode="endpoint"`` answers deliveries at *path* itself and dispatches them to
  the receiver's handlers (``@receiver.on(...)``);
- ``mode="guard"`` verifies and claims a delivery, then passes the request on to
  the application's own route with the body replayed intact and the typed event
  in ``scope["state"]["kreuzberg_event"]`` (``request.state.kreuzberg_event`` in
  Starlette); the route's response status settles the claim.

Usage::

    app = Starlette(routes=[...])
    app.add_middleware(KreuzbergWebhookMiddleware, receiver=receiver, path="/webhooks/kreuzberg")
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from typing import Any, TypeAlias

from ..lifecycle.exchange import Exchange
from ..lifecycle.flows import Delivery
from ..lifecycle.outcome import Outcome
from ..lifecycle.receiver import Receiver
from ..protocol.headers import HeaderLookup
from ._background import detach, start_task
from ._mount import Mode, check_mount

__all__ = [
    "EVENT_STATE_KEY",
    "KreuzbergWebhookMiddleware",
    "ScopeHeaders",
    "read_exchange",
    "run_guarded",
    "scope_headers",
    "send_outcome",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where guard mode puts the typed event: ``scope["state"][EVENT_STATE_KEY]``.
EVENT_STATE_KEY = "kreuzberg_event"


def scope_headers(scope: Scope) -> dict[str, str]:
    """The request headers as a dict with lower-case names.

    A name that appears on several lines gets its values joined with ``", "``
    (RFC 9110 §5.3), so two ``X-Webhook-Signature`` lines reach the core as one
    malformed value — a 401, the same answer every adapter gives.
    """
    return _decode_headers(scope["headers"])


class ScopeHeaders(HeaderLookup):
    """The request headers of an ASGI scope as a read-only, case-insensitive mapping.

    Nothing is decoded up front: a look-up scans the raw header list for the
    one name it needs (a delivery needs two of them). A name that appears on
    several lines gets its values joined with ``", "``, as in
    :func:`scope_headers`; iterating yields the lower-case names.
    """

    __slots__ = ("_all", "_raw")

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._all: dict[str, str] | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """The header's value (lines joined), or *default*: Mapping.get without a KeyError."""
        try:
            target = key.lower().encode("latin-1")
        except (AttributeError, UnicodeEncodeError):
            return default  # not a str, or a name no header line can carry
        size = len(target)
        value: str | None = None
        for raw_name, raw_value in self._raw:
            # Servers lower-case header names (the ASGI spec asks them to); lower() covers one that
            # does not. Only a name of the same length can match: the others are not even compared.
            if len(raw_name) == size and (raw_name == target or raw_name.lower() == target):
                decoded = raw_value.decode("latin-1")
                value = decoded if value is None else f"{value}, {decoded}"
        return default if value is None else value

    def _decoded(self) -> dict[str, str]:
        if self._all is None:
            self._all = _decode_headers(self._raw)
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"ScopeHeaders({self._decoded()!r})"


def _decode_headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        # ASGI header names arrive lower-cased; values are bytes, decoded the way HTTP/1.1 allows.
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def read_exchange(exchange: Exchange, receive: Receive) -> bool:
    """Feed the request body to *exchange* until it is complete or answered; ``False`` if the client left."""
    while exchange.reading:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        if not exchange.feed(message.get("body", b"")) or not message.get("more_body", False):
            break
    return True


async def send_outcome(send: Send, outcome: Outcome) -> None:
    """Send an :class:`~kreuzberg_webhooks.Outcome` as the whole response."""
    headers = [*_raw_headers(outcome.headers), (b"content-length", str(len(outcome.body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": outcome.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": outcome.body})


@functools.lru_cache(maxsize=64)
def _raw_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[bytes, bytes], ...]:
    # An answer's headers are one of a few (the content type; Retry-After and Allow when
    # refused): each is encoded once, not on every request.
    return tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)


async def run_guarded(
    receiver: Receiver,
    claimed: Callable[[], Delivery | None],
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Run *app* and settle the delivery it claimed by how it ended; the core decides how.

    *claimed* returns the request's claimed delivery (``None`` while there is
    none, or once someone else settled it). The status comes from
    ``http.response.start``; the claim is settled when the application sends
    the last part of its body, before that part goes out: its code has run
    (work done while streaming too), and a retry that arrives the moment the
    answer is complete finds the event already done.

    *app* runs in a task of its own. If the request is cancelled while it runs
    (a timeout middleware, a client gone), the application is not interrupted —
    a route running in a thread cannot be — but left to finish: its end settles
    the claim as it would have (a 2xx marks the event done), and what it sends
    afterwards goes nowhere. So the sender's retry finds the event done rather
    than running the route again once the lease ends (endpoint mode does the
    same with its handlers, ``drivers.run_async``).
    """
    await _Asking(receiver, claimed, receive, send).run(app, scope, receive)


class _Guarded:
    """One guarded request: runs the application in a task of its own and settles the claim by how it ends.

    One object with slots keeps what the request needs while it waits for that
    task (the status sent, whether the claim is settled, the body to replay),
    not a set of closures and their cells: under load every request waits at
    once, and the few objects each keeps alive meanwhile are what the garbage
    collector counts and walks. The task's end is handed to a future of the
    request's own (:attr:`woken`), whose cancellation does not reach the task
    (as :class:`~kreuzberg_webhooks.adapters._background.Outliving` does).
    """

    __slots__ = (
        "_body",
        "_receive",
        "_send",
        "delivery",
        "detached",
        "error",
        "receiver",
        "settled",
        "status",
        "woken",
    )

    def __init__(
        self, receiver: Receiver, delivery: Delivery | None, receive: Receive, send: Send, body: bytes | None = None
    ) -> None:
        self.receiver = receiver
        self.delivery = delivery
        self._receive = receive
        self._send = send
        #: The body to hand the application once (guard mode read it to verify), or None.
        self._body = body
        self.status: int | None = None
        self.settled = False
        #: Set once the request was cancelled: the application's answer then goes nowhere.
        self.detached = False
        self.error: BaseException | None = None
        self.woken: asyncio.Future[None] | None = None

    def claimed(self) -> Delivery | None:
        """The delivery to settle, or ``None`` while there is none."""
        return self.delivery

    async def replay(self) -> Message:
        """The application's ``receive``: the body read to verify it, then the server's own messages."""
        body = self._body
        if body is None:
            return await self._receive()  # after the body, only http.disconnect can come
        self._body = None
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(self, message: Message) -> None:
        """The application's ``send``: settles before the last part of the body goes out."""
        kind = message["type"]
        if kind == "http.response.start":
            if self.status is None:
                self.status = message["status"]
        elif kind == "http.response.body" and not message.get("more_body", False):
            await self.settle(self.status)
        if not self.detached:  # once the request is cancelled, nobody listens
            await self._send(message)

    async def settle(self, code: int | None, error: BaseException | None = None, *, cancelled: bool = False) -> Any:
        delivery = self.claimed()
        if self.settled or delivery is None:
            return None
        self.settled = True
        return await self.receiver.settle_async(delivery, code, error, cancelled=cancelled)

    async def conclude(self, error: BaseException | None) -> Outcome | None:
        """Settle by how the application ended; the answer to send if it sent none."""
        if error is None or isinstance(error, Exception):
            answer: Outcome | None = await self.settle(None if error is not None else self.status, error)
            return answer if self.status is None else None
        await self.settle(None, cancelled=True)  # cancelled itself: its code may still run in a thread
        return None

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        """Run *app* with *receive* (or :meth:`replay`) until it ends, then settle and answer if it did not."""
        loop = asyncio.get_running_loop()
        woken = self.woken = loop.create_future()
        task = start_task(loop, self._run(app(scope, receive, self.send)))
        try:
            await woken
        except asyncio.CancelledError:
            self.detached = True
            detach(self._conclude_later(task))
            raise
        # Settled already (its answer is complete, the usual end): nothing is left to conclude.
        if not self.settled and (answer := await self.conclude(self.error)) is not None:
            await send_outcome(self._send, answer)
        if self.error is not None:
            raise self.error

    async def _run(self, coroutine: Awaitable[None]) -> None:
        try:
            await coroutine
        except BaseException as error:  # kept for whoever settles; the task itself ends quietly
            self.error = error
        woken = self.woken
        if woken is not None and not woken.done():
            woken.set_result(None)

    async def _conclude_later(self, task: asyncio.Task[None]) -> None:
        try:
            await task
        except asyncio.CancelledError:  # cancelled before it started: it never ran
            if self.error is None:
                self.error = asyncio.CancelledError()
        await self.conclude(self.error)


class _Asking(_Guarded):
    """A guarded request whose delivery is asked for when it settles (FastAPI's dependency claims it later)."""

    __slots__ = ("_claimed",)

    def __init__(
        self, receiver: Receiver, claimed: Callable[[], Delivery | None], receive: Receive, send: Send
    ) -> None:
        super().__init__(receiver, None, receive, send)
        self._claimed = claimed

    def claimed(self) -> Delivery | None:
        return self._claimed()


def _route_path(scope: Scope) -> str:
    # Match the path the application routes on: without the root_path a server
    # (uvicorn --root-path) or a parent Mount put in front of it.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


class KreuzbergWebhookMiddleware:
    """Receive Kreuzberg Cloud webhooks at one path of an ASGI application.

    :param app: the ASGI application to wrap.
    :param receiver: the :class:`~kreuzberg_webhooks.Receiver` that verifies,
        deduplicates and (in endpoint mode) dispatches deliveries.
    :param path: the delivery path, matched exactly against the request path
        (without the root path). Every other path, and every non-HTTP scope
        (lifespan, websocket), goes to *app* untouched.
    :param mode: ``"endpoint"`` — answer at *path* with the receiver's handlers;
        ``"guard"`` — verify and claim, then let *app*'s own route at *path*
        handle the request; a 2xx from it marks the event done, anything else
        (or an exception) releases the claim so the sender's retry is processed.

    Only ``POST`` is accepted at *path* (405 otherwise). The body is read chunk
    by chunk and refused with 413 the moment it passes the receiver's
    ``max_body_size``, without reading the rest. Sync handlers run in a worker
    thread, never on the event loop.

    Security: put this middleware outside anything that reads or rewrites the
    body (decompression, body-parsing middleware): the signature covers the
    exact bytes the sender sent.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        receiver: Receiver,
        path: str = "/webhooks/kreuzberg",
        mode: Mode = "endpoint",
    ) -> None:
        check_mount(path, mode)
        self.app = app
        self.receiver = receiver
        self.path = path
        self.mode = mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        if self.mode == "endpoint":
            await self._endpoint(scope, receive, send)
            return
        guarded = await self._begin(scope, receive, send)
        if guarded is not None:
            await guarded.run(self.app, scope, guarded.replay)

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = ScopeHeaders(scope["headers"])
        exchange = self.receiver.exchange(scope["method"], headers)
        if not await read_exchange(exchange, receive):
            return  # the client went away: nobody to answer
        if exchange.answer is not None:
            await send_outcome(send, exchange.answer)
            return
        await send_outcome(send, await self.receiver.handle_async(exchange.delivery, headers))

    async def _begin(self, scope: Scope, receive: Receive, send: Send) -> _Guarded | None:
        """Read, verify and claim: the guarded request to run, or ``None`` once answered.

        A method of its own: the headers and the exchange are gone before the
        request waits for the application.
        """
        headers = ScopeHeaders(scope["headers"])
        exchange = self.receiver.exchange(scope["method"], headers)
        if not await read_exchange(exchange, receive):
            return None  # the client went away: nobody to answer, and no claim was taken
        if exchange.answer is not None:
            await send_outcome(send, exchange.answer)
            return None
        body = exchange.body
        began = await self.receiver.begin_async(body, headers)
        if isinstance(began, Outcome):
            await send_outcome(send, began)
            return None
        # The state dict is the one Starlette's ``request.state`` wraps; it is
        # per request (servers copy the lifespan state into each scope).
        scope.setdefault("state", {})[EVENT_STATE_KEY] = began.event
        return _Guarded(self.receiver, began, receive, send, body)
