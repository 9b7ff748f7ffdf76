"""Public poll pages: what shows when, the receipts list and its search, the recount, the record."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_member
from votes.models import Ballot, Poll
from votes.services import polls

pytestmark = pytest.mark.django_db


def _poll(district, *, results="live", options=("张三", "李四", "王五"), **kw) -> Poll:
    now = timezone.now()
    poll = polls.create_poll(
        district.admin_a,
        district.street_a,
        title=kw.pop("title", "最美职工评选"),
        options=[{"title": t} for t in options],
        max_choices=1,
        opens_at=now + dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(hours=48),
        results=results,
        **kw,
    )
    Poll.objects.filter(pk=poll.pk).update(opens_at=now - dt.timedelta(hours=1))
    poll.refresh_from_db()
    return poll


def _vote(district, poll, picks: list[int]) -> list[Ballot]:
    options = list(poll.options.all())
    out = []
    for n, i in enumerate(picks):
        m = make_member(district.union_a1, f"投票人{n}")
        out.append(polls.cast_ballot(m.user, poll.pk, [options[i].pk]))
    return out


def _close(district, poll) -> Poll:
    polls.close_poll(district.admin_a, poll)
    poll.refresh_from_db()
    return poll


def test_open_poll_with_results_after_close_is_not_public(client, district):
    poll = _poll(district, results="after_close")
    for name in ("portal:poll", "portal:poll_receipts", "portal:poll_recount", "portal:poll_record"):
        assert client.get(reverse(name, args=[poll.pk])).status_code == 404, name
    assert f"/polls/{poll.pk}/" not in client.get(reverse("portal:polls")).content.decode()


def test_live_poll_shows_counts_to_eligible_members_only_and_no_receipts_before_close(client, district):
    poll = _poll(district)
    _vote(district, poll, [0, 0, 1])
    # Before close, results are the voters' (polls.can_see_results): not the anonymous public's.
    assert client.get(reverse("portal:poll", args=[poll.pk])).status_code == 404
    client.force_login(make_member(district.union_a2, "本街道会员").user)
    html = client.get(reverse("portal:poll", args=[poll.pk])).content.decode()
    assert "实时票数" in html and 'data-votes="2"' in html and 'data-votes="1"' in html
    assert 'id="tab-receipts"' not in html
    assert client.get(reverse("portal:poll_receipts", args=[poll.pk])).status_code == 404


def test_index_lists_public_polls_and_says_when_there_are_none(client, district):
    html = client.get(reverse("portal:polls")).content.decode()
    assert 'id="no-polls"' in html
    poll = _close(district, _poll(district, title="已结束的评选"))
    html = client.get(reverse("portal:polls")).content.decode()
    assert f'id="poll-{poll.pk}"' in html and "已结束的评选" in html


def test_closed_poll_shows_final_results_and_chain_head(client, district):
    poll = _poll(district, results="after_close")
    _vote(district, poll, [1, 1, 2])
    poll = _close(district, poll)
    html = client.get(reverse("portal:poll", args=[poll.pk])).content.decode()
    assert "最终结果" in html and poll.chain_head and poll.chain_head in html
    assert html.index("李四") < html.index("王五")  # most votes first


def test_receipts_list_marks_voided_ballots_and_finds_a_code(client, district):
    poll = _poll(district)
    ballots = _vote(district, poll, [0, 1, 2])
    from votes.services import monitor

    monitor.void_ballots(district.admin_a, poll, reason="同一设备刷票", ballot_ids=[ballots[2].pk])
    poll = _close(district, poll)
    html = client.get(reverse("portal:poll_receipts", args=[poll.pk])).content.decode()
    assert "共 3 张（含作废）" in html and html.count("已作废") >= 1
    code = ballots[1].receipt
    shown = "-".join(code[i : i + 4] for i in range(0, len(code), 4))
    html = client.get(reverse("portal:poll_receipts", args=[poll.pk]), {"q": shown.lower()}).content.decode()
    assert 'id="receipt-found"' in html and "已计入" in html and "李四" in html
    html = client.get(reverse("portal:poll_receipts", args=[poll.pk]), {"q": "NOPE-NOPE"}).content.decode()
    assert 'id="receipt-missing"' in html


def test_receipts_list_paginates(client, district):
    poll = _poll(district)
    _vote(district, poll, [0] * 3)
    poll = _close(district, poll)
    from ends.portal import votes_views

    old = votes_views.RECEIPTS_PER_PAGE
    votes_views.RECEIPTS_PER_PAGE = 2
    try:
        html = client.get(reverse("portal:poll_receipts", args=[poll.pk])).content.decode()
        assert 'id="receipts-next"' in html and "第 1/2 页" in html
        html = client.get(reverse("portal:poll_receipts", args=[poll.pk]), {"page": "2"}).content.decode()
        assert 'id="receipts-prev"' in html and "第 2/2 页" in html
        assert client.get(reverse("portal:poll_receipts", args=[poll.pk]), {"page": "x"}).status_code == 200
    finally:
        votes_views.RECEIPTS_PER_PAGE = old


def test_recount_matches_and_then_detects_a_removed_ballot(client, district):
    poll = _poll(district)
    ballots = _vote(district, poll, [0, 1, 1])
    poll = _close(district, poll)
    html = client.get(reverse("portal:poll_recount", args=[poll.pk])).content.decode()
    assert "与公布结果一致" in html and poll.chain_head in html
    # Someone alters a sealed ballot behind the system's back.
    Ballot.objects.filter(pk=ballots[0].pk).update(choices=str(poll.options.all()[1].pk))
    from django.core.cache import cache

    cache.clear()
    html = client.get(reverse("portal:poll_recount", args=[poll.pk])).content.decode()
    assert "与公布结果不一致" in html and "pv-mismatch" in html


def test_record_downloads_as_json(client, district):
    poll = _poll(district)
    ballots = _vote(district, poll, [0, 2])
    poll = _close(district, poll)
    resp = client.get(reverse("portal:poll_record", args=[poll.pk]))
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/json")
    assert "attachment" in resp["Content-Disposition"]
    record = json.loads(resp.content)
    text = json.dumps(record)
    assert all(b.receipt in text for b in ballots)
    assert poll.chain_head in text


def test_unknown_poll_is_404(client, db):
    assert client.get(reverse("portal:poll", args=[999999])).status_code == 404
