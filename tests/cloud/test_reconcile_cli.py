"""``kreuzberg-webhooks reconcile``: a pass from cron, against the emulator, through the app's own receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from kreuzberg_webhooks.cloud import SQLiteTracker, TrackedJob
from kreuzberg_webhooks.emulator import Emulator
from tests.servers import ROOT

pytestmark = pytest.mark.slow

KEY = "cli-reconcile-key-93ab1c"

APP = """
from pathlib import Path
from kreuzberg_webhooks import Receiver, SQLiteStore
from kreuzberg_webhooks.cloud import delivered_via

HERE = Path(__file__).parent
receiver = Receiver("cli-reconcile-secret-0123456789abcdef0123", store=SQLiteStore(HERE / "replay.sqlite3"))

@receiver.on()
def record(event):
    with (HERE / "seen.txt").open("a") as out:
        out.write(f"{event.job_id} {event.status} {len(event.result.content)} {delivered_via()}\\n")
"""


def run(tmp_path: Path, *args: str, key: str = KEY, url: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KREUZBERG_API_KEY": key, "KREUZBERG_API_URL": url}
    argv = [sys.executable, "-m", "kreuzberg_webhooks", "reconcile", "--app-dir", str(tmp_path), "app:receiver"]
    argv += ["--tracker", f"sqlite:///{tmp_path / 'replay.sqlite3'}", "--grace", "1", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False)


def track(tmp_path: Path, *job_ids: str) -> None:
    now = time.time()
    SQLiteTracker(tmp_path / "replay.sqlite3").track([TrackedJob(j, "", now, now) for j in job_ids])


def test_a_pass_dispatches_tracked_jobs_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    with Emulator(KEY, job_delay=0) as cloud:
        ids = cloud.submit([("a.txt", b"alpha"), ("b.txt", b"be")])
        track(tmp_path, *ids)
        time.sleep(0.05)
        first = run(tmp_path, url=cloud.base_url)
        second = run(tmp_path, url=cloud.base_url)
    assert first.returncode == 0, first.stderr
    assert "2 processed" in first.stdout
    assert second.returncode == 0
    assert "checked 0" in second.stdout or second.stdout == ""
    seen = sorted((tmp_path / "seen.txt").read_text().splitlines())
    assert seen == sorted([f"{ids[0]} completed 5 reconcile", f"{ids[1]} completed 2 reconcile"])
    assert KEY not in first.stdout + first.stderr


def test_permanent_failures_and_a_refused_key_exit_1_without_printing_the_key(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    with Emulator(KEY) as cloud:
        purged = str(uuid.uuid4())
        track(tmp_path, purged)
        result = run(tmp_path, "--not-found-grace", "0", url=cloud.base_url)
        track(tmp_path, str(uuid.uuid4()))
        refused = run(tmp_path, url=cloud.base_url, key="wrong-" + KEY)
    assert result.returncode == 1
    assert f"failed {purged}" in result.stdout
    assert "404" in result.stdout
    assert refused.returncode == 1
    assert "401" in refused.stderr
    assert KEY not in result.stdout + result.stderr + refused.stdout + refused.stderr


def test_a_bad_app_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, url="http://127.0.0.1:9")
    assert result.returncode == 2
    assert "cannot import" in result.stderr
