"""A webhook sink for the cloud tests: a real HTTP server on 127.0.0.1 that records what it is sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


class Sink:
    """Records every POST; answers with ``answer(received) -> status`` (200 by default)."""

    def __init__(self, answer: Callable[[Received], int] = lambda _: 200) -> None:
        self.received: list[Received] = []
        self.answer = answer
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                got = Received(self.path, dict(self.headers.items()), body)
                with sink._lock:
                    sink.received.append(got)
                status = sink.answer(got)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/kreuzberg"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests, got {len(self.received)}")


@contextmanager
def running_sink(answer: Callable[[Received], int] = lambda _: 200) -> Iterator[Sink]:
    sink = Sink(answer)
    thread = threading.Thread(target=sink.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.server.shutdown()
        sink.server.server_close()
        thread.join()


class ReceiverServer:
    """A receiver behind the package's WSGI middleware (endpoint mode), served by a threaded
    ``wsgiref`` server on a fixed loopback port: stoppable and restartable mid-test."""

    def __init__(self, receiver: Any, path: str = "/webhooks/kreuzberg") -> None:
        from kreuzberg_webhooks.adapters.wsgi import KreuzbergWebhookMiddleware

        def fallback(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not here"]

        self.app = KreuzbergWebhookMiddleware(fallback, receiver, path=path, mode="endpoint")
        self.path = path
        from tests.servers import free_port

        self.port = free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        import socketserver
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Threaded(socketserver.ThreadingMixIn, WSGIServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = make_server("127.0.0.1", self.port, self.app, server_class=Threaded, handler_class=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None


@contextmanager
def serving(receiver: Any) -> Iterator[ReceiverServer]:
    server = ReceiverServer(receiver)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def worker_processes(argvs: list[list[str]], env: dict[str, str], logs: Any) -> Iterator[list[Any]]:
    """Start task-queue workers (their own process groups); stop them when the block ends."""
    import os
    import subprocess

    from tests.servers import ROOT, stop

    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index, argv in enumerate(argvs):
            with (logs / f"worker-{index}.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        argv,
                        cwd=ROOT,
                        env={**os.environ, **env},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield procs
    finally:
        for proc in procs:
            stop(proc, timeout=20)
