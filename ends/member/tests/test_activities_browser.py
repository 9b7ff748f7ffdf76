"""At phone size: a member signs up for an activity and checks in by opening the link the
organizer's rotating QR encodes; and the activity pages' other states (empty, errors beside the
field, long Chinese names, notices) as screenshots."""

import datetime as dt

import pytest
from django.utils import timezone

from activities.models import Activity
from activities.services import activities as activities_svc
from activities.services import signups as signups_svc
from conftest import PASSWORD, PHONE, make_member, screenshot
from notifications.services.notices import notify
from points.services import budgets, ledger

LONG = "甲一公司工会职工文体协会二〇二六年春季环湖健步走暨亲子定向越野挑战赛（第一期·报名从速）"


def _login(page, phone: str, path: str = "/m/login/?tab=password"):
    page.goto(path)
    page.fill("#phone", phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")


def _no_sideways_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_member_signs_up_and_checks_in_through_the_organizers_qr(page_factory, district, live_server):
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, district.union_a1, 10000)
    start = timezone.now() + dt.timedelta(days=3)
    a = activities_svc.create_activity(
        district.admin_a1,
        district.union_a1,
        title="职工趣味运动会",
        category="sports",
        place="龙泉驿区体育中心",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=3),
        capacity=20,
        points_reward=15,
        extra_fields=[{"key": "size", "label": "T恤尺码", "required": True, "choices": ["S", "M", "L", "XL"]}],
    )
    m = make_member(district.union_a1, "沈签到")

    page = page_factory(PHONE)
    _login(page, m.user.phone)
    page.wait_for_selector("#home-activities")
    page.click("#home-activities")
    page.wait_for_selector(f"#activity-{a.pk}")
    assert "剩余 20/20 个名额" in page.inner_text(f"#activity-{a.pk}")
    _no_sideways_scroll(page)
    screenshot(page, "member-activity-list-phone")
    page.click(f"#activity-{a.pk}")
    page.wait_for_selector("#signup-btn")
    page.click("#signup-btn")  # without the required size: the message sits beside the field
    page.wait_for_selector("#x_size-error")
    assert "请填写T恤尺码" in page.inner_text("#field-size")
    screenshot(page, "member-activity-signup-error-phone")
    page.check("input[name=x_size][value=M]")
    page.click("#signup-btn")
    page.wait_for_selector("#my-status")
    assert "已报名" in page.inner_text("#my-status")
    screenshot(page, "member-activity-signed-up-phone")

    # The activity is on now: the organizer (a cadre of the union) shows the rotating QR.
    now = timezone.now()
    Activity.objects.filter(pk=a.pk).update(
        signup_opens_at=now - dt.timedelta(days=1),
        signup_closes_at=now - dt.timedelta(minutes=20),
        cancel_until=now - dt.timedelta(minutes=20),
        starts_at=now - dt.timedelta(minutes=10),
        ends_at=now + dt.timedelta(hours=2),
    )
    organizer = page_factory(PHONE)
    _login(organizer, district.admin_a1.phone, f"/c/login/?next=/c/activities/{a.pk}/checkin/")
    organizer.wait_for_selector("#checkin-qr svg")
    assert organizer.inner_text("#checked-in").strip() == "0"
    box = organizer.locator("#checkin-qr svg").bounding_box()
    assert box["width"] >= 250 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(organizer, "cadre-activity-checkin-qr-phone")
    link = organizer.get_attribute("#checkin-qr", "data-checkin-url")
    assert link.startswith(live_server.url + f"/m/activities/{a.pk}/checkin/?c=")

    page.goto(link)  # what the member's camera opens
    page.wait_for_selector("#checkin-result")
    assert page.get_attribute("#checkin-result", "data-outcome") == "ok"
    assert "+15 积分" in page.inner_text("#points-earned")
    screenshot(page, "member-activity-checkin-ok-phone")
    assert ledger.balance_of(m.user) == 15
    page.goto(link)
    page.wait_for_selector("#checkin-result")
    assert page.get_attribute("#checkin-result", "data-outcome") == "already_checked_in"
    screenshot(page, "member-activity-checkin-again-phone")

    # The organizer's count follows (htmx asks for a new QR and count as the code turns over).
    organizer.reload()
    organizer.wait_for_selector("#checked-in")
    assert organizer.inner_text("#checked-in").strip() == "1"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_activity_pages_states_at_phone_size(page_factory, district):
    m = make_member(district.union_a1, "欧阳司马长名字会员")
    page = page_factory(PHONE)
    _login(page, m.user.phone)
    page.wait_for_selector("#home-notices")
    page.goto("/m/activities/")
    page.wait_for_selector("#no-activities")
    screenshot(page, "member-activity-list-empty-phone")
    page.goto("/m/notices/")
    page.wait_for_selector("#no-notices")
    screenshot(page, "member-notices-empty-phone")

    start = timezone.now() + dt.timedelta(days=2)
    full = activities_svc.create_activity(
        district.admin_a1,
        district.union_a1,
        title=LONG[:100],
        place="成都市龙泉驿区龙泉街道驿都大道中段一千二百三十四号工人文化宫三楼多功能厅",
        starts_at=start,
        ends_at=start + dt.timedelta(days=1, hours=2),
        capacity=1,
        points_cost=0,
        description="活动介绍" * 60,
    )
    signups_svc.sign_up(make_member(district.union_a1, "先到者").user, full.pk)
    activities_svc.create_activity(
        district.admin_a1,
        district.union_a1,
        title="法律知识讲座",
        category="lecture",
        starts_at=start + dt.timedelta(days=1),
        ends_at=start + dt.timedelta(days=1, hours=1),
        capacity=100,
    )
    page.goto("/m/activities/")
    page.wait_for_selector(f"#activity-{full.pk}")
    assert "已满 · 候补 0 人" in page.inner_text(f"#activity-{full.pk}")
    _no_sideways_scroll(page)
    screenshot(page, "member-activity-list-long-names-phone")
    page.click(f"#activity-{full.pk}")
    page.wait_for_selector("#signup-btn")
    assert "名额已满，加入候补" in page.inner_text("#signup-btn")
    _no_sideways_scroll(page)
    page.click("#signup-btn")
    page.wait_for_selector("#my-status")
    assert "候补第 1 位" in page.inner_text("#my-status")
    screenshot(page, "member-activity-waitlisted-long-names-phone")

    page.goto("/m/activities/new/")
    page.fill("#title", "")
    page.fill("#capacity", "0")
    page.click("#propose-btn")
    page.wait_for_selector("#title-error")
    assert page.locator("#capacity-error").count() == 1
    _no_sideways_scroll(page)
    screenshot(page, "member-activity-propose-errors-phone")
    page.fill("#title", "周末读书分享会")
    page.fill("#capacity", "12")
    page.click("#propose-btn")
    page.wait_for_selector("#my-proposals")
    assert "待审核" in page.inner_text("#my-proposals")
    screenshot(page, "member-activity-proposed-phone")

    page.goto(f"/m/activities/{full.pk}/checkin/?c=123-abcdefabcdefabcd")
    page.wait_for_selector("#checkin-result")
    screenshot(page, "member-activity-checkin-refused-phone")

    notify(
        [m.user_id],
        kind="activity.promoted",
        title="候补成功：" + LONG,
        body="您已由候补转为报名成功。" * 5,
        url=f"/m/activities/{full.pk}/",
    )
    notify([m.user_id], kind="activity.message", title="集合地点变更", body="改在东门集合")
    page.goto("/m/")
    page.wait_for_selector("#notices-badge")
    assert page.inner_text("#notices-badge").strip() == "2"
    screenshot(page, "member-home-notices-badge-phone")
    page.click("#home-notices")
    page.wait_for_selector("#notices")
    _no_sideways_scroll(page)
    screenshot(page, "member-notices-phone")
    page.click("#read-all")
    page.wait_for_selector("#unread-count")
    assert "没有未读消息" in page.inner_text("#unread-count")
