"""Usage stored before rollups existed: mark its days dirty so the rollup task computes them."""

from django.db import migrations


def mark(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        """
        INSERT INTO usage_usagedirtyday (organization_id, day)
        SELECT DISTINCT u.organization_id, (u.timestamp AT TIME ZONE o.timezone)::date
        FROM usage_usagerecord u JOIN tenancy_organization o ON o.id = u.organization_id
        ON CONFLICT DO NOTHING
        """
    )


class Migration(migrations.Migration):
    dependencies = [("usage", "0004_daily_rollups")]

    operations = [migrations.RunPython(mark, migrations.RunPython.noop)]
