"""The Django app of the inbox: the model, the admin, and the embedded worker when asked for."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.apps import AppConfig

__all__ = ["KreuzbergInboxConfig"]

logger = logging.getLogger("kreuzberg_webhooks")

# manage.py commands that are not a server: no worker thread for them.
_SERVERS = {"runserver", "runserver_plus", "uvicorn", "daphne"}


class KreuzbergInboxConfig(AppConfig):  # type: ignore[misc]
    """Starts the embedded worker in server processes when ``KREUZBERG_WEBHOOKS["INBOX_WORKER"]`` is true."""

    name = "kreuzberg_webhooks.django.inbox"
    label = "kreuzberg_webhooks_inbox"
    verbose_name = "Kreuzberg webhook inbox"
    default_auto_field = "django.db.models.BigAutoField"
    worker: Any = None

    def ready(self) -> None:
        from ..conf import get_setting

        if not get_setting("INBOX_WORKER", default=False):
            return
        if os.path.basename(sys.argv[0]) == "manage.py" and sys.argv[1:2] and sys.argv[1] not in _SERVERS:
            return  # migrate, shell, kreuzberg_inbox …: not a web process
        from .runtime import embedded_worker

        self.worker = embedded_worker()
        self.worker.start()
