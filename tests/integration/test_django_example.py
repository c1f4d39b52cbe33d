"""The Django example project under real servers, over real HTTP on a free loopback port.

Twice: under gunicorn (WSGI, 2 worker processes x 4 threads, the sync view) and
under uvicorn (ASGI, 2 worker processes, the async view). The workers share one
SQLite replay store. One server per setup serves every test of this module.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.example_contract import Example, ExampleContract, example_env, serve_example
from tests.servers import BIN, ROOT, free_port, gunicorn_argv, uvicorn_argv

PROJECT = ROOT / "examples" / "django_project"


def gunicorn_command(port: int) -> list[str]:
    """The README's WSGI command."""
    return gunicorn_argv("kreuzberg_site.wsgi", port, pythonpath=PROJECT, extra=["--worker-class", "gthread"])


def uvicorn_command(port: int, workers: int = 2) -> list[str]:
    """The README's ASGI command."""
    app = "kreuzberg_site.asgi:application"
    return uvicorn_argv(app, port, app_dir=PROJECT, workers=workers, extra=["--lifespan", "off"])


SERVERS = {"gunicorn": gunicorn_command, "uvicorn": uvicorn_command}


def django_env(tmp: Path) -> dict[str, str]:
    return {
        **example_env(tmp),
        # The project's own settings, whatever the test process's environment holds.
        "DJANGO_SETTINGS_MODULE": "kreuzberg_site.settings",
        "KREUZBERG_DJANGO_ASYNC": "",
    }


@pytest.fixture(scope="module", params=list(SERVERS))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    tmp = tmp_path_factory.mktemp(f"django-{request.param}")
    env = django_env(tmp)
    if request.param == "uvicorn":
        del env["KREUZBERG_DJANGO_ASYNC"]  # asgi.py selects the async view
    with serve_example(SERVERS[request.param], tmp, env) as running:
        yield running


class TestExample(ExampleContract):
    """The contract's scenarios. The project runs LoginRequiredMiddleware (and CSRF): the
    webhook view is exempt from both, so GET gets the JSON 405, not a login redirect."""


def test_manage_py_check_passes_the_example_configuration(tmp_path: Path) -> None:
    env = {**os.environ, **django_env(tmp_path)}
    result = subprocess.run(
        [str(BIN / "python"), str(PROJECT / "manage.py"), "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("server", list(SERVERS))
def test_example_refuses_to_start_without_a_secret(server: str, tmp_path: Path) -> None:
    env = {**django_env(tmp_path), "PATH": str(BIN), "KREUZBERG_WEBHOOK_SECRET": ""}
    # One uvicorn process: with --workers its supervisor would restart the failing workers.
    argv = gunicorn_command(free_port()) if server == "gunicorn" else uvicorn_command(free_port(), workers=1)
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "KREUZBERG_WEBHOOK_SECRET is not set" in result.stderr


@pytest.mark.parametrize(("entry_point", "is_async"), [("wsgi", False), ("asgi", True)])
def test_entry_point_selects_the_view_flavour(entry_point: str, is_async: bool, tmp_path: Path) -> None:
    code = (
        f"import kreuzberg_site.{entry_point}; "
        "from asgiref.sync import iscoroutinefunction; from django.urls import resolve; "
        "print(iscoroutinefunction(resolve('/webhooks/kreuzberg').func))"
    )
    env = {**os.environ, **django_env(tmp_path), "PYTHONPATH": str(PROJECT)}
    del env["KREUZBERG_DJANGO_ASYNC"]
    result = subprocess.run(
        [str(BIN / "python"), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(is_async)


@pytest.mark.parametrize("server", list(SERVERS))
def test_in_inbox_mode_the_worker_runs_the_handler_and_sends_the_signal_once(server: str, tmp_path: Path) -> None:
    import json
    import time

    from tests.integration.example_contract import deliver
    from tests.servers import http_request

    env = {**django_env(tmp_path), "KREUZBERG_INBOX": "1"}
    if server == "uvicorn":
        del env["KREUZBERG_DJANGO_ASYNC"]  # asgi.py selects the async view
    with serve_example(SERVERS[server], tmp_path, env) as example:
        body, headers, payload = deliver()
        url = example.server.url + "/webhooks/kreuzberg"
        first = http_request(url, body=body, headers=headers)
        assert (first.status, json.loads(first.body)) == (202, {"status": "queued"})
        signal_line = f"Kreuzberg job.completed {payload['job_id']}"
        deadline = time.monotonic() + 60
        while signal_line not in example.server.output():
            assert time.monotonic() < deadline, example.server.output()
            time.sleep(0.05)
        again = http_request(url, body=body, headers=headers)
        assert (again.status, json.loads(again.body)) == (200, {"status": "duplicate"})
        output = example.server.output()
    # The on() handler wrote one line to the events log; the signal receiver logged once.
    logged = [json.loads(line) for line in example.events_log.read_text().splitlines()]
    assert [entry["event_id"] for entry in logged] == [payload["event_id"]]
    assert output.count(signal_line) == 1
