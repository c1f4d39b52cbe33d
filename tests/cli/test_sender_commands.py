"""The ``kreuzberg-webhooks`` command line and the sender simulator behind ``simulate``.

The commands run in-process through ``main()`` (fast) and, where the process
boundary matters (the console script, ``python -m``, tracebacks), as real
subprocesses. The simulator's retry logic is driven with a scripted transport
and a recording ``wait``; ``tests/integration/test_cli_against_server.py`` runs it
against real servers.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import io
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import Verifier, WebhookError, sign, sign_timestamped
from kreuzberg_webhooks.cli import main
from kreuzberg_webhooks.testing import (
    job_document_payload,
    job_event_payload,
    payload_for_event,
    webhook_event_payload,
)
from kreuzberg_webhooks.testing.simulate import (
    MAX_ATTEMPTS,
)
from tests.servers import BIN, free_port

SECRET = "cli-unit-secret-do-not-print-0123456789abcdef"
OTHER = "cli-unit-other-secret-0123456789abcdef-ABC"
COMMANDS = ["sign", "verify", "send-test", "simulate"]


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run ``main(argv)`` in-process with *stdin* bytes; the secret is in the environment."""
    monkeypatch.setenv("KREUZBERG_WEBHOOK_SECRET", SECRET)

    def invoke(*argv: str, stdin: bytes = b"") -> Run:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(argv))
        captured = capsys.readouterr()
        result = Run(code, captured.out, captured.err)
        # Never, in any command, on any path: the secret.
        assert SECRET not in result.out + result.err
        assert OTHER not in result.out + result.err
        assert "Traceback" not in result.err
        return result

    return invoke


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.json"
    path.write_bytes(json.dumps(job_event_payload(status="failed")).encode())
    return path


# -- sign ----------------------------------------------------------------------------------


def test_sign_prints_the_header_value_of_a_file(run: Any, body_file: Path) -> None:
    result = run("sign", str(body_file))
    assert result.code == 0
    assert result.out == sign(body_file.read_bytes(), SECRET) + "\n"
    assert result.err == ""


def test_sign_reads_the_body_from_stdin_byte_for_byte(run: Any) -> None:
    body = b'{"a": 1}\n\r\n'  # trailing newlines are part of the body
    assert run("sign", stdin=body).out.strip() == sign(body, SECRET)
    assert run("sign", "-", stdin=body).out.strip() == sign(body, SECRET)


def test_sign_with_name_prints_the_whole_header_line(run: Any, body_file: Path) -> None:
    result = run("sign", str(body_file), "--with-name", "--header", "X-Kreuzberg-Signature")
    assert result.out == f"X-Kreuzberg-Signature: {sign(body_file.read_bytes(), SECRET)}\n"


def test_sign_secret_option_and_file_take_precedence_over_the_environment(
    run: Any, body_file: Path, tmp_path: Path
) -> None:
    body = body_file.read_bytes()
    assert run("sign", str(body_file), "--secret", OTHER).out.strip() == sign(body, OTHER)
    key = tmp_path / "secret.key"
    key.write_text(OTHER + "\n")
    assert run("sign", str(body_file), "--secret-file", str(key)).out.strip() == sign(body, OTHER)


# -- verify --------------------------------------------------------------------------------


def test_verify_accepts_a_signed_event_and_prints_its_type_and_id(run: Any, body_file: Path) -> None:
    body = body_file.read_bytes()
    result = run("verify", str(body_file), "--signature", sign(body, SECRET))
    assert result.code == 0
    event_id = json.loads(body)["event_id"]
    assert result.out.startswith("ok: job.failed status=failed ")
    assert f"event_id={event_id}" in result.out


def test_verify_accepts_a_job_document(run: Any) -> None:
    body = json.dumps(job_document_payload(status="cancelled")).encode()
    result = run("verify", "--signature", sign(body, SECRET), stdin=body)
    assert result.code == 0
    assert result.out.startswith("ok: job.cancelled status=cancelled job_id=")
    assert "JobDocument" in result.out


