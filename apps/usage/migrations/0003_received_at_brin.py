"""A BRIN index on received_at: nearly free to keep up at ingest, and finds the usage of the last minutes."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS usage_received_brin ON usage_usagerecord USING brin (received_at)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS usage_received_brin")


class Migration(migrations.Migration):
    dependencies = [("usage", "0002_cost_changes")]

    operations = [migrations.RunPython(create, drop)]
