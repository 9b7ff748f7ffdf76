"""At phone size: a member finds a poll from the home page, votes, and sees the receipt; a second
ballot is refused beside the choices; the public pages show the receipt after close."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from conftest import DESKTOP, PASSWORD, PHONE, make_member, screenshot
from votes.models import Ballot, Poll
from votes.services import polls

LONG = "第一车间数控机床操作班组长兼工会小组长欧阳晓明同志（市级劳动模范候选人）"


def _poll(district, **kw) -> Poll:
    now = timezone.now()
    poll = polls.create_poll(
        district.admin_a,
        district.street_a,
        title=kw.pop("title", "2026年度“最美职工”网络评选活动（甲街道各基层工会推荐人选）"),
        options=[
            {"title": "张三", "description": "甲一公司工会 技术能手，连续三年获评先进生产者"},
            {"title": LONG, "description": "扎根一线二十年，带出徒弟三十余人。" * 4},
            {"title": "王五", "description": ""},
        ],
        max_choices=kw.pop("max_choices", 1),
        opens_at=now + dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(days=3),
        description="每位会员每天可投票，请为您心目中的最美职工投上宝贵一票。",
        **kw,
    )
    Poll.objects.filter(pk=poll.pk).update(opens_at=now - dt.timedelta(hours=2))
    poll.refresh_from_db()
    return poll


def _login(page, user):
    page.goto("/m/login/?tab=password")
    page.fill("#phone", user.phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_selector("#home-polls")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_member_votes_and_sees_the_receipt(page_factory, district):
    poll = _poll(district, ballots_per_day=2)
    for n in range(3):  # some votes already in, for the bars
        polls.cast_ballot(make_member(district.union_a2, f"早投{n}").user, poll.pk, [poll.options.first().pk])
    member = make_member(district.union_a1, "陈投票")
    page = page_factory(PHONE)
    _login(page, member.user)
    page.click("#home-polls")
    page.wait_for_selector(f"#poll-{poll.pk}")
    screenshot(page, "member-poll-list-phone")
    page.click(f"#poll-{poll.pk}")
    page.wait_for_selector("#vote-form")
    assert "今天还可以投 2 票" in page.inner_text("#ballots-left")
    screenshot(page, "member-poll-detail-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # long Chinese names wrap, nothing scrolls sideways

    long_option = poll.options.get(title=LONG)
    page.click(f"#option-{long_option.pk}")
    page.click("#vote-btn")
    page.wait_for_selector("#receipt-code")
    ballot = Ballot.objects.get(poll=poll, voter=member.user)
    assert page.inner_text("#receipt-code").replace("-", "") == ballot.receipt
    assert LONG in page.inner_text("#receipt")
    assert "今天还可以投 1 票" in page.inner_text("#ballots-left")
    screenshot(page, "member-poll-receipt-phone")

    # Second ballot of the day, then a third: refused beside the choices with "come back tomorrow".
    page.click("#back-to-poll")
    page.wait_for_selector("#vote-form")
    page.click(f"#option-{poll.options.first().pk}")
    page.click("#vote-btn")
    page.wait_for_selector("#receipt-code")
    page.goto(f"/m/polls/{poll.pk}/")
    assert page.locator("#vote-btn").is_disabled()
    assert "明天再来" in page.inner_text("#vote-btn")
    screenshot(page, "member-poll-daily-limit-phone")

    page.goto(f"/m/polls/{poll.pk}/options/{long_option.pk}/")
    page.wait_for_selector("#share-qr svg")
    assert LONG in page.inner_text("#candidate-name")
    box = page.locator("#share-qr svg").bounding_box()
    assert box["width"] >= 150 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "member-poll-share-phone")

    # After close the receipt is in the public list, found by its code.
    polls.close_poll(district.admin_a, poll)
    public = page_factory(DESKTOP)
    public.goto(f"/polls/{poll.pk}/receipts/")
    public.fill("#receipt-q", ballot.receipt.lower())
    public.click("#receipt-search-btn")
    public.wait_for_selector("#receipt-found")
    assert "已计入" in public.inner_text("#receipt-found")
    screenshot(public, "portal-poll-receipts-desktop")
    public.goto(f"/polls/{poll.pk}/recount/")
    assert "与公布结果一致" in public.inner_text("#verdict")
    screenshot(public, "portal-poll-recount-desktop")
    phone = page_factory(PHONE)
    phone.goto(f"/polls/{poll.pk}/")
    phone.wait_for_selector("#results")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "portal-poll-results-phone")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_member_sees_why_they_cannot_vote(page_factory, district):
    poll = _poll(district, title="只投一次的评选", max_choices=2)
    member = make_member(district.union_a1, "李已投")
    polls.cast_ballot(member.user, poll.pk, [poll.options.first().pk])
    page = page_factory(PHONE)
    _login(page, member.user)
    page.goto(f"/m/polls/{poll.pk}/")
    page.wait_for_selector("#vote-form")
    assert page.locator("#vote-btn").is_disabled()
    assert "您已经投过票了" in page.inner_text("#vote-state")
    screenshot(page, "member-poll-already-voted-phone")
    page.goto("/m/polls/?tab=upcoming")
    page.wait_for_selector("#no-polls")
    screenshot(page, "member-poll-list-empty-phone")
