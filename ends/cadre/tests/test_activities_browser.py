"""At phone size: a cadre approves a member's proposal in the cadre end, and the member, now the
organizer, opens the check-in page from the member end and checks a participant in by card."""

import datetime as dt

import pytest
from django.utils import timezone

from activities.models import Activity, ActivityStatus
from activities.services import activities as activities_svc
from activities.services import signups as signups_svc
from conftest import PASSWORD, PHONE, make_member, screenshot
from members.services import card_token


def _login(page, phone, path):
    page.goto(path)
    page.fill("#phone", phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cadre_approves_and_member_organizer_checks_in_by_card(page_factory, district):
    m = make_member(district.union_a1, "上官组织者")
    start = timezone.now() + dt.timedelta(days=3)
    a = activities_svc.create_activity(
        m.user,
        district.union_a1,
        title="龙泉山城市森林公园徒步（需自备饮用水与防晒用品）",
        place="龙泉山丹景台景区北门停车场集合",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=5),
        capacity=15,
        description="沿山脊步道徒步约8公里。",
    )
    cadre = page_factory(PHONE)
    _login(cadre, district.admin_a1.phone, "/c/login/?next=/c/activities/")
    cadre.wait_for_selector(f"#proposal-{a.pk}")
    screenshot(cadre, "cadre-activity-proposals-phone")
    cadre.click(f"#review-{a.pk}")
    cadre.wait_for_selector("#review-form")
    cadre.fill("#capacity", "0")
    cadre.click("#approve-edited")
    cadre.wait_for_selector("#capacity-error")
    screenshot(cadre, "cadre-activity-review-error-phone")
    cadre.fill("#capacity", "18")
    cadre.click("#approve-edited")
    cadre.wait_for_selector("#no-proposals")
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED and a.capacity == 18

    joiner = make_member(district.union_a1, "诸葛参加")
    signups_svc.sign_up(joiner.user, a.pk)
    now = timezone.now()
    Activity.objects.filter(pk=a.pk).update(
        signup_opens_at=now - dt.timedelta(days=1),
        signup_closes_at=now - dt.timedelta(minutes=30),
        cancel_until=now - dt.timedelta(minutes=30),
        starts_at=now - dt.timedelta(minutes=5),
        ends_at=now + dt.timedelta(hours=3),
    )
    page = page_factory(PHONE)
    _login(page, m.user.phone, f"/m/login/?tab=password&next=/m/activities/{a.pk}/")
    page.wait_for_selector("#organizer-link")
    screenshot(page, "member-activity-organizer-phone")
    page.click("#organizer-link")
    page.wait_for_selector("#checkin-qr svg")
    assert page.locator(".m-tabbar").count() == 0
    page.fill("#card", "https://example.org/c/verify/?t=" + card_token(joiner))
    page.click("#card-btn")
    page.wait_for_selector("#card-ok")
    assert "诸**加" in page.inner_text("#card-ok") and page.inner_text("#checked-in").strip() == "1"
    screenshot(page, "member-organizer-card-checkin-phone")
    page.fill("#card", "not a card")
    page.click("#card-btn")
    page.wait_for_selector("#card-fail")
    screenshot(page, "member-organizer-card-refused-phone")
