"""``Receiver.on()`` is generic: a handler may be typed for the shape its type delivers (``mypy --strict``)."""

from __future__ import annotations

import functools
from pathlib import Path

from mypy import api

TYPING = Path(__file__).parent / "typing"
RIGHT = TYPING / "handlers.py"
WRONG = TYPING / "wrong_handlers.py"


@functools.cache
def _errors() -> tuple[dict[str, set[int]], str]:
    """``mypy --strict`` over both files at once (one run: it takes seconds): the lines in error, per file."""
    stdout, stderr, _ = api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(RIGHT), str(WRONG)])
    errors: dict[str, set[int]] = {RIGHT.name: set(), WRONG.name: set()}
    for line in stdout.splitlines():
        parts = line.split(":")
        if ": error:" in line and Path(parts[0]).name in errors:
            errors[Path(parts[0]).name].add(int(parts[1]))
    return errors, stdout + stderr


def test_handlers_typed_for_their_family_pass_mypy_strict() -> None:
    errors, output = _errors()
    assert errors[RIGHT.name] == set(), output
    assert "errors in 1 file (checked 2 source files)" in output, output  # mypy ran, and only WRONG failed


def test_a_handler_for_another_family_fails_mypy_strict() -> None:
    errors, output = _errors()
    wrong = {index for index, line in enumerate(WRONG.read_text().splitlines(), start=1) if line.endswith("# wrong")}
    assert errors[WRONG.name] == wrong, output
