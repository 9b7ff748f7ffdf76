"""Member end activities pages: the list and its filters, detail, sign-up (extra fields, points,
waitlist, each refusal beside its field), cancel, proposing, the QR check-in landing page, and the
notifications page with the home badge."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from activities.models import Activity, ActivityStatus, Signup, SignupStatus
from activities.services import activities as activities_svc
from activities.services import checkin as checkin_svc
from activities.services import signups as signups_svc
from conftest import make_member, make_user
from notifications.models import Notification
from notifications.services.notices import notify
from points.services import budgets, ledger

pytestmark = pytest.mark.django_db

LONG_NAME = "甲一公司工会职工文体协会二〇二六年春季环湖健步走暨亲子定向越野挑战赛（第一期）"


def _activity(district, *, org=None, days=3, **kw) -> Activity:
    start = timezone.now() + dt.timedelta(days=days)
    args = {"title": "周末羽毛球友谊赛", "starts_at": start, "ends_at": start + dt.timedelta(hours=2), "capacity": 10}
    args.update(kw)
    return activities_svc.create_activity(district.admin_a1, org or district.union_a1, **args)


def _happening_now(activity: Activity) -> Activity:
    """Move an activity so it is on now (creating one in the past is refused, as it should be)."""
    now = timezone.now()
    Activity.objects.filter(pk=activity.pk).update(
        signup_opens_at=now - dt.timedelta(days=2),
        signup_closes_at=now - dt.timedelta(hours=1),
        cancel_until=now - dt.timedelta(hours=1),
        starts_at=now - dt.timedelta(minutes=10),
        ends_at=now + dt.timedelta(hours=2),
    )
    activity.refresh_from_db()
    return activity


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_reachable_activities_with_seats_and_hides_other_unions(client, district):
    mine = _activity(district, title="甲一羽毛球赛", capacity=8)
    other = activities_svc.create_activity(
        district.admin_b,
        district.union_b1,
        title="乙一读书会",
        starts_at=timezone.now() + dt.timedelta(days=2),
        ends_at=timezone.now() + dt.timedelta(days=2, hours=1),
        capacity=5,
    )
    m = make_member(district.union_a1, "钱报名")
    client.force_login(m.user)
    html = client.get(reverse("member:activities")).content.decode()
    assert f'id="activity-{mine.pk}"' in html and "甲一羽毛球赛" in html
    assert "剩余 8/8 个名额" in html
    assert f'id="activity-{other.pk}"' not in html


def test_list_filters_by_category_date_and_scope(client, district):
    sport = _activity(district, title="篮球赛", category="sports", days=2)
    lecture = _activity(district, title="法律讲座", category="lecture", days=20)
    m = make_member(district.union_a1)
    client.force_login(m.user)
    html = client.get(reverse("member:activities") + "?category=lecture").content.decode()
    assert "法律讲座" in html and "篮球赛" not in html
    day = timezone.localtime(sport.starts_at).date().isoformat()
    html = client.get(reverse("member:activities") + f"?date={day}").content.decode()
    assert "篮球赛" in html and "法律讲座" not in html
    html = client.get(reverse("member:activities") + "?scope=mine").content.decode()
    assert 'id="no-activities"' in html and "您还没有报名任何活动" in html
    signups_svc.sign_up(m.user, lecture.pk)
    html = client.get(reverse("member:activities") + "?scope=mine").content.decode()
    assert "法律讲座" in html and "篮球赛" not in html and "已报名" in html


def test_list_empty_state_and_bad_filters_do_not_fail(client, district):
    client.force_login(make_member(district.union_a1).user)
    resp = client.get(reverse("member:activities") + "?category=nope&scope=zzz&date=2026-99-99&when=x&page=abc")
    assert resp.status_code == 200
    assert 'id="no-activities"' in resp.content.decode()


def test_list_needs_sign_in(client):
    resp = client.get(reverse("member:activities"))
    assert resp.status_code == 302 and "/m/login/" in resp["Location"]


# --- detail and sign-up --------------------------------------------------------------------------


def test_outsider_gets_404_on_detail_signup_and_checkin(client, district):
    a = _activity(district)
    outsider = make_member(district.union_b1, "孙外人")
    client.force_login(outsider.user)
    assert client.get(reverse("member:activity", args=[a.pk])).status_code == 404
    assert client.post(reverse("member:activity_signup", args=[a.pk])).status_code == 404
    assert client.get(reverse("member:activity_checkin", args=[a.pk]) + "?c=123").status_code == 404
    assert client.get(reverse("member:activity", args=[999999])).status_code == 404
    assert not Signup.objects.filter(activity=a).exists()


def test_sign_up_then_cancel_before_the_cut_off(client, district):
    a = _activity(district, capacity=3)
    m = make_member(district.union_a1, "周报名")
    client.force_login(m.user)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert 'id="signup-btn"' in html and "立即报名" in html
    html = client.post(reverse("member:activity_signup", args=[a.pk]), follow=True).content.decode()
    assert "报名成功" in html and 'id="my-status"' in html and "已报名" in html
    assert 'id="cancel-btn"' in html
    html = client.post(reverse("member:activity_cancel", args=[a.pk]), follow=True).content.decode()
    assert "已取消报名" in html and 'id="signup-btn"' in html
    a.refresh_from_db()
    assert a.confirmed_count == 0


def test_extra_fields_missing_answer_shows_beside_the_field_and_keeps_the_rest(client, district):
    a = _activity(
        district,
        extra_fields=[
            {"key": "size", "label": "T恤尺码", "required": True, "choices": ["S", "M", "L"]},
            {"key": "note", "label": "饮食禁忌", "required": False},
        ],
    )
    m = make_member(district.union_a1)
    client.force_login(m.user)
    resp = client.post(reverse("member:activity_signup", args=[a.pk]), {"x_note": "不吃辣"})
    html = resp.content.decode()
    assert resp.status_code == 422
    assert 'id="x_size-error"' in html and "请填写T恤尺码" in html
    assert 'value="不吃辣"' in html
    assert not Signup.objects.filter(activity=a).exists()
    resp = client.post(reverse("member:activity_signup", args=[a.pk]), {"x_size": "M", "x_note": "不吃辣"}, follow=True)
    assert "报名成功" in resp.content.decode()
    assert Signup.objects.get(activity=a, user=m.user).answers == {"size": "M", "note": "不吃辣"}


def test_full_activity_puts_the_next_person_on_the_waitlist_with_a_position(client, district):
    a = _activity(district, capacity=1, waitlist=True)
    first, second, third = (make_member(district.union_a1, n) for n in ("吴一", "吴二", "吴三"))
    signups_svc.sign_up(first.user, a.pk)
    signups_svc.sign_up(second.user, a.pk)
    client.force_login(third.user)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert "名额已满，加入候补" in html
    html = client.post(reverse("member:activity_signup", args=[a.pk]), follow=True).content.decode()
    assert "候补第 2 位" in html and "退出候补" in html


def test_full_without_waitlist_is_refused_with_the_reason(client, district):
    a = _activity(district, capacity=1, waitlist=False)
    signups_svc.sign_up(make_member(district.union_a1, "郑一").user, a.pk)
    m = make_member(district.union_a1, "郑二")
    client.force_login(m.user)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert "名额已满" in html and "disabled" in html
    resp = client.post(reverse("member:activity_signup", args=[a.pk]))
    assert resp.status_code == 409 and "名额已满" in resp.content.decode()


def test_points_cost_shown_and_insufficient_points_refused(client, district):
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, district.union_a1, 10000)
    a = _activity(district, points_cost=50)
    poor = make_member(district.union_a1, "冯没分")
    client.force_login(poor.user)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert "报名（消耗 50 积分）" in html and "我的积分：0" in html
    resp = client.post(reverse("member:activity_signup", args=[a.pk]))
    assert resp.status_code == 409 and 'id="signup-error"' in resp.content.decode()
    assert "积分不足" in resp.content.decode()
    rich = make_member(district.union_a1, "冯有分")
    budgets.grant(district.admin_a1, district.union_a1, [rich.user_id], 80, "测试")
    client.force_login(rich.user)
    html = client.post(reverse("member:activity_signup", args=[a.pk]), follow=True).content.decode()
    assert "已扣除 50 积分" in html
    assert ledger.balance_of(rich.user) == 30


def test_follower_sees_why_they_cannot_sign_up(client, district):
    a = _activity(district, eligibility="everyone", title="全民健步走")
    members_only = _activity(district, title="会员专场")
    follower = make_user("粉丝甲")
    client.force_login(follower)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert 'id="signup-btn"' in html and 'id="not-eligible"' not in html
    assert client.get(reverse("member:activity", args=[members_only.pk])).status_code == 404


def test_cancel_after_the_cut_off_is_refused(client, district):
    a = _activity(district)
    m = make_member(district.union_a1)
    signups_svc.sign_up(m.user, a.pk)
    Activity.objects.filter(pk=a.pk).update(cancel_until=timezone.now() - dt.timedelta(minutes=1))
    client.force_login(m.user)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert 'id="cancel-btn"' not in html and 'id="cancel-closed"' in html
    resp = client.post(reverse("member:activity_cancel", args=[a.pk]))
    assert resp.status_code == 409 and 'id="cancel-error"' in resp.content.decode()
    assert Signup.objects.get(activity=a, user=m.user).status == SignupStatus.CONFIRMED


def test_forms_need_csrf(district):
    from django.test import Client

    a = _activity(district)
    m = make_member(district.union_a1)
    c = Client(enforce_csrf_checks=True)
    c.force_login(m.user)
    assert c.post(reverse("member:activity_signup", args=[a.pk])).status_code == 403
    assert c.post(reverse("member:activity_propose"), {"title": "x"}).status_code == 403
    assert c.post(reverse("member:notices_read_all")).status_code == 403
    assert not Signup.objects.filter(activity=a).exists()


def test_long_names_render(client, district):
    a = _activity(district, title=LONG_NAME[:100], place="成都市龙泉驿区" * 10)
    m = make_member(district.union_a1)
    client.force_login(m.user)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert LONG_NAME[:100] in html


# --- proposing -----------------------------------------------------------------------------------


def test_certified_member_proposes_and_sees_it_pending_then_rejected_with_reason(client, district):
    m = make_member(district.union_a1, "陈发起")
    client.force_login(m.user)
    start = timezone.localtime() + dt.timedelta(days=5)
    data = {
        "title": "读书分享会",
        "category": "culture",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "capacity": "15",
        "waitlist": "1",
        "place": "职工书屋",
    }
    html = client.post(reverse("member:activity_propose"), data, follow=True).content.decode()
    a = Activity.objects.get(title="读书分享会")
    assert a.status == ActivityStatus.PROPOSED and a.organizer_id == m.user_id
    assert "审核通过后发布" in html and f'id="proposal-{a.pk}"' in html and "待审核" in html
    activities_svc.decide_proposal(district.admin_a1, a, approve=False, reason="时间与工会例会冲突")
    html = client.get(reverse("member:activity_propose")).content.decode()
    assert "未通过" in html and "时间与工会例会冲突" in html
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert 'id="decision-reason"' in html and 'id="signup-form"' not in html


def test_proposal_errors_show_beside_fields_and_keep_input(client, district):
    m = make_member(district.union_a1)
    client.force_login(m.user)
    start = timezone.localtime() + dt.timedelta(days=5)
    data = {
        "title": "",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "capacity": "0",
        "place": "工人文化宫",
    }
    resp = client.post(reverse("member:activity_propose"), data)
    html = resp.content.decode()
    assert resp.status_code == 422
    assert 'id="title-error"' in html and 'id="capacity-error"' in html and 'id="ends_at-error"' in html
    assert 'value="工人文化宫"' in html
    resp = client.post(reverse("member:activity_propose"), {**data, "starts_at": "tomorrow"})
    assert resp.status_code == 422 and 'id="starts_at-error"' in resp.content.decode()
    assert not Activity.objects.exists()


def test_follower_cannot_propose(client, district):
    client.force_login(make_user("粉丝乙"))
    html = client.get(reverse("member:activity_propose")).content.decode()
    assert 'id="not-certified"' in html and 'id="propose-form"' not in html
    resp = client.post(reverse("member:activity_propose"), {"title": "x"})
    assert resp.status_code == 403 and not Activity.objects.exists()


def test_organizer_sees_the_check_in_link_on_their_activity(client, district):
    m = make_member(district.union_a1, "褚组织")
    start = timezone.now() + dt.timedelta(days=3)
    a = activities_svc.create_activity(
        m.user, district.union_a1, title="摄影采风", starts_at=start, ends_at=start + dt.timedelta(hours=3), capacity=9
    )
    activities_svc.decide_proposal(district.admin_a1, a, approve=True)
    client.force_login(m.user)
    html = client.get(reverse("member:activity", args=[a.pk])).content.decode()
    assert 'id="organizer-link"' in html and reverse("cadre:activity_checkin", args=[a.pk]) in html
    other = make_member(district.union_a1)
    client.force_login(other.user)
    assert 'id="organizer-link"' not in client.get(reverse("member:activity", args=[a.pk])).content.decode()


# --- check-in landing page -----------------------------------------------------------------------


def _confirmed_now(district, **kw):
    a = _activity(district, **kw)
    m = make_member(district.union_a1, "蒋签到")
    signups_svc.sign_up(m.user, a.pk)
    return _happening_now(a), m


def test_check_in_by_scanned_code_succeeds_once_with_points(client, district):
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, district.union_a1, 10000)
    a, m = _confirmed_now(district, points_reward=20)
    code, _left = checkin_svc.rotating_code(a)
    url = checkin_svc.checkin_url(a, code)
    client.force_login(m.user)
    resp = client.get(url)
    html = resp.content.decode()
    assert resp.status_code == 200 and 'id="checkin-ok"' in html and "+20 积分" in html
    assert ledger.balance_of(m.user) == 20
    resp = client.get(url)
    assert resp.status_code == 409 and 'data-outcome="already_checked_in"' in resp.content.decode()
    assert ledger.balance_of(m.user) == 20


def test_check_in_landing_signs_in_first(client, district):
    a, m = _confirmed_now(district)
    code, _left = checkin_svc.rotating_code(a)
    url = checkin_svc.checkin_url(a, code)
    resp = client.get(url)
    assert resp.status_code == 302 and "/m/login/" in resp["Location"] and "next=" in resp["Location"]


def test_check_in_with_an_expired_or_bad_code_asks_to_rescan(client, district):
    a, m = _confirmed_now(district)
    client.force_login(m.user)
    old, _left = checkin_svc.rotating_code(a, at=timezone.now() - dt.timedelta(minutes=10))
    resp = client.get(reverse("member:activity_checkin", args=[a.pk]) + f"?c={old}")
    html = resp.content.decode()
    assert resp.status_code in (409, 422) and "请重新扫码" in html
    resp = client.get(reverse("member:activity_checkin", args=[a.pk]))
    assert resp.status_code == 422 and "请重新扫码" in resp.content.decode()
    assert Signup.objects.get(activity=a, user=m.user).checked_in_at is None


def test_check_in_refused_without_a_confirmed_signup(client, district):
    a = _happening_now(_activity(district))
    m = make_member(district.union_a1)
    client.force_login(m.user)
    code, _left = checkin_svc.rotating_code(a)
    resp = client.get(checkin_svc.checkin_url(a, code))
    assert resp.status_code in (403, 404, 409) and "没有该活动的有效报名" in resp.content.decode()


def test_check_in_refused_outside_the_time_window(client, district):
    a = _activity(district, days=5)
    m = make_member(district.union_a1)
    signups_svc.sign_up(m.user, a.pk)
    client.force_login(m.user)
    code, _left = checkin_svc.rotating_code(a)
    resp = client.get(checkin_svc.checkin_url(a, code))
    assert resp.status_code == 409 and "不在签到时间内" in resp.content.decode()


# --- notifications -------------------------------------------------------------------------------


def test_notices_list_marks_unread_and_mark_all_read(client, district):
    m = make_member(district.union_a1)
    other = make_member(district.union_a1, "别人")
    notify(
        [m.user_id],
        kind="activity.promoted",
        title="候补成功：羽毛球赛",
        body="您已由候补转为报名成功",
        url="/m/activities/1/",
    )
    notify([m.user_id], kind="activity.message", title="集合地点变更", body="改在东门集合")
    notify([other.user_id], kind="activity.message", title="别人的通知")
    client.force_login(m.user)
    html = client.get(reverse("member:notices")).content.decode()
    assert html.count("nt-item is-unread") == 2 and "2 条未读" in html and "别人的通知" not in html
    assert client.get(reverse("member:notices_badge")).content.decode().count(">2<") == 1
    html = client.post(reverse("member:notices_read_all"), follow=True).content.decode()
    assert "nt-item is-unread" not in html and "没有未读消息" in html
    assert client.get(reverse("member:notices_badge")).content == b""
    assert Notification.objects.filter(user=other.user, read_at__isnull=True).count() == 1


def test_opening_a_notice_marks_it_read_and_follows_only_local_links(client, district):
    m = make_member(district.union_a1)
    notify([m.user_id], kind="x", title="站内", url="/m/activities/")
    notify([m.user_id], kind="x", title="站外", url="https://evil.example/")
    inside, outside = Notification.objects.filter(user=m.user).order_by("id")
    client.force_login(m.user)
    resp = client.get(reverse("member:notice_open", args=[inside.pk]))
    assert resp.status_code == 302 and resp["Location"] == "/m/activities/"
    resp = client.get(reverse("member:notice_open", args=[outside.pk]))
    assert resp["Location"] == reverse("member:notices")
    assert not Notification.objects.filter(user=m.user, read_at__isnull=True).exists()
    stranger = make_member(district.union_a1, "陌生人")
    client.force_login(stranger.user)
    notify([m.user_id], kind="x", title="不是你的")
    theirs = Notification.objects.filter(user=m.user).latest("id")
    client.get(reverse("member:notice_open", args=[theirs.pk]))
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_notices_empty_state_and_home_entry(client, district):
    m = make_member(district.union_a1)
    client.force_login(m.user)
    assert 'id="no-notices"' in client.get(reverse("member:notices")).content.decode()
    html = client.get(reverse("member:home")).content.decode()
    assert 'id="home-activities"' in html and 'id="home-notices"' in html
    assert reverse("member:notices_badge") in html


def test_pages_render_in_english_through_the_switch(client, district):
    a = _activity(district)
    m = make_member(district.union_a1)
    client.force_login(m.user)
    resp = client.post("/i18n/setlang/", {"language": "en", "next": "/m/activities/"})
    assert resp.status_code == 302
    for url in (
        reverse("member:activities"),
        reverse("member:activity", args=[a.pk]),
        reverse("member:activity_propose"),
        reverse("member:notices"),
    ):
        resp = client.get(url)
        assert resp.status_code == 200 and '<html lang="en">' in resp.content.decode()
