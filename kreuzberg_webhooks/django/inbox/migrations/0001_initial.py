from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="InboxDelivery",
            fields=[
                ("key", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("scope", models.CharField(blank=True, default="", max_length=255)),
                ("event_id", models.CharField(blank=True, db_index=True, max_length=255, null=True)),
                ("event_type", models.CharField(max_length=64)),
                ("job_id", models.CharField(db_index=True, max_length=64)),
                ("body", models.BinaryField()),
                ("headers", models.TextField(default="[]")),
                ("received_at", models.FloatField(db_index=True)),
                (
                    "state",
                    models.CharField(
                        choices=[("queued", "queued"), ("running", "running"), ("done", "done"), ("dead", "dead")],
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("attempts", models.IntegerField(default=0)),
                ("next_attempt_at", models.FloatField()),
                ("last_error", models.TextField(blank=True, null=True)),
                ("updated_at", models.FloatField()),
                ("lease_token", models.CharField(blank=True, max_length=64, null=True)),
            ],
            options={
                "verbose_name": "inbox delivery",
                "verbose_name_plural": "inbox deliveries",
                "ordering": ["-received_at"],
                "indexes": [models.Index(fields=["state", "next_attempt_at"], name="kreuzberg_inbox_due")],
            },
        ),
    ]
