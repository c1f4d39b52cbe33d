"""Settings that cannot work are refused when they are given, never discovered per delivery.

One table: every constructor and setting, each nonsense value, one ConfigurationError.
The lease and retention a store is handed per call are checked in the store
contract (``tests/stores/contract.py``), which every store runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import ConfigurationError, MemoryStore, ReplayWindow, SQLiteStore, Verifier
from kreuzberg_webhooks.django.store import DjangoCacheStore
from kreuzberg_webhooks.stores.postgres import PostgresStore
from kreuzberg_webhooks.stores.redis import AsyncRedisStore, RedisStore

SECRET = "settings-test-secret-0123456789abcdef012"
NAN, INF = math.nan, math.inf
NONSENSE_SECONDS = [
    pytest.param(NAN, id="nan"),
    pytest.param(INF, id="inf"),
    pytest.param(-INF, id="minus-inf"),
    pytest.param(-1, id="negative"),
    pytest.param(True, id="bool"),
    pytest.param("60", id="str"),
    pytest.param(None, id="none"),
    pytest.param(10**400, id="int-beyond-float"),
]

# (setting, build(value)): each builds the object with one setting set to *value*.
SECONDS_SETTINGS: list[tuple[str, Callable[[Any, Path], object]]] = [
    ("ReplayWindow.max_age", lambda v, _: ReplayWindow(max_age=v)),
    ("ReplayWindow.max_future", lambda v, _: ReplayWindow(max_future=v)),
    ("SQLiteStore.timeout", lambda v, tmp: SQLiteStore(tmp / "a.db", timeout=v)),
    ("SQLiteStore.purge_interval", lambda v, tmp: SQLiteStore(tmp / "a.db", purge_interval=v)),
    ("RedisStore.socket_timeout", lambda v, _: RedisStore.from_url("redis://127.0.0.1:1/0", socket_timeout=v)),
    (
        "RedisStore.socket_connect_timeout",
        lambda v, _: RedisStore.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=v),
    ),
    (
        "AsyncRedisStore.socket_timeout",
        lambda v, _: AsyncRedisStore.from_url("redis://127.0.0.1:1/0", socket_timeout=v),
    ),
    ("PostgresStore.connect_timeout", lambda v, _: PostgresStore("postgresql://127.0.0.1:1/x", connect_timeout=v)),
]


@pytest.mark.parametrize("value", NONSENSE_SECONDS)
@pytest.mark.parametrize(("setting", "build"), SECONDS_SETTINGS, ids=[name for name, _ in SECONDS_SETTINGS])
def test_a_duration_that_cannot_work_is_refused_at_construction(
    setting: str, build: Callable[[Any, Path], object], value: Any, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError):
        build(value, tmp_path)


@pytest.mark.parametrize(
    ("setting", "build"),
    [
        pytest.param("ReplayWindow.max_age", lambda tmp: ReplayWindow(max_age=0), id="zero-window"),
        pytest.param("SQLiteStore.timeout", lambda tmp: SQLiteStore(tmp / "a.db", timeout=0), id="zero-sqlite-timeout"),
        pytest.param(
            "RedisStore.socket_timeout",
            lambda tmp: RedisStore.from_url("redis://127.0.0.1:1/0", socket_timeout=None),
            id="redis-waits-forever",
        ),
        pytest.param(
            "redis URL", lambda tmp: RedisStore.from_url("redis://127.0.0.1:1/0?socket_timeout=inf"), id="redis-url-inf"
        ),
        pytest.param(
            "redis URL",
            lambda tmp: RedisStore.from_url("redis://127.0.0.1:1/0?socket_timeout=soon"),
            id="redis-url-word",
        ),
        pytest.param(
            "RedisStore.prefix",
            lambda tmp: RedisStore.from_url("redis://127.0.0.1:1/0", prefix=b"x"),
            id="bytes-prefix",
        ),
        pytest.param("MemoryStore.max_entries", lambda tmp: MemoryStore(max_entries=True), id="bool-max-entries"),
        pytest.param("MemoryStore.max_entries", lambda tmp: MemoryStore(max_entries=1e9), id="float-max-entries"),
        pytest.param("MemoryStore.max_entries", lambda tmp: MemoryStore(max_entries=0), id="zero-max-entries"),
        pytest.param("MemoryStore.clock", lambda tmp: MemoryStore(clock=12.0), id="memory-clock-not-callable"),
        pytest.param("SQLiteStore.clock", lambda tmp: SQLiteStore(tmp / "a.db", clock=0), id="sqlite-clock"),
        pytest.param("DjangoCacheStore.alias", lambda tmp: DjangoCacheStore(""), id="django-empty-alias"),
        pytest.param("DjangoCacheStore.key_prefix", lambda tmp: DjangoCacheStore(key_prefix=None), id="django-prefix"),
        pytest.param("DjangoCacheStore.clock", lambda tmp: DjangoCacheStore(clock="now"), id="django-clock"),
        pytest.param("Verifier.max_body_size", lambda tmp: Verifier(SECRET, max_body_size=True), id="bool-body-size"),
        pytest.param("Verifier.max_body_size", lambda tmp: Verifier(SECRET, max_body_size=2.5e6), id="float-body-size"),
        pytest.param("Verifier.header", lambda tmp: Verifier(SECRET, header="X Webhook Signature"), id="header-space"),
        pytest.param("Verifier.header", lambda tmp: Verifier(SECRET, header="X-Signature:"), id="header-colon"),
        pytest.param("Verifier.header", lambda tmp: Verifier(SECRET, header="X-Sig\r\nX-Evil"), id="header-crlf"),
        pytest.param("Verifier.header", lambda tmp: Verifier(SECRET, header=b"X-Sig"), id="header-bytes"),
        pytest.param("Verifier.window", lambda tmp: Verifier(SECRET, window=300), id="window-a-number"),
        pytest.param("Verifier.clock", lambda tmp: Verifier(SECRET, clock=1_800_000_000), id="clock-a-number"),
        pytest.param(
            "Verifier.on_invalid_payload", lambda tmp: Verifier(SECRET, on_invalid_payload="log"), id="callback-a-str"
        ),
    ],
)
def test_a_setting_that_cannot_work_is_refused_at_construction(
    setting: str, build: Callable[[Path], object], tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError):
        build(tmp_path)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda tmp: ReplayWindow(max_age=60, max_future=0), id="window-without-skew"),
        pytest.param(lambda tmp: SQLiteStore(tmp / "a.db", purge_interval=0), id="sqlite-purge-every-claim"),
        pytest.param(
            lambda tmp: RedisStore.from_url("redis://127.0.0.1:1/0?socket_timeout=0.5"), id="redis-url-timeout"
        ),
        pytest.param(lambda tmp: Verifier(SECRET, header="X-Kreuzberg-Signature_v1"), id="header-token"),
    ],
)
def test_sensible_settings_are_accepted(build: Callable[[Path], object], tmp_path: Path) -> None:
    built = build(tmp_path)
    close = getattr(built, "close", None)
    if close is not None:
        close()
