"""A real ``redis-server`` for the tests: started on a free loopback port, stoppable mid-test.

The server keeps nothing on disk (``--save "" --appendonly no``), so a stop
and restart on the same port is a Redis that has forgotten everything — the
harshest restart a store can meet. ``redis-server`` must be on PATH
(``scripts/test`` installs it with apt-get); without it the fixtures fail,
they never skip.

Fixtures: ``redis_server`` (one server for the session; tests use fresh
keys), ``redis_url`` (its URL) and ``own_redis_server`` (a server of the
test's own, to stop, pause and restart) and ``redis_cluster_node``
(a one-node Redis Cluster).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis

from tests.servers import free_port

__all__ = ["RedisServer", "own_redis_server", "redis_cluster_node", "redis_server", "redis_url"]

INSTALL_HINT = "redis-server is not on PATH: install it (apt-get install -y redis-server; scripts/test does this)"


def ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis on 127.0.0.1:*port* answers PING (standard library only)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on a fixed loopback port, which survives restarts."""

    def __init__(self, directory: Path, port: int | None = None, *, extra_args: Sequence[str] = ()) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail(INSTALL_HINT, pytrace=False)
        self.executable = executable
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.log = directory / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and poll until it answers PING."""
        argv = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--maxmemory-policy", "noeviction",
            *self.extra_args,
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not ping(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on {self.port}:\n{self.log.read_text()}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server (it forgets every key) and wait until the port is closed."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung Redis)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real Redis for the whole session; tests keep apart by using fresh keys."""
    with RedisServer(tmp_path_factory.mktemp("redis")).running() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL (database 0)."""
    return redis_server.url


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[str]:
    """A real redis-server that evicts any key under memory pressure (``allkeys-lru``)."""
    extra = ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
    with RedisServer(tmp_path / "evicting-redis", extra_args=extra).running() as server:
        assert redis.Redis.from_url(server.url).config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        yield server.url


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis of this test's own, free to stop, pause and restart."""
    with RedisServer(tmp_path / "redis").running() as server:
        yield server


def cluster_port() -> int:
    """A free port a cluster node can use: its bus listens 10000 above it, so at most 55535."""
    while True:
        port = free_port()
        if port <= 55535 and _port_free(port + 10000):
            return port


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def redis_cluster_node(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server in cluster mode owning all 16384 slots: it refuses any command
    or script whose keys span slots (CROSSSLOT), as a many-node cluster does."""
    cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", str(tmp_path / "nodes.conf")]
    server = RedisServer(tmp_path / "cluster", port=cluster_port(), extra_args=cluster_args)
    with server.running():
        admin = redis.Redis(port=server.port)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while admin.execute_command("CLUSTER", "INFO").decode().find("cluster_state:ok") < 0:
            assert time.monotonic() < deadline, "the one-node cluster never became ready"
            time.sleep(0.02)
        admin.close()
        yield server
