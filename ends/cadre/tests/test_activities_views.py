"""Cadre end activities pages: the proposals queue (approve, edit then approve, reject with a reason),
the organizer's check-in page (rotating QR, live count, card scanning) for cadres and for a member
organizer, and the scope rules (outsiders get 404)."""

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from activities.models import Activity, ActivityStatus, Signup
from activities.services import activities as activities_svc
from activities.services import checkin as checkin_svc
from activities.services import signups as signups_svc
from conftest import make_member
from members.services import card_token

pytestmark = pytest.mark.django_db


def _proposal(district, member=None, **kw):
    member = member or make_member(district.union_a1, "卫发起")
    start = timezone.now() + dt.timedelta(days=4)
    args = {"title": "社区义诊志愿服务", "starts_at": start, "ends_at": start + dt.timedelta(hours=3), "capacity": 12}
    args.update(kw)
    return activities_svc.create_activity(member.user, district.union_a1, **args), member


def _published(district, **kw):
    start = timezone.now() + dt.timedelta(days=2)
    args = {"title": "职工趣味运动会", "starts_at": start, "ends_at": start + dt.timedelta(hours=4), "capacity": 30}
    args.update(kw)
    return activities_svc.create_activity(district.admin_a1, district.union_a1, **args)


def _now(a: Activity) -> Activity:
    now = timezone.now()
    Activity.objects.filter(pk=a.pk).update(
        signup_opens_at=now - dt.timedelta(days=2),
        signup_closes_at=now - dt.timedelta(hours=1),
        cancel_until=now - dt.timedelta(hours=1),
        starts_at=now - dt.timedelta(minutes=5),
        ends_at=now + dt.timedelta(hours=2),
    )
    a.refresh_from_db()
    return a


def test_hub_lists_proposals_in_scope_only(client, district):
    a, _m = _proposal(district)
    client.force_login(district.admin_a1)
    html = client.get(reverse("cadre:activities")).content.decode()
    assert f'id="proposal-{a.pk}"' in html and "社区义诊志愿服务" in html
    client.force_login(district.admin_b)
    html = client.get(reverse("cadre:activities")).content.decode()
    assert f'id="proposal-{a.pk}"' not in html and 'id="no-proposals"' in html and 'id="no-activities"' in html


def test_approve_publishes_and_reject_needs_a_reason(client, district):
    a, _m = _proposal(district)
    b, _m2 = _proposal(district, title="周末观影")
    client.force_login(district.admin_a1)
    resp = client.post(reverse("cadre:activity_decide", args=[b.pk]), {"decision": "reject", "reason": ""})
    assert resp.status_code == 422 and 'id="reason-error-' in resp.content.decode()
    b.refresh_from_db()
    assert b.status == ActivityStatus.PROPOSED
    html = client.post(
        reverse("cadre:activity_decide", args=[b.pk]), {"decision": "reject", "reason": "与已有活动重复"}, follow=True
    ).content.decode()
    assert "已驳回" in html
    b.refresh_from_db()
    assert b.status == ActivityStatus.REJECTED and b.decision_reason == "与已有活动重复"
    html = client.post(reverse("cadre:activity_decide", args=[a.pk]), {"decision": "approve"}, follow=True).content
    assert "已通过并发布" in html.decode()
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED


