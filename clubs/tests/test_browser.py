"""At phone size: a member proposes a club, a cadre approves it in the console, another member joins;
the club admin posts. Screenshots of each end."""

from __future__ import annotations

import pytest

from clubs.models import Club
from clubs.services import clubs as svc
from conftest import PASSWORD, PHONE, console_login, make_member, screenshot

DESKTOP = {"width": 1366, "height": 900}


def _member_login(page, user):
    page.goto("/m/login/?tab=password")
    page.fill("#phone", user.phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_selector(".m-hero")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_propose_approve_join_and_post(page_factory, district):
    founder = make_member(district.union_a1, "司马发起")
    page = page_factory(PHONE)
    _member_login(page, founder.user)
    page.click("#home-clubs")
    page.wait_for_selector("#club-tabs")
    screenshot(page, "member-clubs-empty-phone")
    page.click("#propose-club")
    page.click("#propose-btn")  # empty: errors beside the fields
    page.wait_for_selector("#name-error")
    page.fill("#name", "龙泉山登山徒步与户外摄影爱好者联盟")
    page.fill("#category", "户外")
    page.fill("#description", "每月第二个周六登龙泉山，沿途拍照交流。\n新手友好，有领队。")
    page.check("input[value=approval]")
    screenshot(page, "member-club-propose-phone")
    page.click("#propose-btn")
    page.wait_for_selector("#club-state")
    club = Club.objects.get()
    assert club.status == "proposed" and club.join_policy == "approval"

    console = page_factory(DESKTOP)
    console_login(console, district.admin_a)
    console.click("#nav-clubs")
    console.wait_for_selector(f"#proposal-{club.pk}")
    screenshot(console, "console-club-proposals-desktop")
    console.click(f"#approve-{club.pk}")
    console.wait_for_selector("#decide-ok")
    console.click(f'#club-table a[href="/console/clubs/{club.pk}/"]')
    console.wait_for_selector("#club-members")
    screenshot(console, "console-club-detail-desktop")

    joiner = make_member(district.union_a1, "欧阳加入")
    other = page_factory(PHONE)
    _member_login(other, joiner.user)
    other.goto(f"/m/clubs/{club.pk}/")
    other.click("#join-btn")
    other.wait_for_selector("#pending-note")
    screenshot(other, "member-club-pending-phone")

    page.goto(f"/m/clubs/{club.pk}/")
    page.wait_for_selector("#admin-tools")
    assert page.inner_text("#pending-count") == "1"
    assert page.get_attribute("#new-activity", "href") == f"/m/activities/new/?club={club.pk}"
    page.click("#manage-link")
    page.click(f"#approve-{joiner.user_id}")
    page.wait_for_selector("#no-requests")
    page.fill("#post-title", "本周六登山集合通知")
    page.fill("#post-body", "早上8点在龙泉驿地铁站B口集合，请带好饮用水。")
    page.click("#post-btn")
    page.wait_for_selector("#club-posts article")
    assert page.inner_text("#members-count") == "2"
    page.evaluate("window.scrollTo(0, 0)")  # the redirect lands on the new post's anchor
    screenshot(page, "member-club-admin-phone")

    other.goto(f"/m/clubs/{club.pk}/")
    assert "本周六登山集合通知" in other.inner_text("#club-posts")
    club.refresh_from_db()
    assert svc.is_club_member(joiner.user, club)
    other.goto("/m/clubs/")
    other.wait_for_selector(f"#club-{club.pk}")
    box = other.locator(f"#club-{club.pk}").bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
    screenshot(other, "member-clubs-mine-phone")
