"""Row 8 baseline: a hand-written Flask view."""

from __future__ import annotations

import hashlib
import hmac
import json

from flask import Flask, abort, request

from .common import KEY, PATH, SIGNATURE_HEADER

app = Flask(__name__)


@app.post(PATH)
def receive() -> dict[str, object]:
    body = request.get_data()
    expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected):
        abort(401)
    event = json.loads(body)
    return {"ok": True, "job_id": event["job_id"]}