@pytest.mark.parametrize(
    ("event", "shown"),
    [
        (
            "crawl.failed",
            "ok: crawl.failed status=failed event_id={event_id} job_id={crawl_job_id} (CrawlWebhookEvent)",
        ),
        (
            "auto_tune.completed",
            "ok: auto_tune.completed status=completed event_id={event_id} job_id={auto_tune_job_id} "
            "(AutoTuneWebhookEvent)",
        ),
        ("document.indexed", "ok: document.indexed status=- event_id={event_id} (UnknownEvent)"),
    ],
    ids=lambda value: value if "." in value and " " not in value else None,
)
def test_verify_names_the_family_and_identity_of_every_webhook(
    run: Any, tmp_path: Path, event: str, shown: str
) -> None:
    payload = payload_for_event(event)
    path = tmp_path / "body.json"
    path.write_bytes(json.dumps(payload).encode())
    signature = sign_timestamped(path.read_bytes(), SECRET)
    result = run("verify", str(path), "--signature", signature)
    assert (result.code, result.err) == (0, "")
    assert result.out == shown.format(**payload) + "\n"


def test_verify_accepts_any_of_several_secrets(run: Any, body_file: Path) -> None:
    signature = sign(body_file.read_bytes(), OTHER)
    assert run("verify", str(body_file), "--signature", signature).code == 1
    assert run("verify", str(body_file), "--signature", signature, "--secret", SECRET, "--secret", OTHER).code == 0


@pytest.mark.parametrize(
    ("payload", "signature", "options", "reason", "status"),
    [
        ({}, "wrong-secret", [], "signature_mismatch", 401),
        ({}, "sha256=abc", [], "malformed_signature", 401),
        ({}, "", [], "missing_signature", 401),
        ({"timestamp": 1_000_000_000}, "good", [], "stale_timestamp", 400),
        ({"timestamp": 1_000_000_000 + 3600}, "good", ["--now", "1000000000"], "future_timestamp", 400),
        (
            {"timestamp": 1_000_000_000 - 120},
            "good",
            ["--now", "1000000000", "--max-age", "60"],
            "stale_timestamp",
            400,
        ),
        ({"job_id": 42}, "good", [], "invalid_field", 400),
        ({"status": None}, "good", [], "invalid_field", 400),
    ],
    ids=["mismatch", "malformed", "empty", "stale", "future", "max-age", "bad-job-id", "null-status"],
)
def test_verify_rejection_prints_the_reason_code_and_exits_1(
    run: Any, payload: dict[str, Any], signature: str, options: list[str], reason: str, status: int
) -> None:
    body = json.dumps(job_event_payload(**payload)).encode()
    header = {"good": sign(body, SECRET), "wrong-secret": sign(body, OTHER)}.get(signature, signature)
    result = run("verify", "--signature", header, *options, stdin=body)
    assert result.code == 1
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert f"rejected: {reason} " in result.err
    assert f"answers {status}" in result.err
    assert header not in result.err or not header  # the signature is not echoed either


def test_verify_no_window_accepts_an_old_capture(run: Any) -> None:
    body = json.dumps(job_event_payload(timestamp=1_000_000_000)).encode()
    assert run("verify", "--signature", sign(body, SECRET), "--no-window", stdin=body).code == 0


def test_verify_body_that_is_not_json_gets_invalid_json(run: Any) -> None:
    body = b"\xff\xfe not json"
    result = run("verify", "--signature", sign(body, SECRET), stdin=body)
    assert (result.code, "rejected: invalid_json" in result.err) == (1, True)


def test_verify_warns_about_a_weak_secret_on_one_line(run: Any, body_file: Path) -> None:
    weak = "short"
    result = run("verify", str(body_file), "--signature", sign(body_file.read_bytes(), weak), "--secret", weak)
    assert result.code == 0
    assert result.err == "kreuzberg-webhooks: warning: a webhook secret is 5 bytes long; use at least 32 random bytes\n"


