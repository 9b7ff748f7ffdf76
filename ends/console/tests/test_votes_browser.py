"""At desktop size: a cadre creates a poll, opens the monitor, sees the chart with a line per
candidate and the burst, and voids a network's ballots with a reason after checking the count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F
from django.utils import timezone

from conftest import console_login, make_member, screenshot
from votes.models import Ballot, BallotBucket, Poll
from votes.services import polls

CONSOLE = {"width": 1366, "height": 900}
LONG = "第一车间数控机床操作班组长兼工会小组长欧阳晓明同志（市级劳动模范候选人）"


def _bucket(t: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(t.timestamp()) // 600 * 600, dt.UTC)


def _move_back(ballot: Ballot, minutes: int) -> None:
    """Test set-up: a ballot cast `minutes` earlier, with its monitor bucket moved along (as if the
    vote had come in then), so the chart has a history to compare the burst with."""
    old = _bucket(ballot.created_at)
    when = ballot.created_at - dt.timedelta(minutes=minutes)
    ids = [int(i) for i in ballot.choices.split(",")]
    for option_id in ids:
        lead = int(option_id == ids[0])
        BallotBucket.objects.filter(poll_id=ballot.poll_id, option_id=option_id, bucket=old).update(
            votes=F("votes") - 1, ballots=F("ballots") - lead
        )
        row, _ = BallotBucket.objects.get_or_create(poll_id=ballot.poll_id, option_id=option_id, bucket=_bucket(when))
        BallotBucket.objects.filter(pk=row.pk).update(votes=F("votes") + 1, ballots=F("ballots") + lead)
    Ballot.objects.filter(pk=ballot.pk).update(created_at=when)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cadre_creates_a_poll_then_voids_a_brushing_cluster_from_the_monitor(page_factory, district):
    page = page_factory(CONSOLE)
    console_login(page, district.admin_a)
    page.click("nav.nav >> text=投票评选")
    page.wait_for_selector("#new-poll")
    page.click("#new-poll")
    page.wait_for_selector("#poll-form")
    page.fill("#pv-title", "")
    page.fill("#pv-options", "")
    page.click("#create-poll")
    page.wait_for_selector(".field-error")
    screenshot(page, "console-poll-new-errors")
    page.fill("#pv-title", "2026年度“最美职工”网络评选活动（甲街道各基层工会推荐人选）")
    page.fill("#pv-options", f"张三｜甲一公司工会 技术能手\n{LONG}\n王五")
    page.click("#create-poll")
    page.wait_for_selector("#option-table")
    poll = Poll.objects.get()
    screenshot(page, "console-poll-detail")

    # The poll opens; honest ballots trickle in over two hours, then 40 come from one network at once.
    Poll.objects.filter(pk=poll.pk).update(opens_at=timezone.now() - dt.timedelta(hours=3))
    options = list(poll.options.all())
    for i in range(24):
        m = make_member(district.union_a1, f"会员{i}")
        b = polls.cast_ballot(m.user, poll.pk, [options[i % 2].pk], ip=f"198.51.{i}.7", device=f"dev{i}")
        _move_back(b, 10 * (i % 12 + 1))
    for i in range(40):
        m = make_member(district.union_a2, f"刷票{i}")
        polls.cast_ballot(m.user, poll.pk, [options[2].pk], ip=f"203.0.113.{i + 1}", device=f"bot{i % 3}")

    page.goto(f"/console/polls/{poll.pk}/")
    page.click("#monitor-link")
    page.wait_for_selector("#monitor-chart canvas")
    names = page.evaluate(
        "echarts.getInstanceByDom(document.getElementById('monitor-chart')).getOption().series.map(s => s.name)"
    )
    assert names == ["张三", LONG, "王五"]
    points = page.evaluate(
        "echarts.getInstanceByDom(document.getElementById('monitor-chart')).getOption().series[2].data"
    )
    assert sum(points) == 40
    assert page.locator("#bursts tbody tr").count() == 1
    assert "王五" in page.inner_text("#bursts")
    screenshot(page, "console-poll-monitor")

    row = page.locator("#clusters tr", has_text="203.0.113.0/24")
    row.locator(".pv-pick").click()
    assert page.input_value("#vd-prefix") == "203.0.113.0/24"
    page.fill("#vd-reason", "同一网段短时间内集中投票，经核实为刷票")
    page.click("#void-preview-btn")
    page.wait_for_selector("#void-preview")
    assert "40" in page.inner_text("#void-preview")
    assert Ballot.objects.filter(poll=poll, void__isnull=False).count() == 0
    screenshot(page, "console-poll-void-preview")
    page.click("#void-confirm")
    page.wait_for_selector("#void-ok")
    assert "已作废 40 张选票" in page.inner_text("#void-ok")
    assert "同一网段短时间内集中投票" in page.inner_text("#void-batches")
    assert Ballot.objects.filter(poll=poll, void__isnull=False).count() == 40
    assert polls.results(poll)["total_ballots"] == 24
    screenshot(page, "console-poll-monitor-after-void")
