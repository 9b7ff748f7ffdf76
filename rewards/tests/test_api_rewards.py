"""API shapes and error codes of the points mall: rewards, redemptions, cancel, pickup."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from conftest import make_member, make_user
from points.services import ledger
from points.tests.helpers import give
from rewards.models import PickupStatus, Redemption, Reward


def _err(resp) -> str:
    return resp.json()["error"]["code"]


def _new_reward(api, admin, org, **kw):
    body = {"org_id": org.pk, "title": "保温杯", "cost": 100, "stock": 3, **kw}
    return api(admin).post("/api/v1/rewards", body)


@pytest.fixture
def member(district):
    m = make_member(district.union_a1, "兑换者")
    give(district.street_a, district.district_admin, [m], 1000)
    return m


@pytest.fixture
def reward_id(api, district):
    r = _new_reward(api, district.admin_a, district.street_a)
    assert r.status_code == 201, r.content
    return r.json()["id"]


@pytest.mark.django_db
def test_create_reward_answers_201_with_id_and_stock(api, district):
    r = _new_reward(api, district.admin_a, district.street_a, per_member_limit=2, kind="voucher")
    assert r.status_code == 201
    body = r.json()
    assert isinstance(body["id"], int) and Reward.objects.filter(pk=body["id"]).exists()
    assert body["stock_left"] == 3 and body["stock"] == 3 and body["per_member_limit"] == 2
    assert body["org_id"] == district.street_a.pk and body["kind"] == "voucher" and body["active"] is True


@pytest.mark.django_db
def test_create_reward_errors(api, district):
    assert _new_reward(api, district.staff_a, district.street_a).status_code == 403
    assert _new_reward(api, district.admin_b, district.street_a).status_code == 404
    for bad in ({"cost": 0}, {"cost": True}, {"stock": -1}, {"stock": 1.5}, {"title": ""}, {"eligibility": "x"}):
        r = _new_reward(api, district.admin_a, district.street_a, **bad)
        assert r.status_code == 422, (bad, r.content)
    now = timezone.now()
    r = _new_reward(api, district.admin_a, district.street_a, starts_at=now.isoformat(), ends_at=now.isoformat())
    assert r.status_code == 422 and _err(r) == "invalid_window"
    assert Reward.objects.count() == 0


@pytest.mark.django_db
def test_reward_list_and_detail_show_stock_left(api, district, member, reward_id):
    listed = api(member.user).get("/api/v1/rewards").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == reward_id
    detail = api(member.user).get(f"/api/v1/rewards/{reward_id}")
    assert detail.status_code == 200 and detail.json()["stock_left"] == 3
    api(member.user).post(f"/api/v1/rewards/{reward_id}/redemptions")
    assert api(member.user).get(f"/api/v1/rewards/{reward_id}").json()["stock_left"] == 2
    outsider = make_member(district.union_b1)
    assert api(outsider.user).get(f"/api/v1/rewards/{reward_id}").status_code == 404
    assert api(outsider.user).get("/api/v1/rewards").json()["count"] == 0
    assert api(member.user).get("/api/v1/rewards/999999").status_code == 404



@pytest.mark.django_db
def test_a_follower_reads_only_everyone_rewards_and_is_403_redeeming_a_members_one(api, district, reward_id):
    everyone = _new_reward(api, district.admin_b, district.union_b1, eligibility="everyone").json()["id"]
    follower = api(make_user("粉丝"))
    missing = follower.get("/api/v1/rewards/987654321")
    members_only = follower.get(f"/api/v1/rewards/{reward_id}")
    assert (members_only.status_code, members_only.json()) == (404, missing.json())  # as a missing one
    assert follower.get(f"/api/v1/rewards/{everyone}").status_code == 200
    r = follower.post(f"/api/v1/rewards/{reward_id}/redemptions")
    assert r.status_code == 403 and _err(r) == "not_eligible"  # API.md: "403 not_eligible (a follower …)"
    assert not Redemption.objects.exists()

@pytest.mark.django_db
def test_redeem_answers_201_with_id_and_code_and_lists_it_under_me(api, member, reward_id):
    r = api(member.user).post(f"/api/v1/rewards/{reward_id}/redemptions")
    assert r.status_code == 201
    body = r.json()
    assert {"id", "code"} <= set(body) and len(body["code"]) == 10 and body["status"] == "issued"
    assert api(member.user).get("/api/v1/me").json()["points_balance"] == 900
    mine = api(member.user).get("/api/v1/me/redemptions").json()
    assert mine["count"] == 1 and mine["items"][0]["id"] == body["id"] and mine["items"][0]["code"] == body["code"]


@pytest.mark.django_db
def test_redeem_error_codes(api, district, member):
    now = timezone.now()
    client = api(member.user)

    def new(**kw):
        return _new_reward(api, district.admin_a, district.street_a, **kw).json()["id"]

    def redeem(rid, who=client):
        return who.post(f"/api/v1/rewards/{rid}/redemptions")

    r = redeem(new(cost=5000))
    assert r.status_code == 409 and _err(r) == "insufficient_points"
    r = redeem(new(stock=0))
    assert r.status_code == 409 and _err(r) == "out_of_stock"
    once = new(cost=10)
    assert redeem(once).status_code == 201
    r = redeem(once)
    assert r.status_code == 409 and _err(r) == "limit_reached"
    later = new(starts_at=(now + dt.timedelta(days=1)).isoformat())
    r = redeem(later)
    assert r.status_code == 409 and _err(r) == "not_available"
    members_only = new(cost=10)
    r = redeem(members_only, api(make_user()))
    assert r.status_code == 403 and _err(r) == "not_eligible"
    everyone = new(cost=10, eligibility="everyone")
    r = redeem(everyone, api(make_user()))  # allowed in, stopped only by having no points
    assert r.status_code == 409 and _err(r) == "insufficient_points"
    outsider = make_member(district.union_b1)
    give(district.street_b, district.district_admin, [outsider], 1000)
    r = redeem(members_only, api(outsider.user))
    assert r.status_code == 404
    assert api().post(f"/api/v1/rewards/{once}/redemptions").status_code == 401
    assert Redemption.objects.count() == 1


@pytest.mark.django_db
def test_cancel_refunds_and_a_second_cancel_is_409(api, district, member, reward_id):
    red = api(member.user).post(f"/api/v1/rewards/{reward_id}/redemptions").json()
    r = api(member.user).post(f"/api/v1/redemptions/{red['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert ledger.balance_of(member.user) == 1000
    assert Reward.objects.get(pk=reward_id).stock == 3
    r = api(member.user).post(f"/api/v1/redemptions/{red['id']}/cancel")
    assert r.status_code == 409 and _err(r) == "not_cancellable"
    assert api(district.admin_b).post(f"/api/v1/redemptions/{red['id']}/cancel").status_code == 404
    assert ledger.balance_of(member.user) == 1000


@pytest.mark.django_db
def test_pickup_once_by_a_cadre_of_the_rewards_org(api, district, member, reward_id):
    red = api(member.user).post(f"/api/v1/rewards/{reward_id}/redemptions").json()
    r = api(district.admin_b).post("/api/v1/redemptions/pickup", {"code": red["code"]})
    assert r.status_code == 404
    r = api(district.staff_a).post("/api/v1/redemptions/pickup", {"code": red["code"].lower()})
    assert r.status_code == 200 and r.json()["status"] == "picked_up" and r.json()["picked_up_at"]
    r = api(district.admin_a).post("/api/v1/redemptions/pickup", {"code": red["code"]})
    assert r.status_code == 409 and _err(r) == "already_picked_up"
    r = api(member.user).post(f"/api/v1/redemptions/{red['id']}/cancel")
    assert r.status_code == 409 and _err(r) == "not_cancellable"
    assert Redemption.objects.get().status == PickupStatus.PICKED_UP
    assert api(district.admin_a).post("/api/v1/redemptions/pickup", {"code": "NOPE"}).status_code == 404


@pytest.mark.django_db
def test_a_retried_redemption_with_the_same_key_redeems_once(api, member, reward_id):
    client, key = api(member.user), str(uuid.uuid4())
    first = client.post(f"/api/v1/rewards/{reward_id}/redemptions", HTTP_IDEMPOTENCY_KEY=key)
    again = client.post(f"/api/v1/rewards/{reward_id}/redemptions", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Redemption.objects.count() == 1 and ledger.balance_of(member.user) == 900


def _redeem_keyed(client, rid, key):
    return client.post(f"/api/v1/rewards/{rid}/redemptions", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_keyed_refusal_in_the_sale_is_kept_and_replayed_after_a_restock(api, district, member):
    rid = _new_reward(api, district.admin_a, district.street_a, cost=10, stock=1).json()["id"]
    rival = make_member(district.union_a1, "抢先者")
    give(district.street_a, district.district_admin, [rival], 100)
    assert api(rival.user).post(f"/api/v1/rewards/{rid}/redemptions").status_code == 201
    client, key = api(member.user), str(uuid.uuid4())
    first = _redeem_keyed(client, rid, key)
    assert first.status_code == 409 and _err(first) == "out_of_stock"
    Reward.objects.filter(pk=rid).update(stock=5, stock_total=6)
    again = _redeem_keyed(client, rid, key)
    assert again.status_code == 409 and again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert not Redemption.objects.filter(user=member.user).exists() and ledger.balance_of(member.user) == 1000
    assert _redeem_keyed(client, rid, str(uuid.uuid4())).status_code == 201  # the restock is real


@pytest.mark.django_db
def test_a_keyed_refusal_from_the_checks_before_the_sale_is_kept_too(api, district, member):
    later = timezone.now() + dt.timedelta(days=1)
    rid = _new_reward(api, district.admin_a, district.street_a, cost=10, starts_at=later.isoformat()).json()["id"]
    client, key = api(member.user), str(uuid.uuid4())
    first = _redeem_keyed(client, rid, key)
    assert first.status_code == 409 and _err(first) == "not_available"
    Reward.objects.filter(pk=rid).update(starts_at=timezone.now() - dt.timedelta(hours=1))
    again = _redeem_keyed(client, rid, key)
    assert again.status_code == 409 and again["Idempotent-Replayed"] == "true"
    assert _redeem_keyed(client, rid, str(uuid.uuid4())).status_code == 201


@pytest.mark.django_db
def test_an_error_after_the_sale_wrote_rolls_back_everything_and_frees_the_key(
    api, client, member, reward_id, monkeypatch
):
    from core.models import IdempotencyRecord
    from rewards.services import mall

    def broken(sell):
        def sell_then_fail(db, sale):
            sell(db, sale)
            raise RuntimeError("the disk went away")

        return sell_then_fail

    monkeypatch.setattr(mall, "_sell_sqlite", broken(mall._sell_sqlite))
    monkeypatch.setattr(mall, "_sell_pg", broken(mall._sell_pg))
    client.raise_request_exception = False
    key = str(uuid.uuid4())
    failed = _redeem_keyed(api(member.user), reward_id, key)
    assert failed.status_code == 500
    assert not Redemption.objects.exists() and not IdempotencyRecord.objects.exists()
    assert ledger.balance_of(member.user) == 1000 and Reward.objects.get(pk=reward_id).stock == 3
    monkeypatch.undo()
    retried = _redeem_keyed(api(member.user), reward_id, key)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried
    assert Redemption.objects.count() == 1 and ledger.balance_of(member.user) == 900
