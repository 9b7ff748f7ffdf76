"""Issue 13 (a): the Idempotency-Key record of a secret ballot keeps nothing that reveals the
marks or pairs the voter with the receipt (no body digest, no answer body), yet a retry still
gets the first answer."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from django.db import connection

from elections.models import ElectionVoter

from .builders import cast_marks, election, ids, roll

pytestmark = pytest.mark.django_db


def _records() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT request_hash, status, body, content_type FROM core_idempotencyrecord")
        return [(h, s, bytes(b) if b is not None else None, ct) for h, s, b, ct in cursor.fetchall()]


def test_a_keyed_ballot_leaves_no_digest_marks_or_receipt_beside_the_key(district, api):
    voters = roll(district.union_a1, 3)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    a, b = ids(e)
    client, key, url = api(voters[0].user), str(uuid.uuid4()), f"/api/v1/elections/{e.pk}/ballots"
    body = {"marks": {str(a): "for", str(b): "against"}}
    first = client.post(url, body, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 201
    receipt = first.json()["receipt"]

    [(digest, status, stored, _ct)] = _records()
    assert status == 201 and digest == "" and not stored
    raw = json.dumps(_records(), default=str)
    assert receipt not in raw and hashlib.sha256(json.dumps(body).encode()).hexdigest() not in raw
    assert '"for"' not in raw and "against" not in raw

    # A retry (the answer was lost on the way) gets the receipt again, read from the roll row.
    again = client.post(url, body, HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 201 and again.json() == {"receipt": receipt}
    assert again["Idempotent-Replayed"] == "true"
    # With no digest kept, another body under the same key is answered as a retry: nothing more is cast.
    other = client.post(url, {"marks": {str(b): "for"}}, HTTP_IDEMPOTENCY_KEY=key)
    assert other.status_code == 201 and other.json() == {"receipt": receipt}
    assert len(cast_marks(e)) == 1
    assert ElectionVoter.objects.get(election=e, user=voters[0].user).receipt == receipt


def test_a_refused_keyed_ballot_keeps_only_its_error_code(district, api):
    voters = roll(district.union_a1, 3)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    a, b = ids(e)
    client, key, url = api(voters[0].user), str(uuid.uuid4()), f"/api/v1/elections/{e.pk}/ballots"
    first = client.post(url, {"marks": {str(a): "for", str(b): "for"}}, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 422 and first.json()["error"]["code"] == "too_many_for"
    assert "2" in first.json()["error"]["message"]  # the voter is told how many they marked…

    [(digest, status, stored, _ct)] = _records()
    assert digest == "" and status == 422 and json.loads(stored) == {"code": "too_many_for"}  # …the record is not

    again = client.post(url, {"marks": {str(a): "for", str(b): "for"}}, HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 422 and again["Idempotent-Replayed"] == "true"
    assert again.json()["error"]["code"] == "too_many_for" and not again.json()["error"].get("fields")
    assert cast_marks(e) == []


def test_other_operations_still_refuse_a_reused_key_with_another_body(district, api):
    client, key = api(district.admin_a), str(uuid.uuid4())
    client.post(
        "/api/v1/orgs",
        {"parent_id": district.street_a.pk, "name": "甲", "kind": "enterprise"},
        HTTP_IDEMPOTENCY_KEY=key,
    )
    [(digest, _s, stored, _ct)] = _records()
    assert len(digest) == 64 and stored
