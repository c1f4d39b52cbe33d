"""Reconcile passes as Celery or RQ tasks, for apps that already run a task queue.

Celery (schedule it with beat)::

    app = Celery("tasks", broker="redis://localhost:6379/0")
    reconciler = Reconciler(receiver, JobsClient(), open_tracker("redis://localhost:6379/0"))
    reconcile = celery_reconcile_task(app, reconciler)
    app.conf.beat_schedule = {"kreuzberg-reconcile": {"task": reconcile.name, "schedule": 60.0}}

RQ (enqueue it from cron, or with RQ's scheduler)::

    queue.enqueue("kreuzberg_webhooks.cloud.tasks.rq_reconcile", "myapp.hooks:reconciler")

Each run is one :meth:`Reconciler.run_once`; two runs at once are harmless (the tracker
leases the jobs a pass takes, and the replay store keeps each job's handlers to once).
Neither function imports Celery or RQ.
"""

from __future__ import annotations

import importlib
from typing import Any

from .reconcile import Reconciler, ReconcileReport

__all__ = ["DEFAULT_TASK_NAME", "celery_reconcile_task", "report_counts", "rq_reconcile"]

#: The Celery task's default name.
DEFAULT_TASK_NAME = "kreuzberg_webhooks.cloud.reconcile"


def report_counts(report: ReconcileReport) -> dict[str, Any]:
    """A pass's report as plain JSON data (a task's result)."""
    return {
        "checked": report.checked,
        "processed": len(report.processed),
        "duplicates": report.duplicates,
        "pending": report.pending,
        "retried": report.retried,
        "failed": [job_id for job_id, _ in report.failed],
        "children": report.children,
    }


def celery_reconcile_task(app: Any, reconciler: Reconciler, *, name: str = DEFAULT_TASK_NAME) -> Any:
    """Register a task on the Celery *app* that runs one reconcile pass; returns the task."""

    @app.task(name=name, ignore_result=False)  # type: ignore[untyped-decorator]
    def reconcile() -> dict[str, Any]:
        return report_counts(reconciler.run_once())

    return reconcile


def _find(import_path: str) -> Reconciler:
    module_name, _, attribute = import_path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not isinstance(target, Reconciler):
        raise TypeError(f"{import_path} is not a Reconciler")
    return target


def rq_reconcile(import_path: str) -> dict[str, Any]:
    """An RQ job: one pass of the :class:`Reconciler` at *import_path* (``module:attribute``)."""
    return report_counts(_find(import_path).run_once())
