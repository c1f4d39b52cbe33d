"""Row 7 baseline: hand-written verification inside a Starlette route."""

from __future__ import annotations

import hashlib
import hmac
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import KEY, PATH, SIGNATURE_HEADER


async def receive(request: Request) -> Response:
    body = await request.body()
    expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected):
        return JSONResponse({"ok": False}, status_code=401)
    event = json.loads(body)
    return JSONResponse({"ok": True, "job_id": event["job_id"]})


app = Starlette(routes=[Route(PATH, receive, methods=["POST"])])
