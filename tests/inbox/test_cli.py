"""``kreuzberg-webhooks inbox``: list, show, retry, purge and worker, on a real SQLite inbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kreuzberg_webhooks.cli import main
from kreuzberg_webhooks.inbox import DeliveryState, SQLiteInbox
from tests.inbox.contract import LEASE, make_entry
from tests.servers import ROOT


@pytest.fixture
def inbox_path(tmp_path: Path) -> Path:
    return tmp_path / "inbox.sqlite3"


@pytest.fixture
def inbox(inbox_path: Path) -> SQLiteInbox:
    return SQLiteInbox(inbox_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def dead(inbox: SQLiteInbox, error: str = "RuntimeError: downstream is down") -> str:
    entry = make_entry()
    inbox.enqueue(entry)
    claim = inbox.claim(entry.key, LEASE)
    assert claim is not None
    inbox.fail(claim.key, claim.token, error, None)
    assert entry.event_id is not None
    return entry.event_id


def test_list_prints_one_line_per_delivery_with_its_event_id_and_state(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path
) -> None:
    queued = make_entry()
    inbox.enqueue(queued)
    failed = dead(inbox)
    code, out, _ = run(capsys, "inbox", "list", "--store", f"sqlite:///{inbox_path}")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    by_id = {line.split()[0]: line for line in lines}
    assert by_id[queued.event_id or ""].split()[1] == "queued"
    assert by_id[failed].split()[1] == "dead"
    assert "downstream is down" in by_id[failed]


def test_list_filters_by_state_and_reads_the_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox.enqueue(make_entry())
    failed = dead(inbox)
    monkeypatch.setenv("KREUZBERG_INBOX_URL", f"sqlite:///{inbox_path}")
    code, out, _ = run(capsys, "inbox", "list", "--state", "dead")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [failed]


def test_show_prints_everything_about_one_delivery(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path
) -> None:
    failed = dead(inbox)
    code, out, _ = run(capsys, "inbox", "show", failed, "--store", f"sqlite:///{inbox_path}", "--body")
    assert code == 0
    assert f"event_id:     {failed}" in out
    assert "state:        dead" in out
    assert "attempts:     1" in out
    assert "last error:   RuntimeError: downstream is down" in out
    assert '"status": "completed"' in out


def test_show_of_an_unknown_event_is_exit_1(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path
) -> None:
    code, _, err = run(capsys, "inbox", "show", "evt_nope", "--store", f"sqlite:///{inbox_path}")
    assert code == 1
    assert "no delivery" in err


def test_retry_queues_every_dead_delivery_again(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path
) -> None:
    failed = [dead(inbox) for _ in range(3)]
    code, out, _ = run(capsys, "inbox", "retry", "--store", f"sqlite:///{inbox_path}", "--state", "dead")
    assert (code, out.strip()) == (0, "queued 3 deliveries again")
    for event_id in failed:
        record = inbox.get(event_id)
        assert record is not None
        assert (record.state, record.attempts) == (DeliveryState.QUEUED, 0)


def test_retry_by_event_id_and_an_unknown_one_is_exit_1(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path
) -> None:
    first, second = dead(inbox), dead(inbox)
    code, out, err = run(capsys, "inbox", "retry", first, "evt_unknown", "--store", f"sqlite:///{inbox_path}")
    assert code == 1
    assert out.strip() == "queued 1 delivery again"
    assert "evt_unknown" in err
    assert [r.state for r in (inbox.get(first), inbox.get(second)) if r] == [DeliveryState.QUEUED, DeliveryState.DEAD]


@pytest.mark.parametrize(
    "argv", [["retry"], ["retry", "evt_1", "--state", "dead"], ["retry", "--state", "running"]], ids=str
)
def test_retry_needs_ids_or_a_state(
    capsys: pytest.CaptureFixture[str], inbox_path: Path, argv: list[str], inbox: SQLiteInbox
) -> None:
    code, _, err = run(capsys, "inbox", *argv, "--store", f"sqlite:///{inbox_path}")
    assert code == 2
    assert err.startswith("kreuzberg-webhooks")


def test_purge_deletes_deliveries_in_a_state(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path
) -> None:
    dead(inbox)
    dead(inbox)
    inbox.enqueue(make_entry())
    code, out, _ = run(capsys, "inbox", "purge", "--store", f"sqlite:///{inbox_path}", "--state", "dead")
    assert (code, out.strip()) == (0, "purged 2 dead deliveries")
    assert inbox.counts()[DeliveryState.QUEUED] == 1
    code, out, _ = run(
        capsys, "inbox", "purge", "--store", f"sqlite:///{inbox_path}", "--state", "queued", "--older-than", "3600"
    )
    assert (code, out.strip()) == (0, "purged 0 queued deliveries")


def test_no_inbox_url_is_a_usage_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KREUZBERG_INBOX_URL", raising=False)
    code, _, err = run(capsys, "inbox", "list")
    assert code == 2
    assert "KREUZBERG_INBOX_URL" in err


def test_an_unknown_scheme_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inbox", "list", "--store", "ftp://x")
    assert code == 2
    assert "unknown inbox URL scheme" in err


def test_an_unreachable_inbox_is_exit_1_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "inbox", "list", "--store", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 1
    assert err.count("\n") == 1
    assert "unavailable" in err
    assert "Traceback" not in err


WORKER_APP = """
import os
from pathlib import Path
from kreuzberg_webhooks import Receiver
from kreuzberg_webhooks.stores import SQLiteStore

