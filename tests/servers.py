"""Run a real server in a subprocess on a free loopback port, and talk HTTP to it.

Used by the integration tests of every adapter, the CLI and the Redis store.
Standard library only, so it works before any framework is imported.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_django_suite(settings_module: str, cases: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a Django test suite (*cases*, a path under the checkout) in a pytest process of its
    own: Django's settings are configured once per process. *env* adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", cases, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Poll until something accepts connections on *port* (or fail with the server's output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def run_server(
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path,
    timeout: float = 30.0,
) -> Iterator[Server]:
    """Start *argv* (which must listen on 127.0.0.1:*port*), wait until it accepts, stop it on exit.

    The server gets its own process group so that workers die with it.
    """
    full_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd or ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(port, proc, log)
    try:
        try:
            wait_for_port(port, proc, timeout)
        except Exception as error:
            raise RuntimeError(f"{error}\n--- server output ---\n{server.output()}") from error
        yield server
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


def uvicorn_argv(
    app: str, port: int, *, app_dir: Path = ROOT, workers: int = 1, extra: Sequence[str] = ()
) -> list[str]:
    """uvicorn serving *app* (``module:attribute``, found under *app_dir*) on 127.0.0.1:*port*."""
    return [
        str(BIN / "uvicorn"),
        "--app-dir",
        str(app_dir),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra,
    ]


def gunicorn_argv(app: str, port: int, *, pythonpath: Path, extra: Sequence[str] = ()) -> list[str]:
    """The READMEs' gunicorn command: 2 worker processes x 4 threads serving *app* on 127.0.0.1:*port*.

    ``--preload`` imports the app once in the master, so a missing secret
    stops gunicorn at once instead of every worker failing to boot in a loop.
    """
    return [
        str(BIN / "gunicorn"),
        "--preload",
        "--pythonpath",
        str(pythonpath),
        app,
        "--workers",
        "2",
        *extra,
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
    ]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def http_request(
    url: str,
    method: str = "POST",
    body: bytes | Iterator[bytes] | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    *,
    timeout: float = 30.0,
) -> Reply:
    """One real HTTP/1.1 request. An iterator body is sent chunked with no Content-Length;
    a sequence of header pairs may repeat a name."""
    parsed = http.client.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=timeout)
    try:
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        chunked = body is not None and not isinstance(body, bytes)
        conn.putrequest(method, parsed.path or "/", skip_accept_encoding=True)
        for name, value in pairs:
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if chunked:
            assert body is not None
            assert not isinstance(body, bytes)
            for chunk in body:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        elif body:
            conn.send(body)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()
