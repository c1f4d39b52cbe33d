"""The admin: list deliveries, filter them by state, process failed ones again.

Permissions: viewing needs the model's *view* permission; "process again" its
*change* permission (the forms stay read-only: a delivery is what the sender
signed); deleting its *delete* permission, and never a running delivery (a
worker holds it, as ``kreuzberg_inbox purge`` refuses too).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.auth import get_permission_codename
from django.http import HttpRequest
from django.utils.html import format_html

from .inbox import DjangoInbox
from .models import InboxDelivery

__all__ = ["InboxDeliveryAdmin"]


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@admin.register(InboxDelivery)
class InboxDeliveryAdmin(admin.ModelAdmin):  # type: ignore[misc]
    """Read-only deliveries with a "process again" action."""

    list_display = ("event_id", "state", "attempts", "event_type", "job_id", "received", "next_attempt", "error")
    list_filter = ("state", "event_type")
    search_fields = ("event_id", "job_id", "key")
    readonly_fields = (
        "key", "scope", "event_id", "event_type", "job_id", "state", "attempts",
        "received", "next_attempt", "updated", "last_error", "headers", "body_text",
    )  # fmt: skip
    exclude = ("body", "received_at", "next_attempt_at", "updated_at", "lease_token")
    actions = ["process_again", "delete_selected"]

    @admin.display(description="received", ordering="received_at")  # type: ignore[untyped-decorator]
    def received(self, obj: InboxDelivery) -> str:
        return _when(obj.received_at)

    @admin.display(description="next attempt", ordering="next_attempt_at")  # type: ignore[untyped-decorator]
    def next_attempt(self, obj: InboxDelivery) -> str:
        return _when(obj.next_attempt_at) if obj.state in ("queued", "running") else "-"

    @admin.display(description="updated", ordering="updated_at")  # type: ignore[untyped-decorator]
    def updated(self, obj: InboxDelivery) -> str:
        return _when(obj.updated_at)

    @admin.display(description="last error")  # type: ignore[untyped-decorator]
    def error(self, obj: InboxDelivery) -> str:
        text = " ".join((obj.last_error or "").split())
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="body")  # type: ignore[untyped-decorator]
    def body_text(self, obj: InboxDelivery) -> str:
        """The body as received, indented when it is JSON; escaped, read-only."""
        raw = bytes(obj.body)
        try:
            text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        except ValueError:
            text = raw.decode("utf-8", "replace")
        shown: str = format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)
        return shown

    @admin.action(  # type: ignore[untyped-decorator]
        description="Process again (queue the selected deliveries now)", permissions=["process"]
    )
    def process_again(self, request: HttpRequest, queryset: Any) -> None:
        keys = list(queryset.values_list("key", flat=True))
        changed = DjangoInbox(queryset.db).retry(keys)
        skipped = len(keys) - changed
        self.message_user(request, f"Queued {changed} deliver{'y' if changed == 1 else 'ies'} again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} running deliver{'y is' if skipped == 1 else 'ies are'} left alone.")

    @admin.action(  # type: ignore[untyped-decorator]
        description="Delete the selected deliveries (a running one is left alone)", permissions=["delete"]
    )
    def delete_selected(self, request: HttpRequest, queryset: Any) -> Any:
        """Django's delete action (with its confirmation page) on what is not running."""
        running = queryset.filter(state="running").count()
        if running:
            self.message_user(
                request,
                f"{running} running deliver{'y is' if running == 1 else 'ies are'} left alone: a worker holds "
                f"{'it' if running == 1 else 'them'}.",
                messages.WARNING,
            )
        return django_delete_selected(self, request, queryset.exclude(state="running"))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        # One DELETE whose WHERE re-checks the state: a delivery a worker claimed since the
        # confirmation page is not deleted under it.
        queryset.exclude(state="running").delete()

    def has_process_permission(self, request: HttpRequest) -> bool:
        """The "process again" action needs the model's change permission."""
        opts = self.opts
        return bool(request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}"))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.state == InboxDelivery.State.RUNNING:
            return False  # a worker holds it
        return bool(super().has_delete_permission(request, obj))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from the sender, verified

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # read-only forms: a delivery is what the sender signed
