"""The job tracker in your Django database: add ``"kreuzberg_webhooks.cloud.django"`` to
``INSTALLED_APPS``, run ``migrate``, and use :class:`~kreuzberg_webhooks.cloud.django.tracker.DjangoTracker`
(or ``open_tracker("django://")``)."""
