"""Member end polls: the list by status and reach, voting and each refusal beside the choices,
the receipt, the share page, scope (404 outside reach) and CSRF."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conftest import make_member, make_user
from votes.models import Ballot, Poll
from votes.services import polls

pytestmark = pytest.mark.django_db

LONG = "第一车间数控机床操作班组长兼工会小组长欧阳晓明同志（市级劳动模范候选人）"


def _poll(district, org=None, *, opens=-1, closes=48, options=("张三", "李四", "王五"), **kw) -> Poll:
    now = timezone.now()
    return polls.create_poll(
        district.admin_a,
        org or district.street_a,
        title=kw.pop("title", "最美职工评选"),
        options=[{"title": t, "description": f"{t}的事迹简介"} for t in options],
        max_choices=kw.pop("max_choices", 1),
        opens_at=now + dt.timedelta(hours=opens),
        closes_at=now + dt.timedelta(hours=closes),
        **kw,
    )


def _backdate(poll: Poll, opens_hours_ago: int = 2) -> Poll:
    """Polls are created for the future; move one into its window (as time passing would)."""
    Poll.objects.filter(pk=poll.pk).update(opens_at=timezone.now() - dt.timedelta(hours=opens_hours_ago))
    poll.refresh_from_db()
    return poll


def _close_by_time(poll: Poll) -> Poll:
    now = timezone.now()
    Poll.objects.filter(pk=poll.pk).update(opens_at=now - dt.timedelta(days=2), closes_at=now - dt.timedelta(minutes=1))
    poll.refresh_from_db()
    return poll


@pytest.fixture
def member(district):
    return make_member(district.union_a1, "陈投票")


def _open_poll(district, **kw) -> Poll:
    return _backdate(_poll(district, opens=1, **kw))


def test_list_is_empty_for_a_member_without_polls(client, member):
    client.force_login(member.user)
    html = client.get(reverse("member:polls")).content.decode()
    assert 'id="no-polls"' in html and "暂时没有进行中的投票" in html


def test_list_groups_polls_by_status_within_reach(client, district, member):
    open_poll = _open_poll(district, title="进行中的评选")
    upcoming = _poll(district, opens=5, closes=50, title="下周的评选")
    elsewhere = _open_poll(district, title="乙街道的评选")
    Poll.objects.filter(pk=elsewhere.pk).update(org=district.street_b)
    client.force_login(member.user)
    html = client.get(reverse("member:polls")).content.decode()
    assert f'id="poll-{open_poll.pk}"' in html and "进行中的评选" in html
    assert "乙街道的评选" not in html
    html = client.get(reverse("member:polls") + "?tab=upcoming").content.decode()
    assert f'id="poll-{upcoming.pk}"' in html


def test_a_follower_sees_everyone_polls_only(client, district):
    members_only = _open_poll(district, title="会员专属评选")
    everyone = _open_poll(district, title="全民评选", eligibility="everyone")
    client.force_login(make_user("粉丝小王"))
    html = client.get(reverse("member:polls")).content.decode()
    assert "全民评选" in html and "会员专属评选" not in html
    assert client.get(reverse("member:poll", args=[members_only.pk])).status_code == 404
    assert client.get(reverse("member:poll", args=[everyone.pk])).status_code == 200


def test_outsider_gets_404_on_every_poll_page(client, district):
    poll = _open_poll(district)
    outsider = make_member(district.union_b1, "乙会员")
    client.force_login(outsider.user)
    option = poll.options.first()
    for url in (
        reverse("member:poll", args=[poll.pk]),
        reverse("member:poll_receipt", args=[poll.pk]),
        reverse("member:poll_share", args=[poll.pk, option.pk]),
        reverse("member:poll_photo", args=[poll.pk, option.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("member:poll", args=[poll.pk]), {"option": option.pk}).status_code == 404
    assert not Ballot.objects.filter(poll=poll).exists()


def test_detail_shows_candidates_with_radios_and_live_results(client, district, member):
    poll = _open_poll(district, options=("张三", LONG))
    client.force_login(member.user)
    html = client.get(reverse("member:poll", args=[poll.pk])).content.decode()
    assert LONG in html and 'type="radio"' in html and 'type="checkbox"' not in html
    assert 'id="total-ballots"' in html  # live results by default
    assert 'id="vote-btn"' in html


def test_multi_choice_poll_uses_checkboxes(client, district, member):
    poll = _open_poll(district, max_choices=2)
    client.force_login(member.user)
    html = client.get(reverse("member:poll", args=[poll.pk])).content.decode()
    assert html.count('type="checkbox" name="option"') == 3 and "最多选 2 项" in html


def test_voting_shows_the_receipt_code(client, district, member):
    poll = _open_poll(district)
    option = poll.options.all()[1]
    client.force_login(member.user)
    resp = client.post(reverse("member:poll", args=[poll.pk]), {"option": option.pk})
    assert resp.status_code == 302 and resp["Location"].endswith(
        reverse("member:poll_receipt", args=[poll.pk]) + "?new=1"
    )
    ballot = Ballot.objects.get(poll=poll, voter=member.user)
    html = client.get(resp["Location"]).content.decode()
    shown = "-".join(ballot.receipt[i : i + 4] for i in range(0, len(ballot.receipt), 4))
    assert f'id="receipt-code">{shown}<' in html
    assert "投票成功" in html and "凭证码有什么用" in html and option.title in html


def test_second_ballot_is_refused_beside_the_choices(client, district, member):
    poll = _open_poll(district)
    a, b = poll.options.all()[:2]
    client.force_login(member.user)
    client.post(reverse("member:poll", args=[poll.pk]), {"option": a.pk})
    resp = client.post(reverse("member:poll", args=[poll.pk]), {"option": b.pk})
    assert resp.status_code == 409
    html = resp.content.decode()
    assert 'id="vote-error"' in html and "您已经投过票了" in html
    assert Ballot.objects.filter(poll=poll, voter=member.user).count() == 1


def test_daily_limit_says_come_back_tomorrow(client, district, member):
    poll = _open_poll(district, ballots_per_day=2)
    a = poll.options.first()
    client.force_login(member.user)
    html = client.get(reverse("member:poll", args=[poll.pk])).content.decode()
    assert re.search(r"今天还可以投 2 票", html)
    client.post(reverse("member:poll", args=[poll.pk]), {"option": a.pk})
    html = client.get(reverse("member:poll_receipt", args=[poll.pk])).content.decode()
    assert "今天还可以投 1 票" in html
    client.post(reverse("member:poll", args=[poll.pk]), {"option": a.pk})
    resp = client.post(reverse("member:poll", args=[poll.pk]), {"option": a.pk})
    assert resp.status_code == 409
    assert "明天再来" in resp.content.decode()


def test_choosing_nothing_or_too_many_is_invalid_and_keeps_the_choice(client, district, member):
    poll = _open_poll(district, max_choices=2)
    ids = [o.pk for o in poll.options.all()]
    client.force_login(member.user)
    resp = client.post(reverse("member:poll", args=[poll.pk]), {"option": ids})
    assert resp.status_code == 422
    html = resp.content.decode()
    assert 'id="vote-error"' in html
    assert html.count("checked") >= 3  # what was ticked stays ticked
    resp = client.post(reverse("member:poll", args=[poll.pk]), {"option": ["abc"]})
    assert resp.status_code == 422
    resp = client.post(reverse("member:poll", args=[poll.pk]), {})
    assert resp.status_code == 422
    assert not Ballot.objects.filter(poll=poll).exists()


def test_voting_after_close_is_refused(client, district, member):
    poll = _open_poll(district)
    option = poll.options.first()
    client.force_login(member.user)
    page = client.get(reverse("member:poll", args=[poll.pk]))
    assert page.status_code == 200
    _close_by_time(poll)
    resp = client.post(reverse("member:poll", args=[poll.pk]), {"option": option.pk})
    assert resp.status_code == 409 and "投票已经结束" in resp.content.decode()


def test_new_account_is_not_eligible_when_the_poll_blocks_them(client, district):
    poll = _open_poll(district, block_new_accounts=True, eligibility="everyone")
    late = make_user("新注册")  # created after the poll opened
    client.force_login(late)
    resp = client.post(reverse("member:poll", args=[poll.pk]), {"option": poll.options.first().pk})
    assert resp.status_code == 403
    assert "不在本次投票的参与范围内" in resp.content.decode()


def test_results_after_close_are_hidden_while_open(client, district, member):
    poll = _open_poll(district, results="after_close")
    client.force_login(member.user)
    html = client.get(reverse("member:poll", args=[poll.pk])).content.decode()
    assert 'id="results-hidden"' in html and 'id="total-ballots"' not in html


def test_share_page_has_the_candidate_and_a_qr_to_the_poll(client, district, member):
    poll = _open_poll(district, options=(LONG, "李四"))
    option = poll.options.first()
    client.force_login(member.user)
    html = client.get(reverse("member:poll_share", args=[poll.pk, option.pk])).content.decode()
    assert LONG in html and "<svg" in html
    assert reverse("member:poll", args=[poll.pk]) in html


def test_receipt_page_without_a_ballot_says_so(client, district, member):
    poll = _open_poll(district)
    client.force_login(member.user)
    html = client.get(reverse("member:poll_receipt", args=[poll.pk])).content.decode()
    assert 'id="no-receipt"' in html


def test_vote_form_is_csrf_protected(district, member):
    poll = _open_poll(district)
    c = Client(enforce_csrf_checks=True)
    c.force_login(member.user)
    resp = c.post(reverse("member:poll", args=[poll.pk]), {"option": poll.options.first().pk})
    assert resp.status_code == 403
    assert not Ballot.objects.filter(poll=poll).exists()


def test_pages_need_sign_in(client, district):
    poll = _open_poll(district)
    resp = client.get(reverse("member:poll", args=[poll.pk]))
    assert resp.status_code == 302 and "/m/login/" in resp["Location"]


def test_pages_speak_english(client, district, member):
    poll = _open_poll(district)
    client.force_login(member.user)
    client.cookies["django_language"] = "en"
    html = client.get(reverse("member:poll", args=[poll.pk])).content.decode()
    assert 'lang="en"' in html


def test_closed_contest_shows_its_awards(client, district, member):
    from votes.services import contest

    poll = _open_poll(district, kind="contest", vote_weight=100, prize_tiers=[{"name": "一等奖", "count": 1}])
    polls.cast_ballot(member.user, poll.pk, [poll.options.all()[1].pk])
    polls.close_poll(district.admin_a, poll)
    poll.refresh_from_db()
    contest.publish_awards(district.admin_a, poll)
    client.force_login(member.user)
    html = client.get(reverse("member:poll", args=[poll.pk])).content.decode()
    assert 'id="awards"' in html and "一等奖" in html and "李四" in html