# -- errors: one line, the right exit status, never a traceback ---------------------------


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["sign", "/nonexistent/body.json"], 2, "sign: error: cannot read '/nonexistent/body.json': No such file"),
        (["sign", "."], 2, "sign: error: cannot read '.': Is a directory"),
        (["verify", "-"], 2, "verify: error: the following arguments are required: --signature"),
        (["send-test", "localhost:8000/hooks"], 2, "not an http:// or https:// URL: 'localhost:8000/hooks'"),
        (["send-test", "http://127.0.0.1:99999/"], 2, "port 99999 is not between 1 and 65535"),
        (["send-test", "ftp://example.com/"], 2, "not an http:// or https:// URL"),
        (["simulate", "http://127.0.0.1:1/", "--events", "0"], 2, "argument --events: must be at least 1: '0'"),
        (["simulate", "http://127.0.0.1:1/", "--duplicates", "1.5"], 2, "must be between 0 and 1: '1.5'"),
        (["simulate", "http://127.0.0.1:1/", "--time-scale", "nan"], 2, "must be a positive number: 'nan'"),
        (
            ["simulate", "http://127.0.0.1:1/", "--events", "2", "--concurrent-duplicates", "3"],
            2,
            "--concurrent-duplicates (3) is more than --events (2)",
        ),
        (["send-test", "http://127.0.0.1:1/", "--status", "done"], 2, "argument --status: invalid choice: 'done'"),
        (["send-test", "http://127.0.0.1:1/", "--field", "=1"], 2, "expected NAME=VALUE, got '=1'"),
        (
            ["send-test", "http://127.0.0.1:1/", "--event", "crawl.completed", "--shape", "document"],
            2,
            "--event sends a webhook of the event's family: it does not go with --shape document",
        ),
        (
            ["send-test", "http://127.0.0.1:1/", "--event", "job.failed", "--status", "completed"],
            2,
            "--event job.failed does not carry --status completed: expected failed",
        ),
        (
            ["simulate", "http://127.0.0.1:1/", "--event", "all", "--status", "partial_success"],
            2,
            "--event job.failed does not carry --status partial_success",
        ),
        (["send-test", "http://127.0.0.1:1/", "--event", "all"], 2, "--event all is for simulate"),
        (["send-test", "http://127.0.0.1:1/", "--event", "job completed"], 2, "not an event name: 'job completed'"),
        (["bogus"], 2, "invalid choice: 'bogus'"),
        ([], 2, "choose a command: sign, verify, send-test or simulate"),
        (["sign", "--secret-file", "/nonexistent/key"], 2, "cannot read the secret file '/nonexistent/key'"),
    ],
    ids=lambda value: value if isinstance(value, int) else None,
)
def test_bad_invocation_is_one_line_on_stderr(run: Any, argv: list[str], code: int, message: str) -> None:
    result = run(*argv, stdin=b"{}")
    assert result.code == code
    assert result.out == ""
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("kreuzberg-webhooks")
    assert message in result.err


