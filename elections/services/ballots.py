"""Where a cast ballot is kept, so that nothing stored pairs it with its voter's roll row.

The voter's transaction marks the roll row voted and puts the marks in the pool
(`PooledBallot`): atomic, so a ballot is never lost or doubled, and one ballot per voter stays the
roll row's conditional UPDATE. But that transaction leaves its id on both rows (PostgreSQL's
``xmin``; SQLite has no such column, and the pool is WITHOUT ROWID), so pooled rows do not stay:

- ``flush(election_id, min_batch)`` — run by ``close_elections`` every minute for open elections —
  takes the whole pool of an election once it holds at least ``FLUSH_MIN_BATCH`` ballots, deletes
  it and inserts the marks into ``ElectionBallot`` in a shuffled order, with fresh random ids, in a
  transaction of its own. A database reader can then tell a flushed ballot's batch (every ballot of
  a batch has the flush's xmin), never which of the batch's voters (at least ``FLUSH_MIN_BATCH``,
  known from ``voted_at``) cast it.
- ``reseal(election_id)`` — run by the close, inside its transaction — does the same for the pool
  and for every ballot already flushed, so after the close all of an election's ballots were
  written by one transaction, in one random order, with ids drawn then: the batches are gone too
  (their ids, seen by a reader while the election was open, no longer exist), and a last small
  batch cannot single out the last voters.

Deleted rows: on SQLite the flush deletes with ``secure_delete`` on, which zeroes them in the
database file (not in the WAL, until it is checkpointed and overwritten); on PostgreSQL they are
dead tuples, readable with page-inspection tools until VACUUM removes them (autovacuum does, or
``VACUUM elections_pooledballot, elections_electionballot`` after an election closes).
"""

from __future__ import annotations

import json
import secrets

from django.db import connection, transaction

from ..models import ElectionBallot, PooledBallot

# The smallest batch a periodic flush moves: each flushed ballot hides among this many voters.
FLUSH_MIN_BATCH = 20

_shuffle = secrets.SystemRandom().shuffle


def pool(election_id: int, marks: dict[str, str]) -> None:
    """Put one ballot in the pool (inside the voter's transaction, with the roll row's UPDATE)."""
    PooledBallot.objects.create(id=secrets.token_hex(16), election_id=election_id, marks=marks)


def _as_marks(value) -> dict:
    # Raw SQL hands back JSON as text on SQLite (and with Django's psycopg loaders), or parsed.
    return json.loads(value) if isinstance(value, str | bytes) else value


def _take(table: str, election_id: int) -> list[dict]:
    """Delete an election's rows of one ballot table and return their marks (what this transaction
    deleted, and nothing another flush took first)."""
    with connection.cursor() as cursor:
        sqlite = connection.vendor == "sqlite"
        if sqlite:
            # Zero the deleted cells in the file rather than leave them on free pages; only for
            # this statement, since it costs every other write on the connection some I/O.
            cursor.execute("PRAGMA secure_delete")
            before = cursor.fetchone()[0]
            cursor.execute("PRAGMA secure_delete = ON")
        try:
            cursor.execute(f"DELETE FROM {table} WHERE election_id = %s RETURNING marks", [election_id])
            return [_as_marks(row[0]) for row in cursor.fetchall()]
        finally:
            if sqlite:
                cursor.execute(f"PRAGMA secure_delete = {int(before)}")


def _publish(election_id: int, marks: list[dict]) -> int:
    _shuffle(marks)
    ElectionBallot.objects.bulk_create(
        [ElectionBallot(id=secrets.token_hex(16), election_id=election_id, marks=m) for m in marks], batch_size=2000
    )
    return len(marks)


def pooled(election_id: int) -> int:
    return PooledBallot.objects.filter(election_id=election_id).count()


def flush(election_id: int, *, min_batch: int = FLUSH_MIN_BATCH) -> int:
    """Move the election's pool into the counted ballots, shuffled, in a transaction of its own,
    if it holds at least `min_batch` ballots; returns how many were moved."""
    with transaction.atomic():
        if pooled(election_id) < max(min_batch, 1):
            return 0
        return _publish(election_id, _take(PooledBallot._meta.db_table, election_id))


def flush_open(*, min_batch: int = FLUSH_MIN_BATCH) -> list[tuple[int, int]]:
    """Flush every election whose pool holds at least `min_batch` ballots: [(election id, moved)]."""
    from django.db.models import Count

    due = (
        PooledBallot.objects.values("election_id")
        .annotate(n=Count("id"))
        .filter(n__gte=max(min_batch, 1))
        .values_list("election_id", flat=True)
    )
    return [(pk, flush(pk, min_batch=min_batch)) for pk in list(due)]


def reseal(election_id: int) -> int:
    """Inside the close's transaction: the pool and every ballot flushed before, written again in
    one shuffled batch with fresh ids. Returns the number of ballots."""
    marks = _take(PooledBallot._meta.db_table, election_id) + _take(ElectionBallot._meta.db_table, election_id)
    return _publish(election_id, marks)


def scrub() -> bool:
    """After a flush or a close, outside any transaction: drop what the deletions left behind.

    PostgreSQL: VACUUM the two ballot tables, so the deleted pool rows (whose xmin is their voters'
    roll rows') and the ballots' earlier versions stop being dead tuples; it takes no lock that
    stops ballots. SQLite: a TRUNCATE checkpoint, so the -wal file no longer holds the pages each
    ballot's transaction wrote (it gives up quietly while readers are busy). Returns whether it ran."""
    if connection.in_atomic_block:
        return False
    tables = f"{PooledBallot._meta.db_table}, {ElectionBallot._meta.db_table}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"VACUUM {tables}")
        elif connection.vendor == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            return False
    return True
