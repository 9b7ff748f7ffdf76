"""Hand-written statements for the few hottest queries.

On PostgreSQL they run as prepared statements: planning a five-join lookup costs ~1.4 ms,
executing it ~0.1 ms (EXPLAIN ANALYZE, measured), and Django's default client-side binding
re-plans it on every request. A prepared statement is planned once per connection (persistent
connections keep it). SQLite plans in microseconds; there they go to the driver's cursor too,
since Django's cursor wrapper costs more per call than SQLite's answer.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from django.db import IntegrityError, connection
from django.db.models import Model
from django.db.models.base import ModelState


def fetchall(sql: str, params: Sequence) -> list[tuple]:
    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall()
    # The driver's cursor, as DriverCursor: Django's wrapper re-runs a placeholder regex per call.
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        return cursor.execute(_qmarks(sql), params).fetchall()
    finally:
        cursor.close()


def execute_then_commit(sql: str, params: Sequence) -> None:
    """PostgreSQL: one statement and the COMMIT of the open transaction in one round trip, for the
    last write of an outermost `atomic()` block. Django's client-side binding cursor sends them as
    one simple-protocol query; the commit that `atomic()` then calls finds the transaction already
    ended and sends nothing (psycopg's commit is a no-op on an idle connection). A failing
    statement or COMMIT raises here (as Django's exceptions) and the block rolls back as usual.
    Not for savepoints."""
    from psycopg import ClientCursor

    with connection.wrap_database_errors, ClientCursor(connection.connection) as cursor:
        cursor.execute(sql + "; COMMIT", params)


def _driver_integrity_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    errors: list[type[Exception]] = [IntegrityError, sqlite3.IntegrityError]
    try:
        import psycopg

        errors.append(psycopg.IntegrityError)
    except ImportError:  # SQLite-only installs
        pass
    return tuple(errors)


# What a constraint violation raises on a DriverCursor (the driver's own class, not Django's wrapper).
INTEGRITY_ERRORS = _driver_integrity_errors()


def aware(value):
    """Plain SQL on SQLite hands back naive UTC datetimes or strings (the ORM would convert them)."""
    if value is None or isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC)


def sqlite_dt(value: dt.datetime) -> str:
    """A datetime as Django's SQLite backend stores it: str() of the naive UTC time."""
    return str(value.astimezone(dt.UTC).replace(tzinfo=None))


@functools.lru_cache(maxsize=256)
def _qmarks(sql: str) -> str:
    return sql.replace("%s", "?")


class DriverCursor:
    """Statements straight on the driver's cursor of the request's connection, inside whatever
    transaction Django's `atomic()` has open on it: for the rush hot paths (ballots, sign-ups),
    where Django's cursor wrapper and its placeholder regex cost about as much per statement as
    SQLite's own work. Prepared on PostgreSQL (planned once per connection, as `fetchall`)."""

    __slots__ = ("pg", "cursor")

    def __init__(self):
        connection.ensure_connection()
        self.pg = connection.vendor == "postgresql"
        if self.pg:
            import psycopg

            self.cursor = psycopg.Cursor(connection.connection)
        else:
            self.cursor = connection.connection.cursor()

    def run(self, sql: str, params: Sequence):
        if self.pg:
            self.cursor.execute(sql, params, prepare=True)
        else:
            self.cursor.execute(_qmarks(sql), params)
        return self.cursor

    def dt(self, value: dt.datetime):
        return value if self.pg else sqlite_dt(value)

    def close(self) -> None:
        self.cursor.close()

    def __enter__(self) -> DriverCursor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def loaded[M: Model](model: type[M], values: dict, **related) -> M:
    """An instance as if loaded from the database, without Model.__init__'s per-field work (on a
    rush's hot path it cost as much as the statements): every column's value is known already.
    `related` fills the relation cache (e.g. reward=…) so reading it costs no query."""
    obj = model.__new__(model)
    obj.__dict__.update(values)
    state = ModelState()
    state.adding, state.db = False, connection.alias
    if related:
        state.fields_cache.update(related)
    obj._state = state
    return obj
