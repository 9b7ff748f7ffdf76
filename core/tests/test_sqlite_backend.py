"""core.sqlite: the writer lock, and `immediate()` (a write transaction on the driver's connection)."""

from __future__ import annotations

import fcntl
import os

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.transaction import TransactionManagementError

from core.sql import INTEGRITY_ERRORS, DriverCursor

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend's own transactions")

_INSERT = "INSERT INTO votes_ratecount (key, window_start, hits) VALUES (%s, %s, 1)"
_COUNT = "SELECT COUNT(*) FROM votes_ratecount WHERE key = %s"


def _count(key: str) -> int:
    with DriverCursor() as db:
        return db.run(_COUNT, [key]).fetchone()[0]


def _lock_is_free(path: str) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.fixture
def lock_file(tmp_path, monkeypatch):
    """The writer lock on a real file (the test database may live in memory, which takes none)."""
    path = str(tmp_path / "db.writer-lock")
    connection.close()  # the next transaction opens the lock file anew, this one
    monkeypatch.setattr(type(connections[DEFAULT_DB_ALIAS]), "_writer_lock_path", lambda self: path)
    yield path
    connection.close()  # drops the descriptor opened on the temporary file


@pytest.mark.django_db(transaction=True)
def test_immediate_commits_the_block_and_holds_the_writer_lock_only_inside_it(lock_file):
    with connection.immediate():
        assert connection.connection.in_transaction
        assert not _lock_is_free(lock_file)
        with DriverCursor() as db:
            db.run(_INSERT, ["t:commit", 1])
    assert _lock_is_free(lock_file)
    assert not connection.connection.in_transaction
    assert _count("t:commit") == 1


@pytest.mark.django_db(transaction=True)
def test_immediate_rolls_back_what_the_block_wrote_when_it_raises(lock_file):
    with pytest.raises(RuntimeError), connection.immediate():
        with DriverCursor() as db:
            db.run(_INSERT, ["t:rollback", 1])
        raise RuntimeError("refused after the first write")
    assert _count("t:rollback") == 0
    assert _lock_is_free(lock_file)
    with connection.immediate(), DriverCursor() as db:  # the connection is usable again
        db.run(_INSERT, ["t:rollback", 2])
    assert _count("t:rollback") == 1


@pytest.mark.django_db(transaction=True)
def test_immediate_rolls_back_when_the_commit_itself_fails(lock_file):
    """A deferred foreign key is checked at COMMIT: the failed commit must not leave the
    transaction open, nor the lock held."""
    bad = (
        "INSERT INTO votes_ballot (poll_id, voter_id, day, n, choices, receipt, created_at, ip, ip_prefix,"
        " device, new_account) VALUES (%s, %s, '2026-01-01', 1, '1', 'NOPOLL234567', '2026-01-01 00:00:00',"
        " NULL, '', '', 0)"
    )
    with pytest.raises(INTEGRITY_ERRORS), connection.immediate(), DriverCursor() as db:
        db.run(_INSERT, ["t:fk", 1])
        db.run(bad, [2**40, 2**40])
    assert not connection.connection.in_transaction
    assert _count("t:fk") == 0
    assert _lock_is_free(lock_file)


@pytest.mark.django_db
def test_immediate_refuses_to_run_inside_an_atomic_block():
    with transaction.atomic(), pytest.raises(TransactionManagementError), connection.immediate():
        pass
