"""Row 7: guard mode — the middleware verifies and claims, then the application's Starlette route runs."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kreuzberg_webhooks.adapters.asgi import EVENT_STATE_KEY, KreuzbergWebhookMiddleware

from .common import PATH, receiver


async def receive(request: Request) -> Response:
    event = getattr(request.state, EVENT_STATE_KEY)
    return JSONResponse({"ok": True, "job_id": str(event.job_id)})


app = Starlette(
    routes=[Route(PATH, receive, methods=["POST"])],
    middleware=[Middleware(KreuzbergWebhookMiddleware, receiver=receiver(), path=PATH, mode="guard")],
)
