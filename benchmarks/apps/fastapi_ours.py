"""Row 6: a FastAPI app with the package's middleware answering at the webhook path (endpoint mode)."""

from __future__ import annotations

from fastapi import FastAPI

from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

from .common import PATH, receiver

webhooks = receiver()


@webhooks.on()
async def received(event: object) -> None:
    return None


app = FastAPI()
app.add_middleware(KreuzbergWebhookMiddleware, receiver=webhooks, path=PATH)
