"""Row 8: the package's Flask decorator on the application's own view."""

from __future__ import annotations

from typing import Any

from flask import Flask

from kreuzberg_webhooks.adapters.flask import webhook

from .common import PATH, receiver

app = Flask(__name__)


@app.post(PATH)
@webhook(receiver())
def receive(event: Any) -> dict[str, object]:
    return {"ok": True, "job_id": str(event.job_id)}
