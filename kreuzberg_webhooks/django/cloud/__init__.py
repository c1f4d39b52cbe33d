"""The job tracker in your Django database: add ``"kreuzberg_webhooks.django.cloud"`` to
``INSTALLED_APPS``, run ``migrate``, and use :class:`~kreuzberg_webhooks.django.cloud.tracker.DjangoTracker`
(or ``open_tracker("django://")``)."""
