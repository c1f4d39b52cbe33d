"""The ASGI examples under a real uvicorn (two worker processes) on a free loopback port, over real HTTP.

The scenarios are :class:`~tests.integration.example_contract.ExampleContract`'s,
once for the Starlette example and once for the FastAPI one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.example_contract import Example, ExampleContract, example_env, serve_example
from tests.servers import ROOT, free_port, run_server, uvicorn_argv

MODULES = ["starlette_app", "fastapi_app"]


@pytest.fixture(scope="module", params=MODULES)
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    tmp = tmp_path_factory.mktemp(request.param)
    argv = functools.partial(uvicorn_argv, f"{request.param}:app", app_dir=ROOT / "examples", workers=2)
    with serve_example(argv, tmp, example_env(tmp)) as running:
        yield running


class TestExample(ExampleContract):
    # FastAPI answers a GET on its POST route itself ({"detail": "Method Not Allowed"}).
    get_error = None


@pytest.mark.parametrize("module", MODULES)
def test_example_refuses_to_start_without_a_secret(module: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {"KREUZBERG_WEBHOOK_SECRET": "", "KREUZBERG_STORE_URL": f"sqlite:///{tmp_path / 'replay.sqlite3'}"}
    argv = uvicorn_argv(f"{module}:app", port, app_dir=ROOT / "examples", workers=1)
    with pytest.raises(RuntimeError, match="exited"), run_server(argv, port=port, env=env, log=log):
        pass
    assert "KREUZBERG_WEBHOOK_SECRET is not set" in log.read_text()