receiver = Receiver("{secret}", store=SQLiteStore(os.environ["STORE_PATH"]), lease=2)

@receiver.on()
def handle(event):
    with Path(os.environ["EVENTS_LOG"]).open("a") as log:
        log.write(f"{{event.job_id}}\\n")
"""


@pytest.mark.slow
def test_the_worker_command_processes_the_inbox_until_sigterm(tmp_path: Path, inbox: SQLiteInbox) -> None:
    from tests.inbox.support import SECRET, entry_for

    (tmp_path / "cli_worker_app.py").write_text(WORKER_APP.format(secret=SECRET))
    entries = [entry_for(received_at=time.time()) for _ in range(5)]
    for entry in entries:
        inbox.enqueue(entry)
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "STORE_PATH": str(tmp_path / "store.sqlite3"),
        "EVENTS_LOG": str(tmp_path / "events.log"),
        "KREUZBERG_INBOX_URL": f"sqlite:///{inbox.path}",
    }
    argv = [sys.executable, "-m", "kreuzberg_webhooks", "inbox", "worker", "--receiver", "cli_worker_app:receiver"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while inbox.counts()[DeliveryState.DONE] < len(entries):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert sorted((tmp_path / "events.log").read_text().split()) == sorted(e.job_id for e in entries)


GRACE_APP = """
import os, time
from pathlib import Path
from kreuzberg_webhooks import Receiver
from kreuzberg_webhooks.stores import SQLiteStore

receiver = Receiver("{secret}", store=SQLiteStore(os.environ["STORE_PATH"]), lease=60)

@receiver.on()
def handle(event):
    Path(os.environ["STARTED"]).touch()
    while Path(os.environ["BLOCK_FILE"]).exists():  # stuck until the file goes
        time.sleep(0.01)
