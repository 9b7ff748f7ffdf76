"""API shapes and error codes: /me/points, /me points_balance, grants (with Idempotency-Key)."""

from __future__ import annotations

import uuid

import pytest

from conftest import make_member, make_user
from points.models import Movement
from points.services import budgets, ledger

from .helpers import counts, fund


def _err(resp) -> str:
    return resp.json()["error"]["code"]


@pytest.fixture
def granted(district):
    member = make_member(district.union_a1, "积分会员")
    fund(district.union_a1, 1000, district.district_admin)
    budgets.grant(district.admin_a1, district.union_a1, [member.user_id], 30, "签到奖励")
    budgets.grant(district.admin_a1, district.union_a1, [member.user_id], 20, "节日福利")
    return member


@pytest.mark.django_db
def test_me_points_shows_balance_and_history_newest_first(api, granted):
    r = api(granted.user).get("/api/v1/me/points")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"balance", "items", "count"}
    assert body["balance"] == 50 and body["count"] == 2
    first = body["items"][0]
    assert {"amount", "kind", "reason", "created_at"} <= set(first)
    assert (first["amount"], first["kind"], first["reason"]) == (20, "grant", "节日福利")
    assert body["items"][1]["amount"] == 30
    paged = api(granted.user).get("/api/v1/me/points?page=2&page_size=1").json()
    assert paged["count"] == 2 and [i["reason"] for i in paged["items"]] == ["签到奖励"]


@pytest.mark.django_db
def test_me_points_of_someone_without_points_is_empty_and_anonymous_is_401(api, district):
    body = api(make_user()).get("/api/v1/me/points").json()
    assert body == {"balance": 0, "items": [], "count": 0}
    r = api().get("/api/v1/me/points")
    assert r.status_code == 401 and _err(r) == "not_authenticated"


@pytest.mark.django_db
def test_me_has_points_balance(api, granted):
    assert api(granted.user).get("/api/v1/me").json()["points_balance"] == 50
    assert api(make_user()).get("/api/v1/me").json()["points_balance"] == 0


def _grants(api, actor, org, body, **kw):
    return api(actor).post(f"/api/v1/orgs/{org.pk}/points/grants", body, **kw)


@pytest.mark.django_db
def test_grant_answers_201_with_the_number_granted(api, district):
    fund(district.street_a, 1000, district.district_admin)
    ms = [make_member(district.union_a1), make_member(district.union_a2)]
    r = _grants(
        api,
        district.admin_a,
        district.street_a,
        {"member_ids": [m.user_id for m in ms], "amount": 15, "reason": "福利"},
    )
    assert r.status_code == 201 and r.json() == {"granted": 2}
    assert [ledger.balance_of(m.user) for m in ms] == [15, 15]


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -5, 2.5, 1.0, "many", "5", True, None, 10**13])
def test_grant_with_a_bad_amount_is_422(api, district, amount):
    fund(district.street_a, 1000, district.district_admin)
    m = make_member(district.union_a1)
    before = counts()
    r = _grants(
        api, district.admin_a, district.street_a, {"member_ids": [m.user_id], "amount": amount, "reason": "福利"}
    )
    assert r.status_code == 422, r.content
    assert counts() == before


@pytest.mark.django_db
def test_grant_errors_per_api(api, district):
    fund(district.street_a, 100, district.district_admin)
    m, outsider = make_member(district.union_a1), make_member(district.union_b1)
    before = counts()
    body = {"member_ids": [m.user_id], "amount": 10, "reason": "福利"}

    r = _grants(api, district.admin_a, district.street_a, {**body, "member_ids": [m.user_id, outsider.user_id]})
    assert r.status_code == 422 and _err(r) == "unknown_members"
    assert str(outsider.user_id) in r.json()["error"]["fields"]["member_ids"]
    r = _grants(api, district.admin_a, district.street_a, {**body, "member_ids": [m.user_id, m.user_id]})
    assert r.status_code == 422 and _err(r) == "duplicate_member_ids"
    r = _grants(api, district.admin_a, district.street_a, {**body, "amount": 101})
    assert r.status_code == 409 and _err(r) == "insufficient_budget"
    r = _grants(api, district.admin_a, district.street_a, {**body, "reason": " "})
    assert r.status_code == 422 and _err(r) == "reason_required"
    r = _grants(api, district.staff_a, district.street_a, body)
    assert r.status_code == 403
    r = _grants(api, district.admin_b, district.street_a, body)
    assert r.status_code == 404
    r = _grants(api, m.user, district.street_a, body)
    assert r.status_code == 404
    assert counts() == before


@pytest.mark.django_db
def test_a_retried_grant_with_the_same_idempotency_key_grants_once(api, district):
    fund(district.street_a, 1000, district.district_admin)
    m = make_member(district.union_a1)
    body = {"member_ids": [m.user_id], "amount": 25, "reason": "福利"}
    key = str(uuid.uuid4())
    client = api(district.admin_a)
    first = client.post(f"/api/v1/orgs/{district.street_a.pk}/points/grants", body, HTTP_IDEMPOTENCY_KEY=key)
    again = client.post(f"/api/v1/orgs/{district.street_a.pk}/points/grants", body, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ledger.balance_of(m.user) == 25 and Movement.objects.filter(kind="grant").count() == 1
    other = client.post(
        f"/api/v1/orgs/{district.street_a.pk}/points/grants", {**body, "amount": 26}, HTTP_IDEMPOTENCY_KEY=key
    )
    assert other.status_code == 422 and _err(other) == "idempotency_key_reused"
    assert ledger.balance_of(m.user) == 25
