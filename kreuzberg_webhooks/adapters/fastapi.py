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
it runs, by raising :class:`DeliveryAnswered`. When the route returns, the event
is marked done; when it raises, the claim is released so the sender's retry is
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
from ..exceptions import HandlerFailed, MethodNotAllowed, PayloadTooLarge  # noqa: E402
from ..openapi import webhook_operation  # noqa: E402
from ..receiver import Delivery, Outcome, Receiver  # noqa: E402
from .asgi import scope_headers  # noqa: E402

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

    The raw body is read chunk by chunk under the receiver's ``max_body_size``
    (413 past it, without reading the rest). After the route:

    - it returned: the event is marked done (a retry is acknowledged as a duplicate);
    - it raised an ``HTTPException`` (e.g. 503 to ask for a retry) or a request
      validation error: the claim is settled by that status — anything but 2xx
      releases it — and the exception goes on to FastAPI's handlers;
    - it raised anything else: the claim is released, the error is logged, and
      the answer is the core's ``500 handler_error``, like every other adapter.
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._method_not_allowed = Outcome.from_error(MethodNotAllowed())

    def init_app(self, app: FastAPI) -> None:
        """Register :func:`answer_delivery` on *app* so refused deliveries get the package's JSON body."""
        app.add_exception_handler(DeliveryAnswered, answer_delivery)

    def route_options(self) -> dict[str, Any]:
        """Keyword arguments that document the route in OpenAPI: ``@app.post(path, **webhook.route_options())``.

        The request body (every accepted shape), the signature header, and every
        answer the dependency sends, with the error body's schema
        (:func:`kreuzberg_webhooks.openapi.webhook_operation`).
        """
        operation = webhook_operation(self.receiver.verifier.header)
        responses = {int(status): answer for status, answer in operation.pop("responses").items()}
        # The route's own return value is the 2xx body: keep its response model, only describe the status.
        responses[200] = {"description": responses[200]["description"]}
        return {"responses": responses, "openapi_extra": operation}

    async def __call__(self, request: Request) -> AsyncIterator[Event]:
        if request.method != "POST":  # only reachable on a route that allows other methods
            raise DeliveryAnswered(self._method_not_allowed)
        headers = scope_headers(request.scope)
        try:
            reader = self.receiver.verifier.body_reader(headers.get("content-length"))
            async with contextlib.aclosing(request.stream()) as stream:
                async for chunk in stream:
                    reader.feed(chunk)
        except PayloadTooLarge as error:
            raise DeliveryAnswered(Outcome.from_error(error)) from None
        began = await self.receiver.begin_async(reader.body(), headers)
        if isinstance(began, Outcome):
            raise DeliveryAnswered(began)
        async with self._settle(began):
            yield began.event

    @contextlib.asynccontextmanager
    async def _settle(self, delivery: Delivery) -> AsyncIterator[None]:
        """Complete or release *delivery* by how the route (the code inside) ended."""
        try:
            yield
        except HTTPException as error:
            await self.receiver.finish_async(delivery, error.status_code)
            raise
        except RequestValidationError:
            await self.receiver.finish_async(delivery, 422)
            raise
        except Exception as error:
            await self.receiver.finish_async(delivery, 500)
            event = delivery.event
            logger.exception("webhook route raised; claim released (event_id=%s)", event.event_id or delivery.key)
            raise DeliveryAnswered(Outcome.from_error(HandlerFailed(event_id=event.event_id), event)) from error
        except BaseException:
            # Cancelled: release if we still can; otherwise the lease expires.
            await self.receiver.finish_async(delivery, 500)
            raise
        else:
            # The route returned, so its work is done. (Its status is not visible
            # to a dependency; a route that wants a retry raises instead.)
            await self.receiver.finish_async(delivery, 200)
