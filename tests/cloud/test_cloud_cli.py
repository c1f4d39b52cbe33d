"""``emulate`` and ``reconcile`` on bad arguments and missing extras: one line on stderr and exit 2, never a
traceback; ``emulate --extractor kreuzberg`` runs the real ``kreuzberg`` library under the real server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, free_port, run_server

pytestmark = pytest.mark.slow

KEY = "cloud-cli-key-0123456789abcdef"

BLOCK_HTTPX = """
import sys

class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "httpx" or name.startswith("httpx."):
            raise ImportError("No module named 'httpx' (blocked by the test)")
        return None

sys.meta_path.insert(0, _Blocker())
"""


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "KREUZBERG_API_KEY": KEY, **(env or {})}
    argv = [sys.executable, "-m", "kreuzberg_webhooks", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=full_env, cwd=ROOT, check=False)


def assert_one_line_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--port", "99999"], "99999"),
        (["--port", "-1"], "port"),
        (["--host", "no such host!"], "no such host!"),
        (["--host", "256.1.1.1"], "256.1.1.1"),
        (["--read-timeout", "0"], "read-timeout"),
    ],
    ids=["port-too-big", "port-negative", "malformed-host", "bad-address", "read-timeout"],
)
def test_emulate_with_a_bad_argument_is_one_line_and_exit_2(args: list[str], word: str) -> None:
    assert_one_line_usage_error(cli("emulate", *args), word)


def test_reconcile_without_the_cloud_extra_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCK_HTTPX))
    (tmp_path / "app.py").write_text("from kreuzberg_webhooks import Receiver\nreceiver = Receiver('s' * 32)\n")
    pythonpath = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    args = ["reconcile", "--app-dir", str(tmp_path), "app:receiver", "--tracker", "memory://"]
    result = cli(*args, env={"PYTHONPATH": pythonpath, "KREUZBERG_API_URL": "http://127.0.0.1:9"})
    assert_one_line_usage_error(result, "[cloud]")


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--api-url", "not a url"], "not a url"),
        (["--api-url", "http://127.0.0.1:99999"], "99999"),
        (["--tracker", "nosuch://x"], "nosuch"),
    ],
    ids=["api-url", "api-port", "tracker"],
)
def test_reconcile_with_a_bad_argument_is_one_line_and_exit_2(tmp_path: Path, args: list[str], word: str) -> None:
    (tmp_path / "app.py").write_text("from kreuzberg_webhooks import Receiver\nreceiver = Receiver('s' * 32)\n")
    base = ["reconcile", "--app-dir", str(tmp_path), "app:receiver", "--tracker", "memory://"]
    result = cli(*base, *args, env={"KREUZBERG_API_URL": "http://127.0.0.1:9"})
    assert_one_line_usage_error(result, word)


def test_emulate_with_the_kreuzberg_extractor_reads_an_html_upload(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "kreuzberg_webhooks", "emulate", "--port", str(port), "--api-key", KEY]
    argv += ["--extractor", "kreuzberg", "--job-delay", "0"]
    page = b"<html><head><title>T</title></head><body><h1>Invoice</h1><p>Total: <b>42</b></p></body></html>"
    with run_server(argv, port=port, log=tmp_path / "emulate.log") as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            files = [
                ("file", ("invoice.html", page, "text/html")),
                ("file", ("note.txt", b"plain words", "text/plain")),
            ]
            html_id, text_id = client.post("/v1/extract", files=files).json()["job_ids"]
            deadline = time.monotonic() + 60
            documents: dict[str, dict[str, object]] = {}
            while time.monotonic() < deadline and len(documents) < 2:
                for job_id in (html_id, text_id):
                    document = client.get(f"/v1/jobs/{job_id}").json()
                    if document["status"] in ("completed", "failed"):
                        documents[job_id] = document
                time.sleep(0.05)
    html, text = documents[html_id], documents[text_id]
    assert html["status"] == "completed", html
    content = html["result"]["content"]  # type: ignore[index]
    assert "Invoice" in content
    assert "42" in content
    assert "<p>" not in content  # read by kreuzberg, not echoed
    assert html["mime_type"] == "text/html"
    assert text["result"]["content"].strip() == "plain words"  # type: ignore[index]


def test_reconcile_with_a_tracker_it_cannot_reach_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from kreuzberg_webhooks import Receiver\nreceiver = Receiver('s' * 32)\n")
    unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'tracker.sqlite3'}"
    args = ["reconcile", "--app-dir", str(tmp_path), "app:receiver", "--tracker", unreachable]
    result = cli(*args, env={"KREUZBERG_API_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "tracker" in line
