"""The public surface: a sorted ``__all__`` of importable public names, and no framework on import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import kreuzberg_webhooks

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("starlette", "fastapi", "flask", "django", "werkzeug", "redis", "uvicorn", "gunicorn", "httpx")


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then everything else.
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_without_duplicates() -> None:
    names = kreuzberg_webhooks.__all__
    assert names == sorted(names, key=_isort_key)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", kreuzberg_webhooks.__all__)
def test_every_exported_name_is_importable_and_public(name: str) -> None:
    assert hasattr(kreuzberg_webhooks, name)
    assert not name.startswith("_") or name == "__version__"
    value = getattr(kreuzberg_webhooks, name)
    module = getattr(value, "__module__", None)
    if isinstance(value, type) or callable(value):
        # Defined inside the package, never re-exported from a dependency.
        assert module is not None
        assert module.startswith("kreuzberg_webhooks")


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from kreuzberg_webhooks import *", namespace)  # noqa: S102 - the statement under test
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(kreuzberg_webhooks.__all__)


def test_the_signing_and_verifying_names_are_exported() -> None:
    for name in ("sign", "Verifier", "WebhookError", "WebhookEvent", "sign_timestamped", "TimestampedSignature"):
        assert name in kreuzberg_webhooks.__all__


def _modules_after(statement: str) -> list[str]:
    """Top-level modules a fresh interpreter holds after *statement*, minus those it starts with."""
    script = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("import kreuzberg_webhooks", id="package"),
        pytest.param("import kreuzberg_webhooks.testing", id="testing"),
        pytest.param("import kreuzberg_webhooks.stores", id="stores"),
        pytest.param("from kreuzberg_webhooks import *", id="star"),
    ],
)
def test_importing_the_core_imports_no_framework_and_nothing_third_party(statement: str) -> None:
    loaded = _modules_after(statement)
    assert "kreuzberg_webhooks" in loaded
    assert [m for m in loaded if m in FRAMEWORKS] == []
    third_party = [m for m in loaded if m != "kreuzberg_webhooks" and m not in sys.stdlib_module_names]
    assert third_party == []


def test_the_check_can_see_a_framework_import() -> None:
    # The control: the same probe does notice a framework when one is imported.
    assert "starlette" in _modules_after("import kreuzberg_webhooks, starlette")
