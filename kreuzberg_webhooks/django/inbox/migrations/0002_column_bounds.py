"""Columns as wide as the longest value the verifier lets through (``kreuzberg_webhooks.protocol.keys.MAX_*``):
the key 465, the event type 80, the job id 128 characters (they were 255, 64 and 64)."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    dependencies = [("kreuzberg_webhooks_inbox", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="inboxdelivery",
            name="key",
            field=models.CharField(max_length=465, primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="inboxdelivery",
            name="event_type",
            field=models.CharField(max_length=80),
        ),
        migrations.AlterField(
            model_name="inboxdelivery",
            name="job_id",
            field=models.CharField(db_index=True, max_length=128),
        ),
    ]