@pytest.mark.parametrize("command", ["sign", "verify", "send-test", "simulate"])
def test_missing_secret_is_a_usage_error(run: Any, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.delenv("KREUZBERG_WEBHOOK_SECRET")
    argv = {
        "sign": ["sign"],
        "verify": ["verify", "--signature", "sha256=" + "0" * 64],
        "send-test": ["send-test", "http://127.0.0.1:1/"],
        "simulate": ["simulate", "http://127.0.0.1:1/"],
    }[command]
    result = run(*argv, stdin=b"{}")
    assert result.code == 2
    assert result.err == (
        f"kreuzberg-webhooks {command}: error: no webhook secret: "
        "set KREUZBERG_WEBHOOK_SECRET, or pass --secret or --secret-file\n"
    )


def test_empty_secret_is_refused(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("sign", "--secret", "", stdin=b"{}")
    assert (result.code, result.err) == (2, "kreuzberg-webhooks sign: error: the webhook secret is empty\n")


def test_body_on_a_terminal_is_refused_rather_than_waited_for(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.BytesIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(Terminal()))
    code = main(["sign"])
    assert code == 2


def test_send_test_to_a_closed_port_reports_connection_refused(run: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks"
    result = run("send-test", url)
    assert result.code == 1
    assert result.out.startswith(f"POST {url}")
    assert result.err.startswith(f"kreuzberg-webhooks send-test: error: no answer from {url}: connection refused")


def test_url_password_is_masked_in_output(run: Any) -> None:
    result = run("send-test", f"http://user:hunter2-password@127.0.0.1:{free_port()}/hooks")
    assert result.code == 1
    assert "hunter2" not in result.out + result.err
    assert "user:***@127.0.0.1" in result.err


class Endpoint:
    """A real HTTP endpoint on 127.0.0.1 in a thread: verifies like a receiver, or (``lax``) acknowledges anything."""

    def __init__(self, *, lax: bool = False) -> None:
        verifier = Verifier(SECRET)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = 200, b'{"status":"processed"}'
                if not lax:
                    try:
                        verifier.verify(body, dict(self.headers.items()))
                    except WebhookError as error:
                        status, answer = error.status_code, json.dumps({"error": error.reason}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/kreuzberg"

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--wrong-signature", "--unsigned"])
def test_a_negative_check_exits_0_when_the_endpoint_refuses_and_says_so(run: Any, flag: str) -> None:
    with Endpoint() as endpoint:
        result = run("send-test", endpoint.url, flag)
    assert result.code == 0, result
    assert re.search(r"^401 Unauthorized ", result.out, re.M)
    assert result.out.splitlines()[-1].startswith("ok: the ")
    assert "refused as expected (401)" in result.out
    assert result.err == ""


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "what"), [("--wrong-signature", "wrongly signed"), ("--unsigned", "unsigned")])
def test_a_negative_check_exits_1_when_the_endpoint_accepts_the_forgery(run: Any, flag: str, what: str) -> None:
    with Endpoint(lax=True) as endpoint:
        result = run("send-test", endpoint.url, flag)
    assert result.code == 1
    assert re.search(r"^200 OK ", result.out, re.M)
    assert f"expected 401, got 200: the endpoint ACCEPTED a {what} delivery" in result.err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        pytest.param([], 0, None, id="valid-delivery-2xx"),
        pytest.param(["--field", "timestamp=0"], 1, "expected 2xx, got 400", id="stale-without-expect"),
        pytest.param(["--field", "timestamp=0", "--expect", "400"], 0, "ok: answered as expected (400)", id="stale"),
        pytest.param(["--field", "timestamp=0", "--expect", "4xx"], 0, "as expected (4xx)", id="stale-class"),
        pytest.param(["--expect", "401"], 1, "ACCEPTED a delivery it should refuse", id="valid-but-expected-401"),
        pytest.param(["--wrong-signature", "--expect", "2xx"], 1, "expected 2xx, got 401", id="override"),
    ],
)
def test_send_test_exits_0_exactly_when_the_answer_is_the_expected_one(
    run: Any, args: list[str], code: int, said: str | None
) -> None:
    with Endpoint() as endpoint:
        result = run("send-test", endpoint.url, *args)
    assert result.code == code, result
    if said is not None:
        assert said in result.out + result.err


@pytest.mark.parametrize("value", ["2XX ", "6xx", "x", "99", "600", "4x", "٤٠١"])
def test_expect_takes_a_code_or_a_class(run: Any, value: str) -> None:
    result = run("send-test", "http://127.0.0.1:1/", "--expect", value)
    if value == "2XX ":
        assert result.code == 1  # parsed; nothing listens on port 1
    else:
        assert result.code == 2
        assert "argument --expect: expected a status code (401) or a class (2xx, 4xx)" in result.err


