"""SQLiteStore: the store contract, plus several processes sharing one file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kreuzberg_webhooks import ReplayStore, SQLiteStore

from .contract import FrozenClock, StoreContract


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.path = tmp_path / "replay.sqlite3"

    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return SQLiteStore(self.path, clock=clock)
