"""RateCount keyed by (key, window_start), WITHOUT ROWID on SQLite.

Django cannot turn an existing table's primary key into a composite one, so the table is made
anew. Its rows are counters of windows of at most ten minutes: dropping them only gives the
accounts, addresses and devices counted in the current window a fresh count."""

from django.db import migrations, models


def without_rowid(apps, schema_editor):
    # The table was just created, empty, by CreateModel: made again from its own statement.
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'votes_ratecount'")
        (create,) = cursor.fetchone()
        cursor.execute("DROP TABLE votes_ratecount")
        cursor.execute(create + " WITHOUT ROWID")


class Migration(migrations.Migration):
    dependencies = [
        ("votes", "0002_ballot_ratecount_rowid"),
    ]

    operations = [
        migrations.DeleteModel(name="RateCount"),
        migrations.CreateModel(
            name="RateCount",
            fields=[
                ("pk", models.CompositePrimaryKey("key", "window_start", blank=True, editable=False, primary_key=True, serialize=False)),
                ("key", models.CharField(max_length=120)),
                ("window_start", models.BigIntegerField()),
                ("hits", models.IntegerField(default=0)),
            ],
        ),
        migrations.RunPython(without_rowid, migrations.RunPython.noop),
    ]
