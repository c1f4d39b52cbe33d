"""The cloud package's public surface: a sorted ``__all__`` of importable names; the emulator needs nothing
beyond the standard library."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kreuzberg_webhooks.cloud
import kreuzberg_webhooks.emulator
from tests.test_exported_members import _isort_key


@pytest.mark.parametrize("module", [kreuzberg_webhooks.cloud, kreuzberg_webhooks.emulator], ids=lambda m: m.__name__)
def test_all_is_sorted_and_importable(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names, key=_isort_key)
    for name in names:
        assert hasattr(module, name)


def test_the_emulator_and_the_cli_import_no_third_party_module() -> None:
    script = (
        "import sys, kreuzberg_webhooks.emulator, kreuzberg_webhooks.cli;"
        "bad = {'httpx', 'anyio', 'httpcore', 'redis', 'psycopg', 'django'} & set(sys.modules);"
        "print(sorted(bad))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
