"""Model fields shared by several apps."""

from __future__ import annotations

from django.db import models


class RowidAutoField(models.BigAutoField):
    """A BigAutoField that SQLite keeps as a plain rowid alias: `INTEGER PRIMARY KEY` without
    `AUTOINCREMENT`.

    Django's SQLite backend adds AUTOINCREMENT to every auto id. It only forbids reusing the id of a
    deleted last row, and costs every insert a read and a write of `sqlite_sequence`: one more page
    in each write transaction. On the ballot table that page was one of ~14 a ballot writes, and
    removing it (with the rate counters', keyed otherwise since) measured +4% ballots/s
    (bench/RESULTS.md). Use it only where rows are never deleted while anything refers to their ids
    (ballots are never deleted). PostgreSQL keeps its identity column unchanged."""

    def db_type_suffix(self, connection):
        if connection.vendor == "sqlite":
            return None
        return super().db_type_suffix(connection)