def test_simulate_against_a_closed_port_dead_letters_every_event_and_exits_1(run: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks"
    result = run("simulate", url, "--events", "3", "--time-scale", "0.0001")
    assert result.code == 1
    assert "  dead-lettered                   3" in result.out
    assert f"connection refused x{3 * MAX_ATTEMPTS}" in result.out
    assert "LOST 3 of 3 events" in result.out


# -- --help ----------------------------------------------------------------------------------


def test_main_help_lists_every_command_with_examples(run: Any) -> None:
    result = run("--help")
    assert result.code == 0
    assert result.out.startswith("usage: kreuzberg-webhooks [-h] [--version] COMMAND [OPTIONS]")
    for command in COMMANDS:
        assert f"\n  {command} " in result.out
    assert "examples:\n" in result.out
    assert "exit status:" in result.out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description_and_examples(run: Any, command: str) -> None:
    result = run(command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: kreuzberg-webhooks {command} ")
    description = result.out.split("\n\n")[1]
    assert len(description) > 60
    examples = result.out.split("examples:\n")[1].splitlines()
    assert examples
    assert all(re.search(rf"kreuzberg-webhooks {command}( |$)", line) for line in examples), examples


def test_version_is_printed(run: Any) -> None:
    from kreuzberg_webhooks import __version__

    assert run("--version").out == f"kreuzberg-webhooks {__version__}\n"


# -- the real processes -------------------------------------------------------------------


def test_console_script_and_python_m_run_the_same_command_line(tmp_path: Path) -> None:
    body = b'{"hello": "world"}'
    env = {"KREUZBERG_WEBHOOK_SECRET": SECRET, "PATH": str(BIN)}
    script = subprocess.run(
        [str(BIN / "kreuzberg-webhooks"), "sign"], input=body, capture_output=True, env=env, check=False
    )
    module = subprocess.run(
        [sys.executable, "-m", "kreuzberg_webhooks", "sign"], input=body, capture_output=True, env=env, check=False
    )
    assert script.returncode == module.returncode == 0
    assert script.stdout.decode().strip() == module.stdout.decode().strip() == sign(body, SECRET)
    usage = subprocess.run(
        [sys.executable, "-m", "kreuzberg_webhooks", "sign", "--help"], capture_output=True, env=env, check=False
    )
    assert usage.stdout.decode().startswith("usage: python -m kreuzberg_webhooks sign")


def test_errors_in_a_real_process_are_one_line_without_traceback(tmp_path: Path) -> None:
    env = {"KREUZBERG_WEBHOOK_SECRET": SECRET, "PATH": str(BIN)}
    cases = [
        ["verify", str(tmp_path / "missing.json"), "--signature", "sha256=" + "0" * 64],
        ["send-test", f"http://127.0.0.1:{free_port()}/hooks", "--timeout", "2"],
        ["send-test", "http://[::1/"],
    ]
    for argv in cases:
        result = subprocess.run(
            [str(BIN / "kreuzberg-webhooks"), *argv], capture_output=True, text=True, env=env, check=False
        )
        assert result.returncode in (1, 2), argv
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert SECRET not in result.stdout + result.stderr


_CLOSED = "http://127.0.0.1:9/hooks"  # never reached: every case is refused before sending


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["send-test", "http://127.0.0.1:99999/hooks"], "port 99999 is not between 1 and 65535"),
        (["simulate", "http://127.0.0.1:99999/hooks"], "port 99999 is not between 1 and 65535"),
        (["send-test", "http://127.0.0.1:0/hooks"], "port 0 is not between 1 and 65535"),
        (["send-test", "http://[::1/"], "not a valid URL ('http://[::1/'): Invalid IPv6 URL"),
        (["simulate", "http://[::1/hooks"], "not a valid URL ('http://[::1/hooks'): Invalid IPv6 URL"),
        (["send-test", "http://user:hunter2-pw@[::1/"], "not a valid URL ('http://user:***@[::1/')"),
        (["send-test", "http://[zz::1]:8000/"], "not a valid URL ('http://[zz::1]:8000/')"),
        (["simulate", _CLOSED, "--events", "99999999999999999999999"], "--events: must be at most 1000000"),
        (["simulate", _CLOSED, "--concurrency", "100000000"], "--concurrency: must be at most 1024"),
        (["simulate", _CLOSED, "--concurrent-duplicates", "1" + "0" * 30], "--concurrent-duplicates: must be at most"),
        (["send-test", _CLOSED, "--timeout", "1e300"], "--timeout: must be at most 86400 seconds: '1e300'"),
        (["simulate", _CLOSED, "--timeout", "1e12"], "--timeout: must be at most 86400 seconds: '1e12'"),
        (["simulate", _CLOSED, "--time-scale", "1e300"], "--time-scale: must be at most 1000: '1e300'"),
        (["send-test", _CLOSED, "--header", ""], "--header: not a header name: ''"),
        (["send-test", _CLOSED, "--header", "X Signature"], "--header: not a header name: 'X Signature'"),
        (["simulate", _CLOSED, "--header", "X-Sig:"], "--header: not a header name: 'X-Sig:'"),
        (
            ["sign", "--scheme", "t-v1", "--timestamp", "99999999999999999999999"],
            "--timestamp: must be at most 999999999999: '99999999999999999999999'",
        ),
    ],
    ids=lambda value: " ".join(value)[:60] if isinstance(value, list) else "",
)
def test_bad_input_to_the_console_script_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    env = {"KREUZBERG_WEBHOOK_SECRET": SECRET, "PATH": str(BIN)}
    result = subprocess.run(
        [str(BIN / "kreuzberg-webhooks"), *argv], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"kreuzberg-webhooks {argv[0]}: error: "), result.stderr
    assert message in result.stderr
    assert "hunter2" not in result.stderr
    assert SECRET not in result.stderr


