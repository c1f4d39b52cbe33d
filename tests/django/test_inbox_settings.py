"""The Django adapter's inbox settings, in the adapter tests' Django configuration (no inbox app installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.django.settings import SECRET, configure

configure()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from kreuzberg_webhooks.django.conf import build_receiver  # noqa: E402
from kreuzberg_webhooks.inbox import SQLiteInbox  # noqa: E402


def test_the_django_inbox_needs_its_app_installed() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"kreuzberg_webhooks\.django\.inbox"):
        build_receiver(secret=SECRET, store="memory://", inbox="django")


def test_an_inbox_url_opens_that_inbox(tmp_path: Path) -> None:
    receiver = build_receiver(secret=SECRET, store="memory://", inbox=f"sqlite:///{tmp_path}/inbox.sqlite3")
    assert isinstance(receiver.inbox, SQLiteInbox)


def test_an_inbox_that_is_not_one_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="INBOX"):
        build_receiver(secret=SECRET, store="memory://", inbox=42)


def test_no_inbox_setting_is_endpoint_mode() -> None:
    assert build_receiver(secret=SECRET, store="memory://").inbox is None
