"""The ballot pool, and ballot tables whose storage order says nothing about the order of casting.

SQLite: both ballot tables become WITHOUT ROWID (kept in the order of their random keys, with no
rowid that follows insertion). Django cannot declare that, so each table is made again from its
own CREATE statement; the existing ballots are copied in a random order. (A later migration that
rebuilds either table on SQLite would bring the rowid back: elections/tests/test_storage.py
checks it is absent.)

PostgreSQL: the ballots already stored were each inserted by their voter's transaction (the same
xmin as the roll row). They are deleted and inserted again in a random order, in this one
transaction; their ids stay (closed elections' chain heads depend on them). The old row versions
remain as dead tuples until VACUUM: run `VACUUM elections_electionballot` after migrating.
"""

import django.db.models.deletion
from django.db import migrations, models


def _without_rowid_sqlite(cursor, table: str) -> None:
    cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    (create,) = cursor.fetchone()
    if "WITHOUT ROWID" in create.upper():
        return
    cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table])
    indexes = [row[0] for row in cursor.fetchall()]
    new = f"{table}__new"
    cursor.execute(create.replace(f'"{table}"', f'"{new}"', 1) + " WITHOUT ROWID")
    cursor.execute(f'INSERT INTO "{new}" SELECT * FROM "{table}" ORDER BY random()')
    cursor.execute(f'DROP TABLE "{table}"')
    cursor.execute(f'ALTER TABLE "{new}" RENAME TO "{table}"')
    for sql in indexes:
        cursor.execute(sql)


def unlink_storage_order(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            _without_rowid_sqlite(cursor, "elections_electionballot")
            _without_rowid_sqlite(cursor, "elections_pooledballot")
        elif connection.vendor == "postgresql":
            cursor.execute(
                "CREATE TEMPORARY TABLE _ballots_reshuffled ON COMMIT DROP AS"
                " SELECT id, election_id, marks FROM elections_electionballot"
            )
            cursor.execute("DELETE FROM elections_electionballot")
            cursor.execute(
                "INSERT INTO elections_electionballot (id, election_id, marks)"
                " SELECT id, election_id, marks FROM _ballots_reshuffled ORDER BY random()"
            )


class Migration(migrations.Migration):

    dependencies = [
        ('elections', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='PooledBallot',
            fields=[
                ('id', models.CharField(max_length=32, primary_key=True, serialize=False)),
                ('marks', models.JSONField()),
                ('election', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='elections.election')),
            ],
            options={
                'indexes': [models.Index(fields=['election', 'id'], name='elections_p_electio_636030_idx')],
            },
        ),
        migrations.RunPython(unlink_storage_order, migrations.RunPython.noop),
    ]