def test_edit_then_approve_applies_the_edits_and_shows_errors_beside_fields(client, district):
    a, m = _proposal(district)
    client.force_login(district.admin_a1)
    url = reverse("cadre:activity_review", args=[a.pk])
    html = client.get(url).content.decode()
    assert 'value="社区义诊志愿服务"' in html
    start = timezone.localtime(a.starts_at)
    data = {
        "title": "社区义诊志愿服务（第一场）",
        "category": "volunteer",
        "place": "龙泉驿区社区服务中心",
        "description": "",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": start.strftime("%Y-%m-%dT%H:%M"),
        "capacity": "20",
    }
    resp = client.post(url, data)
    assert resp.status_code == 422 and 'id="ends_at-error"' in resp.content.decode()
    assert 'value="龙泉驿区社区服务中心"' in resp.content.decode()
    data["ends_at"] = (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    client.post(url, data, follow=True)
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED
    assert (a.title, a.capacity, a.category, a.organizer_id) == (
        "社区义诊志愿服务（第一场）",
        20,
        "volunteer",
        m.user_id,
    )


def test_outsider_cadre_gets_404_on_decide_review_and_checkin(client, district):
    a, _m = _proposal(district)
    p = _published(district)
    client.force_login(district.admin_b)
    assert client.post(reverse("cadre:activity_decide", args=[a.pk]), {"decision": "approve"}).status_code == 404
    assert client.get(reverse("cadre:activity_review", args=[a.pk])).status_code == 404
    assert client.get(reverse("cadre:activity_checkin", args=[p.pk])).status_code == 404
    assert client.get(reverse("cadre:activity_checkin_qr", args=[p.pk])).status_code == 404
    assert client.post(reverse("cadre:activity_checkin_card", args=[p.pk]), {"card": "x"}).status_code == 404
    a.refresh_from_db()
    assert a.status == ActivityStatus.PROPOSED


def test_checkin_page_shows_a_qr_encoding_a_valid_member_url_and_the_count(client, district):
    a = _now(_published(district))
    client.force_login(district.admin_a1)
    html = client.get(reverse("cadre:activity_checkin", args=[a.pk])).content.decode()
    assert "<svg" in html and 'id="checked-in">0<' in html
    link = re.search(r'data-checkin-url="([^"]+)"', html).group(1)
    assert f"/m/activities/{a.pk}/checkin/?c=" in link
    code = link.split("?c=")[1]
    checkin_svc.check_code(a, code)  # what the QR encodes is a code the service accepts now
    frag = client.get(reverse("cadre:activity_checkin_qr", args=[a.pk])).content.decode()
    assert 'id="checkin-qr"' in frag and 'hx-trigger="load delay:' in frag and "<html" not in frag


def test_card_scan_checks_a_confirmed_member_in_and_explains_refusals(client, district):
    a = _published(district)
    m = make_member(district.union_a1, "韩刷卡")
    signups_svc.sign_up(m.user, a.pk)
    stranger = make_member(district.union_a1, "韩未报")
    a = _now(a)
    client.force_login(district.admin_a1)
    url = reverse("cadre:activity_checkin_card", args=[a.pk])
    resp = client.post(url, {"card": "http://testserver/c/verify/?t=" + card_token(m)})
    html = resp.content.decode()
    assert resp.status_code == 200 and 'id="card-ok"' in html and "韩*卡" in html and 'id="checked-in">1<' in html
    assert Signup.objects.get(activity=a, user=m.user).checkin_method == "card"
    resp = client.post(url, {"card": card_token(m)})
    assert resp.status_code == 409 and "已签到过" in resp.content.decode()
    resp = client.post(url, {"card": card_token(stranger)})
    assert resp.status_code == 403 and "没有该活动的有效报名" in resp.content.decode()
    resp = client.post(url, {"card": "garbage"})
    assert resp.status_code == 422 and 'id="card-error"' in resp.content.decode()
    resp = client.post(url, {"card": ""})
    assert resp.status_code == 422 and "请扫描或粘贴会员证二维码内容" in resp.content.decode()


def test_member_organizer_reaches_their_checkin_page_without_being_a_cadre(client, district):
    a, m = _proposal(district)
    client.force_login(m.user)
    assert client.get(reverse("cadre:activity_checkin", args=[a.pk])).status_code == 404  # not published yet
    activities_svc.decide_proposal(district.admin_a1, a, approve=True)
    html = client.get(reverse("cadre:activity_checkin", args=[a.pk])).content.decode()
    assert 'id="checkin-qr"' in html and reverse("member:activity", args=[a.pk]) in html
    assert 'class="m-tabbar"' not in html  # no cadre tab bar for a member
    other = make_member(district.union_a1, "旁观者")
    client.force_login(other.user)
    assert client.get(reverse("cadre:activity_checkin", args=[a.pk])).status_code == 404
    assert client.get(reverse("cadre:activities")).status_code == 403


def test_signed_out_goes_to_the_cadre_login(client, district):
    a = _published(district)
    resp = client.get(reverse("cadre:activity_checkin", args=[a.pk]))
    assert resp.status_code == 302 and "/c/login/" in resp["Location"]


def test_notice_link_opens_the_review_for_a_proposal(client, district):
    a, _m = _proposal(district)
    client.force_login(district.admin_a1)
    resp = client.get(f"/c/activities/{a.pk}/")
    assert resp.status_code == 302 and resp["Location"] == reverse("cadre:activity_review", args=[a.pk])


def test_cadre_forms_need_csrf(district):
    a, _m = _proposal(district)
    c = Client(enforce_csrf_checks=True)
    c.force_login(district.admin_a1)
    assert c.post(reverse("cadre:activity_decide", args=[a.pk]), {"decision": "approve"}).status_code == 403
    a.refresh_from_db()
    assert a.status == ActivityStatus.PROPOSED


def test_home_links_to_activities(client, district):
    client.force_login(district.admin_a1)
    assert 'id="home-activities"' in client.get(reverse("cadre:home")).content.decode()


def test_every_field_that_costs_the_org_shows_where_the_proposal_is_decided(client, district):
    a, _m = _proposal(district, points_cost=5, capacity=12)
    # A proposal made before members were refused a reward still carries one: it must show.
    Activity.objects.filter(pk=a.pk).update(points_reward=7)
    client.force_login(district.admin_a1)
    html = client.get(reverse("cadre:activities")).content.decode()
    assert re.search(rf'id="cost-points-reward-{a.pk}">.*每人 7 分.*最多 84 分', html)
    assert re.search(rf'id="cost-points-cost-{a.pk}">每人 5 分', html) and f'id="cost-capacity-{a.pk}">12' in html
    html = client.get(reverse("cadre:activity_review", args=[a.pk])).content.decode()
    assert 'id="proposal-costs"' in html and "最多 84 分" in html
    assert re.search(r'name="points_reward"[^>]*value="7"', html) and re.search(r'name="points_cost"[^>]*value="5"', html)


def test_the_reviewing_cadre_sets_the_points_reward_when_approving(client, district):
    a, _m = _proposal(district)
    client.force_login(district.admin_a1)
    values = {
        "title": a.title,
        "category": a.category,
        "place": "",
        "description": "",
        "starts_at": timezone.localtime(a.starts_at).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": timezone.localtime(a.ends_at).strftime("%Y-%m-%dT%H:%M"),
        "capacity": "12",
        "points_cost": "0",
        "points_reward": "x",
    }
    resp = client.post(reverse("cadre:activity_review", args=[a.pk]), values)
    assert resp.status_code == 422 and 'id="points_reward-error"' in resp.content.decode()
    resp = client.post(reverse("cadre:activity_review", args=[a.pk]), {**values, "points_reward": "6"})
    assert resp.status_code == 302
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED and a.points_reward == 6
