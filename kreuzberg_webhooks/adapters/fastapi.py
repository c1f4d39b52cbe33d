"""A FastAPI dependency that gives a route the verified, typed event.

Usage::

    from kreuzberg_webhooks.adapters.fastapi import KreuzbergWebhook

    webhook = KreuzbergWebhook(receiver)
    app = FastAPI()
    webhook.init_app(app)  # refused deliveries get the package's JSON answer

    @app.post("/webhooks/kreuzberg")
    async def kreuzberg(event: JobEvent = Depends(webhook)) -> dict[str, str]:
        await record(event)
        return {"status": "processed"}

The route runs only for a verified delivery whose event this request has
claimed. Errors, duplicates and deliveries still in flight are answered before
it runs, by raising :class:`DeliveryAnswered`. The status of the route's
response settles the claim before the response is sent: a 2xx marks the event
done, anything else (or an exception) releases it so the sender's retry is
processed.
"""

# No ``from __future__ import annotations`` here, unlike the rest of the package:
# FastAPI reads the dependency's signature at run time, and string annotations on
# a callable *instance* cannot be resolved by every FastAPI version this supports.

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from ._missing import require

require("fastapi", "fastapi")

from fastapi import FastAPI, Request  # noqa: E402
from fastapi import HTTPException as FastAPIHTTPException  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402
from starlette.responses import Response  # noqa: E402

from ..events import Event  # noqa: E402
from ..lifecycle.flows import Delivery  # noqa: E402
from ..lifecycle.outcome import Outcome  # noqa: E402
from ..lifecycle.receiver import Receiver  # noqa: E402
from ..openapi import webhook_operation  # noqa: E402
from .asgi import ASGIApp, Receive, Scope, ScopeHeaders, Send, run_guarded  # noqa: E402

__all__ = ["DeliveryAnswered", "KreuzbergWebhook", "answer_delivery"]

logger = logging.getLogger("kreuzberg_webhooks")


class DeliveryAnswered(FastAPIHTTPException):
    """A delivery answered before the route runs: an error, a duplicate, or one in flight.

    A FastAPI :class:`~fastapi.HTTPException`, so that even without
    :func:`answer_delivery` registered the status and the ``Retry-After`` /
    ``Allow`` headers are right (the status is what the sender acts on); with it
    registered, the body is the same small JSON every adapter sends.
    """

    def __init__(self, outcome: Outcome) -> None:
        headers = {name: value for name, value in outcome.headers if name != "content-type"}
        super().__init__(outcome.status_code, detail=json.loads(outcome.body), headers=headers)
        self.outcome = outcome


async def answer_delivery(request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`DeliveryAnswered`: send the core's answer as is."""
    if not isinstance(exc, DeliveryAnswered):  # registered for that class only
        raise exc
    outcome = exc.outcome
    return Response(outcome.body, status_code=outcome.status_code, headers=dict(outcome.headers))


class KreuzbergWebhook:
    """A dependency yielding the verified typed event: ``event: JobEvent = Depends(webhook)``.

    :param receiver: the :class:`~kreuzberg_webhooks.Receiver` that verifies and
        deduplicates deliveries. Its registered handlers do not run here: the
        route is the handler.

    Call :meth:`init_app` once: it registers the package's JSON answer for
    refused deliveries and a small ASGI middleware that settles the claim by
    the status of the response the route produced, *before* that response
    leaves (a 2xx marks the event done; any other status — an
    ``HTTPException``, a validation error, or a returned ``JSONResponse(...,
    status_code=503)`` — releases it for the sender's retry). A route that
    raises anything else is answered with the core's ``500 handler_error`` and
    its claim released. The raw body is read chunk by chunk under the
    receiver's ``max_body_size`` (413 past it, without reading the rest).
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._warned = False

    def init_app(self, app: FastAPI) -> None:
        """Register the JSON answer for refused deliveries and the middleware that settles claims."""
        app.add_exception_handler(DeliveryAnswered, answer_delivery)
        app.add_middleware(_SettleMiddleware, receiver=self.receiver)

    def route_options(self) -> dict[str, Any]:
        """Keyword arguments that document the route in OpenAPI: ``@app.post(path, **webhook.route_options())``.

        The request body (every accepted shape), the signature header, and every
        answer the dependency sends, with the error body's schema
        (:func:`kreuzberg_webhooks.openapi.webhook_operation`).
        """
        verifier = self.receiver.verifier
        operation = webhook_operation(verifier.header, schemes=tuple(scheme.name for scheme in verifier.schemes))
        responses = {int(status): answer for status, answer in operation.pop("responses").items()}
        # The route's own return value is the 2xx body: keep its response model, only describe the status.
        responses[200] = {"description": responses[200]["description"]}
        return {"responses": responses, "openapi_extra": operation}

    async def __call__(self, request: Request) -> AsyncIterator[Event]:
        headers = ScopeHeaders(request.scope["headers"])
        exchange = self.receiver.exchange(request.method, headers)
        if exchange.reading:
            async with contextlib.aclosing(request.stream()) as stream:
                async for chunk in stream:
                    if not exchange.feed(chunk):
                        break
        if exchange.answer is not None:
            raise DeliveryAnswered(exchange.answer)
        began = await self.receiver.begin_async(exchange.body, headers)
        if isinstance(began, Outcome):
            raise DeliveryAnswered(began)
        # With init_app's middleware, the response's status settles the claim as it
        # is sent; without it, the dependency's exit settles it, blind to a returned status.
        pending: list[Delivery] | None = request.scope.get(_PENDING)
        if pending is not None:
            pending.append(began)
        try:
            yield began.event
        except (HTTPException, RequestValidationError) as error:
            if pending is None:  # the route's own answer: its status settles the claim
                await self.receiver.settle_async(began, getattr(error, "status_code", 422))
            raise
        except Exception as error:
            if pending is None or began in pending:
                if pending is not None:
                    pending.remove(began)
                answer = await self.receiver.settle_async(began, None, error)
                if answer is not None:
                    raise DeliveryAnswered(answer) from error
            raise
        except BaseException:
            if pending is None:
                await self.receiver.settle_async(began, None, cancelled=True)
            raise
        if pending is None:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "KreuzbergWebhook.init_app(app) was not called: a route that returns a non-2xx response "
                    "will still mark its event done"
                )
            await self.receiver.settle_async(began, 200)


#: Where the settling middleware keeps the request's claimed delivery for the dependency.
_PENDING = "kreuzberg_webhooks.pending"


class _SettleMiddleware:
    """Settles a delivery the dependency claimed by the status of the response, before it is sent."""

    def __init__(self, app: ASGIApp, receiver: Receiver) -> None:
        self.app = app
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            # Only a POST can be claimed: the dependency answers any other method 405 first.
            await self.app(scope, receive, send)
            return
        pending: list[Delivery] = []
        scope[_PENDING] = pending
        await run_guarded(self.receiver, lambda: pending[0] if pending else None, self.app, scope, receive, send)
