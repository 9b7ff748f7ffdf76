"""Back the database up while the server runs: `manage.py backup_db --out FILE`.

SQLite: the online backup API, one consistent snapshot, writers not blocked (WAL); the file is a
plain SQLite database. PostgreSQL: `pg_dump -Fc` of DATABASE_URL. Restore with `restore_db`.
The backup is written 0600 and needs UNIONHOME_PII_KEY to be of any use: keep the key apart.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core import backup


class Command(BaseCommand):
    help = "Back up the database (SQLite online backup, or pg_dump -Fc) to FILE while the server runs."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="the backup file to write")
        parser.add_argument("--force", action="store_true", help="replace FILE if it exists")

    def handle(self, *args, out: str, force: bool, **options):
        path = Path(out).expanduser().resolve()
        if path.exists() and not force:
            raise CommandError(f"{path} exists (use --force to replace it)")
        if not path.parent.is_dir():
            raise CommandError(f"no folder {path.parent}")
        source = backup.from_settings(connections["default"].settings_dict)
        t = time.monotonic()
        if source.vendor == "sqlite":
            tables = backup.backup_sqlite(source, path)
            what = f"{tables} tables"
        else:
            backup.backup_postgresql(source, path)
            what = "pg_dump custom format"
        self.stdout.write(
            self.style.SUCCESS(
                f"backed up {source.label()} to {path} ({what}, {path.stat().st_size:,} bytes, "
                f"{time.monotonic() - t:.1f} s)"
            )
        )
