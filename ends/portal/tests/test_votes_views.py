"""Public poll pages: what shows when, the receipts list and its search, the recount, the record."""

from __future__ import annotations

import datetime as dt
import json
import re

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


def _receipt_codes(html: str) -> list[str]:
    return re.findall(r'<td class="mono">([A-Z0-9-]{14})</td>', html)


def test_receipts_list_pages_by_keyset_forward_and_back(client, district, monkeypatch):
    from ends.portal import votes_views

    poll = _poll(district)
    ballots = _vote(district, poll, [0, 1, 2, 0, 1])
    poll = _close(district, poll)
    shown = ["-".join(b.receipt[i : i + 4] for i in range(0, 12, 4)) for b in ballots]
    monkeypatch.setattr(votes_views, "RECEIPTS_PER_PAGE", 2)
    url = reverse("portal:poll_receipts", args=[poll.pk])
    html = client.get(url).content.decode()
    assert _receipt_codes(html) == shown[:2] and 'id="receipts-prev"' not in html
    pages = [_receipt_codes(html)]
    while 'id="receipts-next"' in html:
        after = re.search(r'href="\?after=(\d+)" id="receipts-next"', html).group(1)
        html = client.get(url, {"after": after}).content.decode()
        pages.append(_receipt_codes(html))
    assert pages == [shown[:2], shown[2:4], shown[4:]] and "共 5 张（含作废）" in html
    # Back from the last page, and the last page straight away.
    before = re.search(r'href="\?before=(\d+)" id="receipts-prev"', html).group(1)
    assert _receipt_codes(client.get(url, {"before": before}).content.decode()) == shown[2:4]
    last = client.get(url, {"last": "1"}).content.decode()
    assert _receipt_codes(last) == shown[3:] and 'id="receipts-next"' not in last and 'id="receipts-prev"' in last
    for junk in ({"after": "x"}, {"before": "-1"}, {"page": "x"}, {"after": "9" * 30}):
        assert _receipt_codes(client.get(url, junk).content.decode()) == shown[:2], junk


def test_the_public_pages_cost_the_same_however_many_ballots(client, district, django_assert_max_num_queries):
    """A 1.6M-ballot poll's pages are anyone's to reload: queries per page do not grow with the
    ballots, a receipts page holds at most RECEIPTS_PER_PAGE, and nothing counts the ballots."""
    from ends.portal import votes_views
    from votes.services import tally

    _vote(district, small := _poll(district, title="小投票"), [0, 1, 2])
    small = _close(district, small)
    _vote(district, big := _poll(district, title="大投票"), [0, 1, 2] * 40)
    big = _close(district, big)
    assert big.chain_length == 120

    def counted(poll) -> dict[str, int]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        out = {}
        for name, args in (("poll", {}), ("poll_receipts", {}), ("poll_receipts", {"last": "1"}), ("poll_recount", {})):
            with CaptureQueriesContext(connection) as ctx:
                resp = client.get(reverse(f"portal:{name}", args=[poll.pk]), args)
            assert resp.status_code == 200
            out[f"{name}{args}"] = len(ctx.captured_queries)
        return out

    def no_recount(*a, **kw):
        raise AssertionError("a page read every ballot")

    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(tally, "compute", no_recount)
        assert counted(big) == counted(small)
        with django_assert_max_num_queries(8):
            html = client.get(reverse("portal:poll_receipts", args=[big.pk]), {"last": "1"}).content.decode()
    assert len(_receipt_codes(html)) == votes_views.RECEIPTS_PER_PAGE == 100
    html = client.get(reverse("portal:poll_receipts", args=[big.pk])).content.decode()
    assert len(_receipt_codes(html)) == 100 and "共 120 张（含作废）" in html


def test_recount_page_shows_the_stored_recount_and_a_later_one_catches_tampering(client, district):
    from votes.services import tally

    poll = _poll(district)
    ballots = _vote(district, poll, [0, 1, 1])
    poll = _close(district, poll)
    html = client.get(reverse("portal:poll_recount", args=[poll.pk])).content.decode()
    assert "与公布结果一致" in html and poll.chain_head in html and 'id="recounted-at"' in html
    # Someone alters a sealed ballot behind the system's back. The page keeps the stored recount
    # (no visitor makes it read every ballot); the next daily recount finds the change.
    Ballot.objects.filter(pk=ballots[0].pk).update(choices=str(poll.options.all()[1].pk))
    assert "与公布结果一致" in client.get(reverse("portal:poll_recount", args=[poll.pk])).content.decode()
    assert tally.refresh_stale_recounts(timezone.now() + tally.RECOUNT_EVERY + dt.timedelta(minutes=1)) == [poll.pk]
    html = client.get(reverse("portal:poll_recount", args=[poll.pk])).content.decode()
    assert "与公布结果不一致" in html and "pv-mismatch" in html


def test_a_poll_sealed_before_recounts_were_stored_is_counted_once_on_first_read(client, district):
    poll = _close(district, _poll(district))
    _vote_after = Poll.objects.filter(pk=poll.pk)
    _vote_after.update(last_recount=None, recounted_at=None)
    html = client.get(reverse("portal:poll_recount", args=[poll.pk])).content.decode()
    assert "与公布结果一致" in html
    assert Poll.objects.get(pk=poll.pk).recounted_at is not None
    # While another request holds the first count, a reader is told it is under way.
    from django.core.cache import cache

    _vote_after.update(last_recount=None, recounted_at=None)
    cache.add(f"votes:recounting:{poll.pk}", 1, 60)
    try:
        html = client.get(reverse("portal:poll_recount", args=[poll.pk])).content.decode()
    finally:
        cache.delete(f"votes:recounting:{poll.pk}")
    assert 'id="recount-pending"' in html


def test_record_is_streamed_and_equals_the_full_record(client, district, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from votes.services import tally

    poll = _poll(district)
    ballots = _vote(district, poll, [0, 2, 1, 1, 0])
    poll = _close(district, poll)
    monkeypatch.setattr(tally, "CHUNK", 2)  # read 2 ballots at a time: never the whole poll in memory
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(reverse("portal:poll_record", args=[poll.pk]))
        assert resp.streaming and resp.status_code == 200
        body = b"".join(resp.streaming_content)
    assert resp["Content-Type"].startswith("application/json") and "attachment" in resp["Content-Disposition"]
    reads = [q["sql"] for q in ctx.captured_queries if "votes_ballot" in q["sql"] and "LIMIT" in q["sql"]]
    assert len(reads) >= 3  # 5 ballots, 2 a read
    record = json.loads(body)
    assert record == json.loads(json.dumps(polls.public_record(Poll.objects.get(pk=poll.pk))))
    assert [r[1] for r in record["ballots"]] == [b.receipt for b in ballots] and poll.chain_head in body.decode()
    ok, findings = tally.verify_record(record)
    assert ok, findings


def test_unknown_poll_is_404(client, db):
    assert client.get(reverse("portal:poll", args=[999999])).status_code == 404
