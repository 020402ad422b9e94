"""Feature moves from the user rollup to the model rollup: the user rollup shrinks to a row per cost
center and user a day, and feature questions are answered from the small rollup. Both rollups are
emptied and every day with usage is marked dirty, so the rollup task recomputes them; until it has,
summaries read the records of those days."""

from django.db import migrations, models


def empty_and_mark(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DELETE FROM usage_usagedailybymodel")
    schema_editor.execute("DELETE FROM usage_usagedailybyuser")
    schema_editor.execute(
        """
        INSERT INTO usage_usagedirtyday (organization_id, day)
        SELECT DISTINCT u.organization_id, (u.timestamp AT TIME ZONE o.timezone)::date
        FROM usage_usagerecord u JOIN tenancy_organization o ON o.id = u.organization_id
        ON CONFLICT DO NOTHING
        """
    )


class Migration(migrations.Migration):
    dependencies = [("usage", "0007_rollup_increments")]

    operations = [
        migrations.RemoveField(model_name="usagedailybyuser", name="feature"),
        migrations.AddField(
            model_name="usagedailybymodel", name="feature", field=models.CharField(blank=True, max_length=256)
        ),
        migrations.RunPython(empty_and_mark, migrations.RunPython.noop),
    ]