def test_the_command_line_imports_nothing_outside_the_standard_library() -> None:
    script = (
        "import sys\n"
        "import kreuzberg_webhooks.cli, kreuzberg_webhooks.testing.simulate, kreuzberg_webhooks.__main__\n"
        "outside = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'kreuzberg_webhooks'}\n"
        "print(sorted(m for m in outside if not m.startswith('_')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


# -- the second format: --scheme and the WebhookEvent shape -----------------------------------


@pytest.fixture
def webhook_file(tmp_path: Path) -> Path:
    path = tmp_path / "webhook_event.json"
    path.write_bytes(json.dumps(webhook_event_payload(event="job.failed")).encode())
    return path


def test_sign_t_v1_prints_a_timestamped_signature_hmac_agrees_with(run: Any, webhook_file: Path) -> None:
    result = run("sign", str(webhook_file), "--scheme", "t-v1", "--timestamp", "1764651600")
    assert result.code == 0, result.err
    expected = hmac.new(SECRET.encode(), b"1764651600." + webhook_file.read_bytes(), hashlib.sha256).hexdigest()
    assert result.out == f"t=1764651600,v1={expected}\n"


def test_sign_t_v1_defaults_to_now(run: Any, webhook_file: Path) -> None:
    before = int(time.time())
    result = run("sign", str(webhook_file), "--scheme", "t-v1", "--with-name")
    t = int(re.fullmatch(r"X-Webhook-Signature: t=(\d+),v1=[0-9a-f]{64}\n", result.out).group(1))  # type: ignore[union-attr]
    assert before <= t <= int(time.time())


def test_sign_timestamp_without_t_v1_is_a_usage_error(run: Any, webhook_file: Path) -> None:
    result = run("sign", str(webhook_file), "--timestamp", "5")
    assert result.code == 2
    assert "--scheme t-v1" in result.err


def test_verify_accepts_a_t_v1_signed_webhook_event(run: Any, webhook_file: Path) -> None:
    now = int(time.time())
    signature = sign_timestamped(webhook_file.read_bytes(), SECRET, timestamp=now)
    result = run("verify", str(webhook_file), "--signature", signature)
    assert result.code == 0, result.err
    assert result.out.startswith("ok: job.failed status=failed event_id=")
    assert "(WebhookEvent)" in result.out


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        pytest.param(["--scheme", "sha256"], "malformed_signature", id="restricted-to-sha256"),
        pytest.param(["--now", "+301"], "stale_timestamp", id="t-older-than-5-minutes"),
    ],
)
def test_verify_t_v1_rejections(run: Any, webhook_file: Path, argv: list[str], reason: str) -> None:
    now = int(time.time())
    signature = sign_timestamped(webhook_file.read_bytes(), SECRET, timestamp=now)
    argv = [str(now + 301) if arg == "+301" else arg for arg in argv]
    result = run("verify", str(webhook_file), "--signature", signature, *argv)
    assert result.code == 1
    assert f"rejected: {reason}" in result.err


def test_verify_no_window_accepts_an_old_t_v1_capture(run: Any, webhook_file: Path) -> None:
    signature = sign_timestamped(webhook_file.read_bytes(), SECRET, timestamp=int(time.time()) - 7 * 86_400)
    assert run("verify", str(webhook_file), "--signature", signature).code == 1
    assert run("verify", str(webhook_file), "--signature", signature, "--no-window").code == 0


def test_verify_restricted_to_t_v1_refuses_sha256(run: Any, body_file: Path) -> None:
    result = run("verify", str(body_file), "--signature", sign(body_file.read_bytes(), SECRET), "--scheme", "t-v1")
    assert result.code == 1
    assert "malformed_signature" in result.err


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
def test_a_field_value_that_is_not_json_is_sent_as_a_string_never_as_an_invalid_body(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KREUZBERG_WEBHOOK_SECRET", SECRET)
    main(["send-test", f"http://127.0.0.1:{free_port()}/", "--show-body", "--timeout", "2", "--field", f"note={value}"])
    body = capsys.readouterr().out.splitlines()[1]
    assert json.loads(body, parse_constant=lambda constant: pytest.fail(f"{constant} in the body"))["note"] == value
