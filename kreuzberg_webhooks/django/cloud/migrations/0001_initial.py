from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="TrackedJobRow",
            fields=[
                ("job_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("scope", models.CharField(blank=True, default="", max_length=255)),
                ("tracked_at", models.FloatField()),
                ("next_check", models.FloatField()),
                ("checks", models.IntegerField(default=0)),
                ("closed", models.BooleanField(default=False)),
            ],
            options={
                "verbose_name": "tracked job",
                "indexes": [models.Index(fields=["closed", "next_check"], name="kreuzberg_tracked_due")],
            },
        ),
    ]
