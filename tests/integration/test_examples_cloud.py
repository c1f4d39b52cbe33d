"""The five examples with ``KREUZBERG_API_URL`` set, against the emulator: ``POST /extract`` submits,
webhooks (half of them never sent, some twice) and the app's own reconciler bring every job to its
handler exactly once, and the events log says with how much text and which way."""

from __future__ import annotations

import functools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kreuzberg_webhooks.emulator import Emulator, Faults
from tests.integration.example_contract import example_env
from tests.integration.test_django_example import PROJECT
from tests.servers import ROOT, free_port, gunicorn_argv, run_server, uvicorn_argv

pytestmark = pytest.mark.slow

KEY = "examples-cloud-key-51f0"
EXAMPLES = ROOT / "examples"

SETUPS: dict[str, tuple[Callable[[int], list[str]], dict[str, str]]] = {
    "starlette": (functools.partial(uvicorn_argv, "starlette_app:app", app_dir=EXAMPLES, workers=2), {}),
    "fastapi": (functools.partial(uvicorn_argv, "fastapi_app:app", app_dir=EXAMPLES, workers=2), {}),
    "flask": (functools.partial(gunicorn_argv, "flask_app:app", pythonpath=EXAMPLES), {}),
    "wsgi": (functools.partial(gunicorn_argv, "wsgi_app:app", pythonpath=EXAMPLES), {}),
    "django": (
        functools.partial(
            gunicorn_argv, "kreuzberg_site.wsgi", pythonpath=PROJECT, extra=["--worker-class", "gthread"]
        ),
        {"DJANGO_SETTINGS_MODULE": "kreuzberg_site.settings", "KREUZBERG_DJANGO_ASYNC": ""},
    ),
    "django-asgi": (
        functools.partial(
            uvicorn_argv, "kreuzberg_site.asgi:application", app_dir=PROJECT, workers=2, extra=["--lifespan", "off"]
        ),
        {"DJANGO_SETTINGS_MODULE": "kreuzberg_site.settings"},  # asgi.py selects the async view
    ),
}


def logged(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(SETUPS))
def test_submitted_jobs_reach_the_handler_exactly_once(name: str, tmp_path: Path) -> None:
    argv, extra_env = SETUPS[name]
    port = free_port()
    events_log = tmp_path / "events.jsonl"
    faults = Faults(drop=0.5, duplicate=0.2)
    rng = random.Random(name)
    with Emulator(KEY, job_delay=0.2, time_scale=0.01, faults=faults, seed=1) as cloud:
        env = {
            **example_env(tmp_path),
            **extra_env,
            "KREUZBERG_MAX_BODY_SIZE": str(1 << 20),
            "KREUZBERG_API_URL": cloud.base_url,
            "KREUZBERG_API_KEY": KEY,
            "KREUZBERG_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks/kreuzberg",
            "KREUZBERG_RECONCILE_INTERVAL": "0.3",
            "KREUZBERG_RECONCILE_AFTER": "1",
        }
        with run_server(argv(port), port=port, env=env, cwd=tmp_path, log=tmp_path / "server.log") as server:
            texts: dict[str, str] = {}
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for n in range(16):
                    text = f"document {n} " + "é" * rng.randrange(0, 300)
                    reply = http.post("/extract", files={"file": (f"{n}.txt", text.encode(), "text/plain")})
                    assert reply.status_code == 202, reply.text
                    [job_id] = reply.json()["job_ids"]
                    texts[job_id] = text
                missing = http.post("/extract", files={"other": ("x.txt", b"x")})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and {line["job_id"] for line in logged(events_log)} < set(texts):
                time.sleep(0.1)
            assert cloud.wait_for_webhooks(30)
            time.sleep(1.0)  # one more reconcile pass and any late duplicate: still once each
            output = server.output()
        lines = logged(events_log)
    assert missing.status_code == 400
    counts = Counter(line["job_id"] for line in lines)
    assert set(counts) == set(texts), "\n".join(row for row in output.splitlines() if "POST" not in row)[-3000:]
    assert set(counts.values()) == {1}
    for line in lines:
        assert line["content_length"] == len(texts[line["job_id"]])
        assert line["status"] == "completed"
    assert {line["via"] for line in lines} == {"webhook", "reconcile"}
    assert KEY not in output


def test_extract_answers_501_without_an_api_url(tmp_path: Path) -> None:
    port = free_port()
    argv = uvicorn_argv("starlette_app:app", port, app_dir=EXAMPLES, workers=1)
    with run_server(argv, port=port, env=example_env(tmp_path), cwd=tmp_path, log=tmp_path / "server.log") as server:
        reply = httpx.post(server.url + "/extract", files={"file": ("a.txt", b"a")})
    assert reply.status_code == 501
    assert "KREUZBERG_API_URL" in reply.json()["error"]
