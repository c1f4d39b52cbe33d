"""Row 6 baseline: the vendor documentation's FastAPI handler (read body, HMAC, compare), plus the parse."""

from __future__ import annotations

import hashlib
import hmac
import json

from fastapi import FastAPI, Header, HTTPException, Request

from .common import KEY, PATH

app = FastAPI()


@app.post(PATH)
async def receive(request: Request, x_webhook_signature: str = Header(...)) -> dict[str, bool]:
    body = await request.body()
    expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(x_webhook_signature, expected):
        raise HTTPException(401, "bad signature")
    json.loads(body)
    return {"ok": True}
