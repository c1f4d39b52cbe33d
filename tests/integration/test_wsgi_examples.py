"""The Flask and WSGI examples under a real gunicorn (2 workers x 4 threads) on a free loopback port, over real HTTP.

The scenarios are :class:`~tests.integration.example_contract.ExampleContract`'s,
for the Flask example and for the WSGI example in each of its two modes.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.example_contract import Example, ExampleContract, example_env, serve_example
from tests.servers import BIN, ROOT, free_port, gunicorn_argv, http_request

#: (example module, KREUZBERG_WSGI_MODE)
SETUPS = {
    "flask": ("flask_app", ""),
    "wsgi-guard": ("wsgi_app", "guard"),
    "wsgi-endpoint": ("wsgi_app", "endpoint"),
}


@pytest.fixture(scope="module", params=list(SETUPS))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    module, mode = SETUPS[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    argv = functools.partial(gunicorn_argv, f"{module}:app", pythonpath=ROOT / "examples")
    with serve_example(argv, tmp, {**example_env(tmp), "KREUZBERG_WSGI_MODE": mode}) as running:
        yield running


class TestExample(ExampleContract):
    def test_other_pages_are_the_apps_own(self, example: Example) -> None:
        reply = http_request(example.server.url + "/", "GET")
        assert (reply.status, reply.body) == (200, b"Deliveries go to POST /webhooks/kreuzberg\n")


@pytest.mark.parametrize("module", ["flask_app", "wsgi_app"])
def test_example_refuses_to_start_without_a_secret(module: str, tmp_path: Path) -> None:
    argv = gunicorn_argv(f"{module}:app", free_port(), pythonpath=ROOT / "examples")
    env = {"PATH": str(BIN), "KREUZBERG_WEBHOOK_SECRET": ""}
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "KREUZBERG_WEBHOOK_SECRET is not set" in result.stderr
