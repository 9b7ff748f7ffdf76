import json
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.services import issue_token
from orgs.models import Org


def _post(api_client, path, body, key):
    return api_client.post(path, body, HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_retry_with_same_key_returns_first_answer_and_creates_nothing_more(district, api):
    client = api(district.admin_a)
    body = {"parent_id": district.street_a.pk, "name": "幂等测试工会", "kind": "enterprise"}
    key = str(uuid.uuid4())
    first = _post(client, "/api/v1/orgs", body, key)
    second = _post(client, "/api/v1/orgs", body, key)
    assert first.status_code == 201
    assert second.status_code == 201 and second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Org.objects.filter(name="幂等测试工会").count() == 1


@pytest.mark.django_db
def test_a_4xx_answer_is_replayed_too(district, api):
    client = api(district.staff_a)  # staff may not create orgs: 403
    body = {"parent_id": district.street_a.pk, "name": "不允许", "kind": "enterprise"}
    key = str(uuid.uuid4())
    assert _post(client, "/api/v1/orgs", body, key).status_code == 403
    again = _post(client, "/api/v1/orgs", body, key)
    assert again.status_code == 403 and again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_same_key_with_another_body_is_refused(district, api):
    client = api(district.admin_a)
    key = str(uuid.uuid4())
    _post(client, "/api/v1/orgs", {"parent_id": district.street_a.pk, "name": "甲", "kind": "enterprise"}, key)
    r = _post(client, "/api/v1/orgs", {"parent_id": district.street_a.pk, "name": "乙", "kind": "enterprise"}, key)
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert not Org.objects.filter(name="乙").exists()


@pytest.mark.django_db
def test_keys_are_scoped_to_the_user(district, api):
    key = str(uuid.uuid4())
    a = _post(
        api(district.admin_a), "/api/v1/orgs", {"parent_id": district.street_a.pk, "name": "甲方", "kind": "joint"}, key
    )
    b = _post(
        api(district.admin_b), "/api/v1/orgs", {"parent_id": district.street_b.pk, "name": "乙方", "kind": "joint"}, key
    )
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_parallel_requests_with_one_key_create_one_org(district, live_server):
    token, _ = issue_token(district.admin_a)
    body = json.dumps({"parent_id": district.street_a.pk, "name": "并发幂等工会", "kind": "enterprise"}).encode()
    key = str(uuid.uuid4())

    def call(_):
        req = urllib.request.Request(
            live_server.url + "/api/v1/orgs",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    assert Org.objects.filter(name="并发幂等工会").count() == 1
    created = [body for status, body in results if status == 201]
    assert created and all(b == created[0] for b in created)
    assert all(status in (201, 409) for status, _ in results)


@pytest.mark.django_db
def test_purge_removes_records_older_than_24_hours_and_keeps_newer(district, api):
    import datetime as dt

    from django.core.management import call_command
    from django.utils import timezone

    from core.idempotency import purge_expired
    from core.management.commands.run_schedule import JOBS
    from core.models import IdempotencyRecord

    now = timezone.now()
    ages = {"old": dt.timedelta(hours=30), "just_over": dt.timedelta(hours=24, seconds=1)}
    ages |= {"just_under": dt.timedelta(hours=23, minutes=59), "new": dt.timedelta(minutes=1)}
    for key, age in ages.items():
        record = IdempotencyRecord.objects.create(user=district.admin_a, operation="POST /x", key=key, request_hash="")
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=now - age)

    assert purge_expired(now) == 2
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {"just_under", "new"}
    # The command (run hourly by run_schedule) does the same, as of the time it is given.
    call_command("purge_idempotency", "--now", (now + dt.timedelta(hours=1)).isoformat())
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert ("purge_idempotency", 3600) in JOBS
