"""``Receiver.on()`` is generic: a handler may be typed for the shape its type delivers (``mypy --strict``)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

TYPING = Path(__file__).parent / "typing"


def _mypy(path: Path) -> tuple[str, int]:
    stdout, stderr, status = api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(path)])
    return stdout + stderr, status


def test_handlers_typed_for_their_family_pass_mypy_strict() -> None:
    output, status = _mypy(TYPING / "handlers.py")
    assert status == 0, output


def test_a_handler_for_another_family_fails_mypy_strict() -> None:
    path = TYPING / "wrong_handlers.py"
    output, status = _mypy(path)
    assert status == 1
    wrong = {index for index, line in enumerate(path.read_text().splitlines(), start=1) if line.endswith("# wrong")}
    errors = [line.split(":") for line in output.splitlines() if ": error:" in line]
    flagged = {int(parts[1]) for parts in errors if parts[0].endswith(path.name)}
    assert flagged == wrong, output
