"""A real PostgreSQL server for the tests: initdb into a temporary directory, started on a
free loopback port, stoppable mid-test.

The binaries come from ``/usr/lib/postgresql/<version>/bin`` (Debian's layout,
what ``apt-get install postgresql`` gives; ``scripts/test`` installs it) or
from PATH. PostgreSQL refuses to run as root, so under root the server runs as
the ``postgres`` user (``PG_USER`` overrides). Without the binaries the fixtures
fail, they never skip.

Fixtures: ``postgres_server`` (one server for the session; tests keep apart
with their own tables or databases), ``postgres_url`` (its URL) and
``own_postgres_server`` (a server of the test's own, to stop and restart).
``new_database(url)`` makes a fresh empty database and returns its URL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port

__all__ = [
    "PostgresServer",
    "find_postgres_bin",
    "new_database",
    "own_postgres_server",
    "postgres_server",
    "postgres_url",
]

INSTALL_HINT = (
    "PostgreSQL is not installed: apt-get install -y postgresql (scripts/test does this), "
    "or put initdb and postgres on PATH"
)
SUPERUSER = "kreuzberg"


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``postgres``: the newest Debian install, else PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    if found and shutil.which("initdb"):
        return Path(found).parent
    pytest.fail(INSTALL_HINT, pytrace=False)


def _run_as() -> dict[str, Any]:
    """``subprocess`` options that drop root to the PostgreSQL user (none when not root)."""
    if os.geteuid() != 0:
        return {}
    name = os.environ.get("PG_USER", "postgres")
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        pytest.fail(f"running as root and there is no {name!r} user to run PostgreSQL as", pytrace=False)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PostgresServer:
    """One PostgreSQL cluster in its own directory, on a fixed loopback port that survives restarts."""

    def __init__(self, port: int | None = None) -> None:
        self.bin = find_postgres_bin()
        self.port = port or free_port()
        self._as = _run_as()
        # Not pytest's tmp_path: under root that is 0700 and the postgres user could not enter it.
        self.directory = Path(tempfile.mkdtemp(prefix="kreuzberg-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        if self._as:
            os.chown(self.directory, self._as["user"], self._as["group"])
        self.proc: subprocess.Popen[bytes] | None = None
        self._initdb()

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database as the test superuser."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D", str(self.data),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            capture_output=True,
            timeout=120,
            check=False,
            **self._as,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout.decode()}\n{result.stderr.decode()}")

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and poll until it accepts a connection."""
        argv = [
            str(self.bin / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-h", "127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            "-c", "listen_addresses=127.0.0.1",
        ]  # fmt: skip
        log = self.log.open("ab")
        try:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not self.accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not start on {self.port}:\n{self.log.read_text()}")
            time.sleep(0.05)

    def accepts(self) -> bool:
        """Whether the server answers a query now."""
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open sessions are ended), then wait until the process is gone."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop and delete the cluster's directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[PostgresServer]:
        self.start()
        try:
            yield self
        finally:
            self.remove()


def new_database(url: str) -> str:
    """Create an empty database on the server at *url*; its URL."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session; tests keep apart with their own tables or databases."""
    with PostgresServer().running() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The shared server's ``postgres`` database URL."""
    return postgres_server.url


@pytest.fixture
def own_postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL of this test's own, free to stop and restart."""
    with PostgresServer().running() as server:
        yield server
