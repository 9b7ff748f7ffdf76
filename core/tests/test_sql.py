"""core.sql.execute_then_commit: a statement and its COMMIT in one round trip on PostgreSQL."""

import pytest
from django.db import IntegrityError, connection, transaction

from core.models import AuditLog
from core.sql import execute_then_commit

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL round trip; SQLite has none"),
]

_INSERT = "INSERT INTO core_auditlog (at, action, org_path, target_type, target_id, summary, data) VALUES (now(), %s, '', '', '', '', '{}')"


def _status() -> str:
    return connection.connection.info.transaction_status.name


def test_the_statement_and_the_commit_go_together_and_atomic_ends_normally():
    with transaction.atomic():
        AuditLog.objects.create(action="first")
        assert _status() == "INTRANS"
        execute_then_commit(_INSERT, ["second"])
        # Already committed by the same call: the block's own commit finds nothing to do.
        assert _status() == "IDLE"
    assert sorted(AuditLog.objects.values_list("action", flat=True)) == ["first", "second"]
    with transaction.atomic():  # the connection is in a clean state for the next transaction
        AuditLog.objects.create(action="third")
    assert AuditLog.objects.count() == 3


def test_a_failing_statement_rolls_back_the_whole_block():
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditLog.objects.create(action="kept only with the rest")
        # NOT NULL violation on `action`: the statement fails, the COMMIT after it never runs.
        execute_then_commit(_INSERT, [None])
    assert not AuditLog.objects.exists()


def test_a_failing_commit_rolls_back_too():
    # A deferred constraint is checked at COMMIT: IdempotencyRecord.user is a deferred foreign key.
    sql = (
        "INSERT INTO core_idempotencyrecord (user_id, operation, key, request_hash, done, content_type, created_at)"
        " VALUES (%s, 'op', 'k', 'h', false, '', now())"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditLog.objects.create(action="rolled back with the commit")
        execute_then_commit(sql, [10**12])  # no such user
    assert not AuditLog.objects.exists()
