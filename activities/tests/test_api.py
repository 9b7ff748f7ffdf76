"""API.md "Activities": the operations as written, their error codes, and nothing saved on errors."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from activities.models import Activity, Signup
from activities.services import checkin, signups
from conftest import make_member, make_user
from members.services import card_token
from notifications.models import Notification
from points.tests.helpers import counts

from .conftest import move, open_activity

pytestmark = pytest.mark.django_db


def _code(resp) -> str | None:
    return resp.json().get("error", {}).get("code")


def _body(org, **change) -> dict:
    now = timezone.now()
    body = {
        "org_id": org.pk,
        "title": "职工篮球友谊赛",
        "starts_at": (now + dt.timedelta(days=3)).isoformat(),
        "ends_at": (now + dt.timedelta(days=3, hours=2)).isoformat(),
        "capacity": 30,
        "waitlist": True,
        "eligibility": "members",
    }
    body.update(change)
    return body


# --- POST /activities -----------------------------------------------------------------------------


def test_an_admin_cadre_creates_an_activity(district, api):
    resp = api(district.admin_a).post("/api/v1/activities", _body(district.street_a))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["status"] == "published" and body["capacity"] == 30 and body["confirmed_count"] == 0
    assert Activity.objects.get(pk=body["id"]).org == district.street_a


def test_a_certified_member_creates_a_proposal_and_a_follower_is_refused(district, api):
    m = make_member(district.union_a1, "发起人")
    resp = api(m.user).post("/api/v1/activities", _body(district.union_a1))
    assert resp.status_code == 201 and resp.json()["status"] == "proposed"
    resp = api(make_user("粉丝")).post("/api/v1/activities", _body(district.union_a1))
    assert resp.status_code == 403 and _code(resp) == "not_allowed"
    assert Activity.objects.count() == 1


def test_a_members_proposal_with_a_points_reward_is_422_on_the_field(district, api):
    m = make_member(district.union_a1, "发起人")
    resp = api(m.user).post("/api/v1/activities", _body(district.union_a1, points_reward=50))
    assert resp.status_code == 422, resp.content
    assert set(resp.json()["error"]["fields"]) == {"points_reward"}
    assert not Activity.objects.exists()
    # The cadre who approves sets the reward, and every field that costs the org is in the queue.
    pid = api(m.user).post("/api/v1/activities", _body(district.union_a1, points_cost=5)).json()["id"]
    cadre = api(district.admin_a1)
    queued = cadre.get("/api/v1/activities/proposals").json()["items"]
    assert [(i["id"], i["points_reward"], i["points_cost"], i["capacity"]) for i in queued] == [(pid, 0, 5, 30)]
    resp = cadre.post(f"/api/v1/activities/{pid}/decision", {"approve": True, "edits": {"points_reward": 8}})
    assert resp.status_code == 200 and resp.json()["points_reward"] == 8
    assert Activity.objects.get(pk=pid).points_reward == 8


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": -3}, "capacity"),
        ({"ends_at": (timezone.now() + dt.timedelta(days=2)).isoformat()}, "ends_at"),
        ({"signup_opens_at": (timezone.now() + dt.timedelta(days=4)).isoformat()}, "signup_opens_at"),
        ({"capacity": "thirty"}, "capacity"),
        ({"capacity": 3.5}, "capacity"),
        ({"waitlist": "yes"}, "waitlist"),
        ({"starts_at": "next monday"}, "starts_at"),
        ({"eligibility": "friends"}, "eligibility"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_nothing_is_saved(district, api, change, field):
    resp = api(district.admin_a).post("/api/v1/activities", _body(district.street_a, **change))
    assert resp.status_code == 422, resp.content
    assert field in resp.json()["error"]["fields"]
    assert not Activity.objects.exists()


def test_missing_fields_are_each_named_and_non_json_is_400(district, api):
    client = api(district.admin_a)
    resp = client.post("/api/v1/activities", {"org_id": district.street_a.pk})
    assert resp.status_code == 422
    assert {"title", "starts_at", "ends_at", "capacity"} <= set(resp.json()["error"]["fields"])
    resp = client.post("/api/v1/activities", "{not json")
    assert resp.status_code == 400
    resp = client.post("/api/v1/activities", _body(district.street_a, org_id=10**9))
    assert resp.status_code == 404
    assert api().post("/api/v1/activities", _body(district.street_a)).status_code == 401
    assert not Activity.objects.exists()


# --- GET ------------------------------------------------------------------------------------------


def test_detail_has_the_contract_fields_and_my_status(district, api):
    a = open_activity(district.admin_a, district.street_a, capacity=1)
    first, second = make_member(district.union_a1, "甲"), make_member(district.union_a1, "乙")
    signups.sign_up(first.user, a.pk)
    signups.sign_up(second.user, a.pk)
    body = api(second.user).get(f"/api/v1/activities/{a.pk}").json()
    assert {"id", "title", "capacity", "confirmed_count", "waitlist_count"} <= set(body)
    assert (body["capacity"], body["confirmed_count"], body["waitlist_count"]) == (1, 1, 1)
    assert (body["my_status"], body["my_position"]) == ("waitlisted", 1)
    assert api(make_member(district.union_b1).user).get(f"/api/v1/activities/{a.pk}").status_code == 404
    assert api(second.user).get("/api/v1/activities/999999").status_code == 404


def test_the_list_is_paginated_and_filtered(district, api):
    for i in range(7):
        open_activity(district.admin_a, district.street_a, title=f"讲座{i}", category="lecture" if i < 3 else "sports")
    open_activity(district.admin_b, district.street_b, title="别处")
    client = api(make_member(district.union_a1).user)
    body = client.get("/api/v1/activities?page_size=5").json()
    assert body["count"] == 7 and len(body["items"]) == 5
    assert len(client.get("/api/v1/activities?page=2&page_size=5").json()["items"]) == 2
    assert client.get("/api/v1/activities?category=lecture").json()["count"] == 3
    assert client.get("/api/v1/activities?scope=mine").json()["count"] == 0
    assert client.get("/api/v1/activities?scope=nonsense").status_code == 422
    assert client.get("/api/v1/activities?date_from=not-a-date").status_code == 422


# --- sign-ups -------------------------------------------------------------------------------------


def test_sign_up_confirmed_then_waitlisted_and_the_409s(district, api):
    a = open_activity(district.admin_a, district.street_a, capacity=1)
    first, second = make_member(district.union_a1, "甲"), make_member(district.union_a1, "乙")
    url = f"/api/v1/activities/{a.pk}/signups"
    resp = api(first.user).post(url)
    assert resp.status_code == 201 and resp.json()["status"] == "confirmed"
    resp = api(second.user).post(url, {})
    assert resp.status_code == 201 and resp.json() == {
        "id": resp.json()["id"],
        "activity_id": a.pk,
        "status": "waitlisted",
        "position": 1,
    }
    resp = api(first.user).post(url)
    assert resp.status_code == 409 and _code(resp) == "already_signed_up"
    full = open_activity(district.admin_a, district.street_a, capacity=1, waitlist=False)
    api(first.user).post(f"/api/v1/activities/{full.pk}/signups")
    resp = api(second.user).post(f"/api/v1/activities/{full.pk}/signups")
    assert resp.status_code == 409 and _code(resp) == "full"
    Activity.objects.filter(pk=a.pk).update(
        signup_opens_at=timezone.now() - dt.timedelta(days=2), signup_closes_at=timezone.now() - dt.timedelta(hours=1)
    )
    resp = api(make_member(district.union_a1).user).post(url)
    assert resp.status_code == 409 and _code(resp) == "signup_closed"


def test_sign_up_not_eligible_not_open_points_and_answers(district, api):
    a = open_activity(district.admin_a, district.street_a)
    resp = api(make_member(district.union_a1, certified=False).user).post(f"/api/v1/activities/{a.pk}/signups")
    assert resp.status_code == 403 and _code(resp) == "not_eligible"
    later = open_activity(district.admin_a, district.street_a, signup_opens_at=timezone.now() + dt.timedelta(hours=2))
    resp = api(make_member(district.union_a1).user).post(f"/api/v1/activities/{later.pk}/signups")
    assert resp.status_code == 409 and _code(resp) == "signup_not_open"
    paid = open_activity(district.admin_a, district.street_a, points_cost=50)
    resp = api(make_member(district.union_a1).user).post(f"/api/v1/activities/{paid.pk}/signups")
    assert resp.status_code == 409 and _code(resp) == "insufficient_points"
    asks = open_activity(
        district.admin_a, district.street_a, extra_fields=[{"key": "size", "label": "T恤尺码", "required": True}]
    )
    m = make_member(district.union_a1)
    resp = api(m.user).post(f"/api/v1/activities/{asks.pk}/signups", {"answers": {}})
    assert resp.status_code == 422 and resp.json()["error"]["fields"] == {"answers.size": "请填写T恤尺码"}
    resp = api(m.user).post(f"/api/v1/activities/{asks.pk}/signups", "{oops")
    assert resp.status_code == 400
    resp = api(m.user).post(f"/api/v1/activities/{asks.pk}/signups", "[1, 2]")
    assert resp.status_code == 422
    resp = api(m.user).post(f"/api/v1/activities/{asks.pk}/signups", {"answers": {"size": "XL"}})
    assert resp.status_code == 201
    assert Signup.objects.count() == 1


def test_an_idempotency_key_replays_the_first_answer(district, api):
    a = open_activity(district.admin_a, district.street_a)
    client = api(make_member(district.union_a1).user)
    url = f"/api/v1/activities/{a.pk}/signups"
    first = client.post(url, {}, HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url, {}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert Signup.objects.count() == 1


def test_delete_my_sign_up_promotes_and_the_refusals(district, api):
    a = open_activity(district.admin_a, district.street_a, capacity=1)
    first, second = make_member(district.union_a1, "甲"), make_member(district.union_a1, "乙")
    signups.sign_up(first.user, a.pk)
    signups.sign_up(second.user, a.pk)
    url = f"/api/v1/activities/{a.pk}/signups/me"
    resp = api(first.user).delete(url)
    assert resp.status_code == 204 and resp.content == b""
    assert Signup.objects.get(user=second.user).status == "confirmed"
    resp = api(first.user).delete(url)
    assert resp.status_code == 404 and _code(resp) == "not_signed_up"
    Activity.objects.filter(pk=a.pk).update(cancel_until=timezone.now() - dt.timedelta(minutes=1))
    resp = api(second.user).delete(url)
    assert resp.status_code == 409 and _code(resp) == "cancel_closed"


# --- cadre operations -----------------------------------------------------------------------------


def test_decision_cancel_patch_and_messages(district, api):
    m = make_member(district.union_a1, "发起人")
    proposal = open_activity(m.user, district.union_a1, capacity=8)
    cadre = api(district.admin_a1)
    resp = cadre.post(f"/api/v1/activities/{proposal.pk}/decision", {"approve": False})
    assert resp.status_code == 422 and _code(resp) == "reason_required"
    resp = cadre.post(f"/api/v1/activities/{proposal.pk}/decision", {"approve": True, "edits": {"capacity": 12}})
    assert resp.status_code == 200 and resp.json()["status"] == "published" and resp.json()["capacity"] == 12
    assert cadre.get("/api/v1/activities/proposals").json()["count"] == 0
    resp = api(m.user).post(f"/api/v1/activities/{proposal.pk}/decision", {"approve": True})
    assert resp.status_code == 403
    resp = cadre.post(f"/api/v1/activities/{proposal.pk}/decision", {"approve": "maybe"})
    assert resp.status_code == 422 and "approve" in resp.json()["error"]["fields"]

    from django.test import Client

    patch = Client().patch(
        f"/api/v1/activities/{proposal.pk}",
        json.dumps({"capacity": 0}),
        content_type="application/json",
        HTTP_AUTHORIZATION=cadre.headers["HTTP_AUTHORIZATION"],
    )
    assert patch.status_code == 422 and "capacity" in patch.json()["error"]["fields"]

    guest = make_member(district.union_a1, "来宾")
    signups.sign_up(guest.user, proposal.pk)
    resp = cadre.post(f"/api/v1/activities/{proposal.pk}/messages", {"title": "通知", "body": "带好运动鞋"})
    assert resp.status_code == 201 and resp.json() == {"sent": 1}
    resp = cadre.post(f"/api/v1/activities/{proposal.pk}/cancel", {"reason": ""})
    assert resp.status_code == 422 and _code(resp) == "reason_required"
    resp = cadre.post(f"/api/v1/activities/{proposal.pk}/cancel", {"reason": "场地维修"})
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert Notification.objects.filter(user=guest.user, kind="activity.cancelled").exists()
    resp = cadre.post(f"/api/v1/activities/{proposal.pk}/cancel", {"reason": "再来"})
    assert resp.status_code == 409 and _code(resp) == "already_cancelled"


def test_the_sign_up_list_export_and_managed_list(district, api):
    a = open_activity(district.admin_a, district.street_a)
    m = make_member(district.union_a1, "张三")
    signups.sign_up(m.user, a.pk)
    cadre = api(district.admin_a)
    body = cadre.get(f"/api/v1/activities/{a.pk}/signups").json()
    assert body["count"] == 1 and body["items"][0]["name"] == "张三"
    assert body["items"][0]["phone_masked"] == m.user.phone_masked and m.user.phone not in json.dumps(body)
    assert api(m.user).get(f"/api/v1/activities/{a.pk}/signups").status_code == 403
    resp = cadre.get(f"/api/v1/activities/{a.pk}/signups/export")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/vnd.openxmlformats")
    managed = cadre.get("/api/v1/activities/managed").json()
    assert managed["count"] == 1 and managed["items"][0]["attendance_rate"] == 0.0
    assert api(district.admin_b).get("/api/v1/activities/managed").json()["count"] == 0


def test_cover_upload_accepts_images_only(district, api, media):
    a = open_activity(district.admin_a, district.street_a)
    buf = io.BytesIO()
    Image.new("RGB", (1600, 900), (10, 120, 200)).save(buf, "PNG")
    client = api(district.admin_a)
    resp = client.upload(f"/api/v1/activities/{a.pk}/cover", {"file": SimpleUploadedFile("c.png", buf.getvalue())})
    assert resp.status_code == 200 and resp.json()["cover_url"].endswith(".jpg")
    resp = client.upload(
        f"/api/v1/activities/{a.pk}/cover", {"file": SimpleUploadedFile("c.jpg", b"<svg></svg>", "image/jpeg")}
    )
    assert resp.status_code == 422 and _code(resp) == "invalid_image"
    resp = client.upload(f"/api/v1/activities/{a.pk}/cover", {})
    assert resp.status_code == 422


# --- check-in -------------------------------------------------------------------------------------


def test_check_in_by_code_and_card_over_the_api(district, api):
    a = open_activity(district.admin_a, district.street_a, capacity=1)
    first, second = make_member(district.union_a1, "甲"), make_member(district.union_a1, "乙")
    signups.sign_up(first.user, a.pk)
    signups.sign_up(second.user, a.pk)
    url = f"/api/v1/activities/{a.pk}/checkins"
    code = checkin.rotating_code(a)[0]
    resp = api(first.user).post(url, {"code": code})
    assert resp.status_code == 409 and _code(resp) == "checkin_not_open"
    a = move(a, starts_in=dt.timedelta(minutes=10))
    organizer = api(district.admin_a)
    shown = organizer.get(f"/api/v1/activities/{a.pk}/checkin-code").json()
    assert shown["url"].endswith(shown["code"]) and 1 <= shown["seconds_left"] <= 30
    assert api(first.user).get(f"/api/v1/activities/{a.pk}/checkin-code").status_code == 403
    old = checkin.rotating_code(a, timezone.now() - dt.timedelta(minutes=2))[0]
    before = counts()
    resp = api(first.user).post(url, {"code": old})
    assert resp.status_code == 422 and _code(resp) == "code_expired"
    resp = api(first.user).post(url, {"code": "1-abc"})
    assert resp.status_code == 422 and _code(resp) == "code_invalid"
    resp = api(second.user).post(url, {"code": shown["code"]})
    assert resp.status_code == 403 and _code(resp) == "not_confirmed"
    assert counts() == before
    resp = api(first.user).post(url, {"code": shown["code"]})
    assert resp.status_code == 201 and resp.json()["checked_in_at"]
    resp = api(first.user).post(url, {"code": shown["code"]})
    assert resp.status_code == 409 and _code(resp) == "already_checked_in"
    resp = api(first.user).post(url, {})
    assert resp.status_code == 422 and "code" in resp.json()["error"]["fields"]
    resp = organizer.post(f"/api/v1/activities/{a.pk}/checkins/card", {"card_token": card_token(first)})
    assert resp.status_code == 409 and _code(resp) == "already_checked_in"
    resp = organizer.post(f"/api/v1/activities/{a.pk}/checkins/card", {"card_token": "xyz"})
    assert resp.status_code == 422 and _code(resp) == "card_invalid"
    body = organizer.get(f"/api/v1/activities/{a.pk}/attendance").json()
    assert body == {"confirmed": 1, "checked_in": 1, "rate": 1.0, "rewards_pending": 0}