"""


def _start_grace_worker(tmp_path: Path, inbox: SQLiteInbox, *options: str) -> subprocess.Popen[str]:
    from tests.inbox.support import SECRET

    (tmp_path / "grace_app.py").write_text(GRACE_APP.format(secret=SECRET))
    (tmp_path / "block").touch()
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "STORE_PATH": str(tmp_path / "store.sqlite3"),
        "STARTED": str(tmp_path / "started"),
        "BLOCK_FILE": str(tmp_path / "block"),
        "KREUZBERG_INBOX_URL": f"sqlite:///{inbox.path}",
    }
    argv = [sys.executable, "-m", "kreuzberg_webhooks", "inbox", "worker", "--receiver", "grace_app:receiver"]
    proc = subprocess.Popen([*argv, *options], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("how", ["grace-ends", "second-signal"])
def test_the_worker_command_leaves_a_handler_still_running_after_its_shutdown_grace(
    tmp_path: Path, inbox: SQLiteInbox, how: str
) -> None:
    from tests.inbox.support import entry_for

    entry = entry_for(received_at=time.time())
    inbox.enqueue(entry)
    grace = "0.5" if how == "grace-ends" else "600"
    proc = _start_grace_worker(tmp_path, inbox, "--shutdown-grace", grace)
    try:
        assert proc.stderr is not None
        assert "inbox worker running" in proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        assert f"stopping: waiting up to {grace} s for the running handler" in proc.stderr.readline()
        if how == "second-signal":
            proc.send_signal(signal.SIGINT)  # Ctrl-C: stop now
        _, err = proc.communicate(timeout=60)  # the handler never ends: the grace or the signal does
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    why = "after a grace of 0.5 s" if how == "grace-ends" else "on a second signal"
    assert f"inbox worker stopped {why} with a handler still running" in err
    assert "comes back after its lease" in err
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.RUNNING, 1)  # held until its lease ends


@pytest.mark.slow
def test_the_worker_command_settles_a_handler_that_ends_within_its_shutdown_grace(
    tmp_path: Path, inbox: SQLiteInbox
) -> None:
    from tests.inbox.support import entry_for

    entries = [entry_for(received_at=time.time()) for _ in range(3)]
    for entry in entries:
        inbox.enqueue(entry)
    proc = _start_grace_worker(tmp_path, inbox)  # the default grace: 30 s
    try:
        proc.send_signal(signal.SIGTERM)
        (tmp_path / "block").unlink()  # the running handler ends after the signal
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "handler still running" not in err
    states = sorted(r.state.value for r in (inbox.get(entry.key) for entry in entries) if r)
    # The running one settled done; the batch's others, claimed but not started, given back.
    assert states == ["done", "queued", "queued"]


def done(inbox: SQLiteInbox) -> str:
    entry = make_entry()
    inbox.enqueue(entry)
    claim = inbox.claim(entry.key, LEASE)
    assert claim is not None
    inbox.complete(claim.key, claim.token)
    assert entry.event_id is not None
    return entry.event_id


def test_retry_refuses_a_done_delivery_unless_told_so(
    capsys: pytest.CaptureFixture[str], inbox: SQLiteInbox, inbox_path: Path
) -> None:
    finished, failed = done(inbox), dead(inbox)
    store = f"sqlite:///{inbox_path}"
    code, out, err = run(capsys, "inbox", "retry", finished, failed, "--store", store)
    assert code == 1
    assert out.strip() == "queued 1 delivery again"
    assert f"not queued, done already: {finished}" in err
    assert "--include-done" in err
    assert [r.state for r in (inbox.get(finished), inbox.get(failed)) if r] == [
        DeliveryState.DONE,
        DeliveryState.QUEUED,
    ]
    code, _, err = run(capsys, "inbox", "retry", "--state", "done", "--store", store)
    assert code == 2
    assert "--include-done" in err
    assert inbox.counts()[DeliveryState.DONE] == 1
    # Asked for: queued, and told what the worker will do with it.
    code, out, err = run(capsys, "inbox", "retry", finished, "--include-done", "--store", store)
    assert (code, out.strip()) == (0, "queued 1 delivery again")
    assert "replay store" in err
    record = inbox.get(finished)
    assert record is not None
    assert record.state is DeliveryState.QUEUED


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--store", "sqlite:///%00x"],
        ["list", "--store", "postgresql://[::1/db"],
        ["list", "--store", "redis://localhost:99999"],
        ["list", "--store", "postgresql://localhost:99999/db"],
        ["list", "--store", "sqlite:///inbox.db?mode=ro"],
        ["list", "--store", "sqlite:///inbox.db", "--limit", "0"],
        ["list", "--store", "sqlite:///inbox.db", "--limit", "-3"],
        ["purge", "--store", "sqlite:///inbox.db", "--state", "done", "--older-than", "nan"],
        ["purge", "--store", "sqlite:///inbox.db", "--state", "done", "--older-than", "-5"],
        ["purge", "--store", "sqlite:///inbox.db", "--state", "done", "--older-than", "inf"],
        ["worker", "--receiver", "tests.inbox.support:SECRET", "--store", "sqlite:///inbox.db", "--poll-interval", "0"],
        [
            "worker",
            "--receiver",
            "tests.inbox.support:SECRET",
            "--store",
            "sqlite:///inbox.db",
            "--shutdown-grace",
            "-1",
        ],
        [
            "worker",
            "--receiver",
            "tests.inbox.support:SECRET",
            "--store",
            "sqlite:///inbox.db",
            "--shutdown-grace",
            "nan",
        ],
    ],
    ids=str,
)
def test_a_bad_url_or_number_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "inbox", *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("kreuzberg-webhooks")
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] in ([], ["inbox.db"])  # never "inbox.db?mode=ro"
