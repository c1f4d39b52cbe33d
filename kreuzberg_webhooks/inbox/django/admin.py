"""The admin: list deliveries, filter them by state, process failed ones again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

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
    actions = ["process_again"]

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
        return bytes(obj.body).decode("utf-8", "replace")

    @admin.action(description="Process again (queue the selected deliveries now)")  # type: ignore[untyped-decorator]
    def process_again(self, request: HttpRequest, queryset: Any) -> None:
        keys = list(queryset.values_list("key", flat=True))
        changed = DjangoInbox(queryset.db).retry(keys)
        skipped = len(keys) - changed
        self.message_user(request, f"Queued {changed} deliver{'y' if changed == 1 else 'ies'} again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} running deliver{'y is' if skipped == 1 else 'ies are'} left alone.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from the sender, verified

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
