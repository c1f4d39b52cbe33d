"""A store or inbox URL that cannot work is one ConfigurationError, from ``open_store`` and
``open_inbox`` alike, and never a file name it was not meant to be."""

from __future__ import annotations

from pathlib import Path

import pytest

from kreuzberg_webhooks import ConfigurationError
from kreuzberg_webhooks.inbox import open_inbox
from kreuzberg_webhooks.stores import open_store

BAD_URLS = [
    "sqlite:///%00x",
    "sqlite:///x.db?mode=ro",
    "sqlite:///x.db#fragment",
    "sqlite://",
    "postgresql://[::1/db",
    "redis://[::1",
    "redis://localhost:99999",
    "postgresql://localhost:99999/db",
    "redis://localhost:port/0",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("opener", [open_store, open_inbox], ids=["open_store", "open_inbox"])
def test_a_url_that_cannot_work_is_refused_with_one_line(
    url: str, opener: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as raised:
        opener(url)  # type: ignore[operator]
    assert "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []  # no file named after a query string


def test_a_question_mark_in_a_file_name_is_written_percent_encoded(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/what%3F.db")
    assert store is not None
    assert (tmp_path / "what?.db").exists()
