"""Inbox deliveries in your Django database: a model, its admin, signals and commands.

::

    INSTALLED_APPS = [..., "kreuzberg_webhooks.django", "kreuzberg_webhooks.django.inbox"]
    KREUZBERG_WEBHOOKS = {
        "SECRET": os.environ["KREUZBERG_WEBHOOK_SECRET"],
        "STORE": "cache",
        "INBOX": "django",      # deliveries kept in the InboxDelivery table (or an inbox URL)
        "INBOX_WORKER": True,   # run the embedded worker thread in web processes
    }

Then ``manage.py migrate``. The admin lists deliveries, filters them by state and
has a "process again" action; ``manage.py kreuzberg_inbox list|show|retry|purge|worker``
does the same from a shell (``worker`` runs a worker process, for deployments
that keep the web processes free of it). :data:`signals.delivery_failed` and
:data:`signals.delivery_dead` are sent by the workers this app starts.

Transactions: the receiver writes the delivery in its own transaction (Django's
autocommit) and answers only once it is committed. If you hand deliveries to a
task queue (:class:`~kreuzberg_webhooks.inbox.celery.CeleryInbox` over a
:class:`DjangoInbox`), the message is sent from ``transaction.on_commit``, so a
worker never looks for a row that is not committed yet; do the same for any
task your handlers start: ``transaction.on_commit(lambda: task.delay(job_id))``.
"""
