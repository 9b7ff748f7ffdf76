"""At desktop size (1366×900): a cadre approves a member-initiated activity from the proposals
queue, then publishes one of their own with extra sign-up fields, and looks at the detail page."""

import datetime as dt

import pytest
from django.utils import timezone

from activities.models import Activity, ActivityStatus
from activities.services import activities as activities_svc
from activities.services import signups as signups_svc
from conftest import console_login, make_member, screenshot

DESKTOP = {"width": 1366, "height": 900}
LONG = "甲一公司工会职工文体协会二〇二六年春季环湖健步走暨亲子定向越野挑战赛（第一期·报名从速）"


def _fits(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cadre_approves_a_member_initiated_activity(page_factory, district):
    m = make_member(district.union_a1, "司马发起人")
    start = timezone.now() + dt.timedelta(days=6)
    proposal = activities_svc.create_activity(
        m.user,
        district.union_a1,
        title=LONG[:100],
        place="职工之家活动室",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        capacity=25,
    )
    # A proposal made before members were refused a reward still carries one: the queue shows it.
    Activity.objects.filter(pk=proposal.pk).update(points_reward=6)
    other = activities_svc.create_activity(
        m.user, district.union_a1, title="周末观影", starts_at=start, ends_at=start + dt.timedelta(hours=2), capacity=8
    )
    page = page_factory(DESKTOP)
    console_login(page, district.admin_a1)
    page.click("#nav-activities")
    page.wait_for_selector("#proposals-link")
    assert "2" in page.inner_text("#proposals-link")
    page.click("#proposals-link")
    page.wait_for_selector(f"#proposal-{proposal.pk}")
    _fits(page)
    assert page.inner_text(f"#points-cost-{proposal.pk}") == "0"
    assert "预算最多 150" in page.inner_text(f"#points-reward-{proposal.pk}")
    screenshot(page, "console-activity-proposals-desktop")
    page.click(f"#reject-{other.pk}")  # no reason: refused beside the form
    page.wait_for_selector("#decide-error")
    screenshot(page, "console-activity-proposals-reject-error-desktop")
    page.click(f"#approve-{proposal.pk}")
    page.wait_for_selector("#decided")
    assert "已通过并发布" in page.inner_text("#decided")
    proposal.refresh_from_db()
    assert proposal.status == ActivityStatus.PUBLISHED and proposal.organizer_id == m.user_id

    signups_svc.sign_up(make_member(district.union_a1, "欧阳报名者").user, proposal.pk)
    page.goto(f"/console/activities/{proposal.pk}/")
    page.wait_for_selector("#signup-table")
    assert "欧阳报名者" in page.inner_text("#signup-table")
    _fits(page)
    screenshot(page, "console-activity-detail-desktop")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cadre_publishes_an_activity_with_extra_fields(page_factory, district):
    page = page_factory(DESKTOP)
    console_login(page, district.admin_a1)
    page.goto("/console/activities/")
    page.wait_for_selector(".empty")
    screenshot(page, "console-activity-list-empty-desktop")
    page.click("#new-activity")
    page.wait_for_selector("#activity-form")
    page.fill("#af-title", "")
    page.fill("#af-capacity", "0")
    page.click("#save-activity")
    page.wait_for_selector(".field-error")
    _fits(page)
    screenshot(page, "console-activity-form-errors-desktop")
    page.fill("#af-title", "职工篮球联赛")
    page.fill("#af-capacity", "40")
    page.fill("input[name=xf_label_0]", "T恤尺码")
    page.check("input[name=xf_required_0]")
    page.fill("input[name=xf_choices_0]", "S、M、L")
    page.click("#add-extra")
    page.fill("input[name=xf_label_3]", "饮食禁忌")
    page.fill("#af-reward", "10")
    page.click("#save-activity")
    page.wait_for_selector("#activity-title")
    a = Activity.objects.get(title="职工篮球联赛")
    assert [f["label"] for f in a.extra_fields] == ["T恤尺码", "饮食禁忌"]
    assert a.extra_fields[0]["choices"] == ["S", "M", "L"] and a.points_reward == 10
    screenshot(page, "console-activity-created-desktop")
    page.goto("/console/activities/")
    page.wait_for_selector(f"#activity-{a.pk}")
    screenshot(page, "console-activity-list-desktop")
