"""Issue 13: nothing stored pairs a secret ballot with its voter, read straight from the database.

Voters cast in a known order, each with a ballot no one else cast, so a ballot row names its voter
to the test (never to the code). Then raw SQL asks what an operator could: does the ballot table's
storage order (SQLite rowid, PostgreSQL ctid) follow the roll's `voted_at` order, and does any
ballot row carry the transaction id (PostgreSQL xmin) of a roll row?
"""

from __future__ import annotations

import itertools
import json

import pytest
from django.db import connection

from elections.models import ElectionBallot, PooledBallot
from elections.services import ballots
from elections.services import elections as svc

from .builders import election, ids, roll

pytestmark = pytest.mark.django_db(transaction=True)

N = 10  # 10! orders: a shuffle equal to the voting order by chance is a 1 in 3.6 million event


def _distinct_marks(cids: list[int], n: int) -> list[dict[str, str]]:
    out = []
    for combo in itertools.product(("for", "against", "abstain"), repeat=len(cids)):
        if combo.count("for") <= 2:
            out.append({str(c): m for c, m in zip(cids, combo, strict=True)})
    assert len(out) >= n
    return out[:n]


def _cast_in_order(district) -> tuple:
    voters = roll(district.union_a1, N)
    e = election(district.admin_a1, district.union_a1, seats=2, names=("甲", "乙", "丙", "丁"))
    plan = _distinct_marks(ids(e), N)
    for m, marks in zip(voters, plan, strict=True):
        svc.cast_ballot(m.user, e.pk, marks)  # each in a transaction of its own, in this order
    return e, voters, plan


def _table_sql(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
        return cursor.fetchone()[0].upper()


def _storage_order(e) -> list[dict]:
    """The ballots' marks in the order the database keeps their rows."""
    table = ElectionBallot._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT marks::text FROM {table} WHERE election_id = %s ORDER BY ctid", [e.pk])
        elif "WITHOUT ROWID" in _table_sql(table):
            cursor.execute(f"SELECT marks FROM {table} WHERE election_id = %s", [e.pk])  # the table's own order
        else:
            cursor.execute(f"SELECT marks FROM {table} WHERE election_id = %s ORDER BY rowid", [e.pk])
        return [json.loads(row[0]) for row in cursor.fetchall()]


def _voted_order(e) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id FROM elections_electionvoter WHERE election_id = %s AND voted_at IS NOT NULL"
            " ORDER BY voted_at",
            [e.pk],
        )
        return [row[0] for row in cursor.fetchall()]


def _xmins(table: str, e, extra: str = "") -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT xmin::text FROM {table} WHERE election_id = %s {extra}", [e.pk])
        return {row[0] for row in cursor.fetchall()}


def _assert_unlinked(e, voters, plan) -> None:
    by_marks = {tuple(sorted(m.items())): v.user_id for v, m in zip(voters, plan, strict=True)}
    stored = [by_marks[tuple(sorted(m.items()))] for m in _storage_order(e)]
    assert sorted(stored) == sorted(v.user_id for v in voters)  # every ballot is there, once
    assert _voted_order(e) == [v.user_id for v in voters]  # the roll does keep the voting order…
    assert stored != _voted_order(e)  # …and the ballots' storage order does not follow it
    assert not PooledBallot.objects.filter(election=e).exists()
    if connection.vendor == "postgresql":
        roll_xmins = _xmins("elections_electionvoter", e, "AND voted_at IS NOT NULL")
        ballot_xmins = _xmins(ElectionBallot._meta.db_table, e)
        assert len(roll_xmins) == N  # one transaction per voter
        assert not roll_xmins & ballot_xmins
        assert len(ballot_xmins) == 1  # one flush wrote them all


def test_after_the_close_ballot_rows_say_nothing_of_the_voting_order(district):
    e, voters, plan = _cast_in_order(district)
    svc.close_election(district.admin_a1, e.pk)
    _assert_unlinked(e, voters, plan)
    e.refresh_from_db()
    assert e.result["ballots"] == N and e.result["voted"] == N


def test_a_periodic_flush_unlinks_the_pooled_ballots_while_voting_goes_on(district):
    e, voters, plan = _cast_in_order(district)
    assert ballots.flush(e.pk, min_batch=N + 1) == 0  # a batch too small to hide in is not flushed
    assert PooledBallot.objects.filter(election=e).count() == N
    assert ballots.flush(e.pk, min_batch=N) == N
    _assert_unlinked(e, voters, plan)
    pooled_ids = set(ElectionBallot.objects.filter(election=e).values_list("id", flat=True))
    svc.close_election(district.admin_a1, e.pk)
    # The close writes every ballot again with ids drawn then: a batch seen while voting went on
    # cannot be followed into the record.
    assert not pooled_ids & set(ElectionBallot.objects.filter(election=e).values_list("id", flat=True))
    _assert_unlinked(e, voters, plan)


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_sqlite_ballot_tables_have_no_rowid():
    for model in (ElectionBallot, PooledBallot):
        assert "WITHOUT ROWID" in _table_sql(model._meta.db_table)


def test_close_elections_flushes_full_pools_and_scrubs(district):
    import io

    from django.core.management import call_command

    e, voters, plan = _cast_in_order(district)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ballots, "FLUSH_MIN_BATCH", N)
        mp.setattr(ballots.flush_open, "__kwdefaults__", {"min_batch": N})
        call_command("close_elections", stdout=out)
    assert f"election {e.pk}: {N} pooled ballots flushed" in out.getvalue()
    assert "vacuumed" in out.getvalue()
    _assert_unlinked(e, voters, plan)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'elections_pooledballot'")
            (dead,) = cursor.fetchone()
        # Statistics lag a little, but after VACUUM the deleted pool rows are no longer dead tuples.
        assert dead == 0
