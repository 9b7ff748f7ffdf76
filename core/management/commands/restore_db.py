"""Restore a backup into a fresh, empty database: `manage.py restore_db --from FILE`.

The target is the configured database (SQLITE_PATH or DATABASE_URL), or `--database-url`. It must
be empty: a SQLite file that does not exist yet (or holds no table), a PostgreSQL database that
does not exist (it is created) or holds no relation. Anything else is refused, never overwritten.
Afterwards run `migrate` (a backup from older code is brought up to date), then the checks:
`reconcile_points`, `recount_poll <id>`, `recount_election <id>`.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core import backup


class Command(BaseCommand):
    help = "Restore a backup_db file into a fresh, empty database (refuses a database that is not empty)."
    # The system checks open the configured database (SQLite's JSON check), which would create the
    # very file this command is to create; it checks what it needs itself.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, help="the backup file")
        parser.add_argument(
            "--database-url",
            default="",
            help="restore here instead of the configured database (sqlite:////path or postgres://…/name)",
        )

    def handle(self, *args, source: str, database_url: str, **options):
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            raise CommandError(f"no backup file {path}")
        if database_url:
            target = backup.from_url(database_url)
        else:
            target = backup.from_settings(connections["default"].settings_dict)
            connections["default"].close()  # this command must not hold the file or session it fills
        with open(path, "rb") as f:
            head = f.read(16)
        kind = "sqlite" if head.startswith(b"SQLite format 3") else "postgresql" if head[:5] == b"PGDMP" else ""
        if not kind:
            raise CommandError(f"{path} is neither a SQLite backup nor a pg_dump custom-format file")
        if kind != target.vendor:
            raise CommandError(f"{path} is a {kind} backup; the target is {target.label()}")
        t = time.monotonic()
        if kind == "sqlite":
            tables = backup.restore_sqlite(path, target)
            what = f"{tables} tables"
        else:
            created = backup.restore_postgresql(path, target)
            what = "database created" if created else "into the empty database"
        self.stdout.write(
            self.style.SUCCESS(f"restored {path} into {target.label()} ({what}, {time.monotonic() - t:.1f} s)")
        )
