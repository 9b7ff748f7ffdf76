"""The election pages of the console, the member end and the portal (Django test client)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from conftest import make_member
from elections.models import Election, ElectionBallot, ElectionVoter
from elections.services import elections as svc
from elections.services import record as records

from .builders import cast_marks, election, ids, roll, vote

pytestmark = pytest.mark.django_db


def _local(delta: dt.timedelta) -> str:
    return timezone.localtime(timezone.now() + delta).strftime("%Y-%m-%dT%H:%M")


# --- console ------------------------------------------------------------------------------------


def test_console_lists_the_subtrees_elections(district, client):
    roll(district.union_a1, 2)
    roll(district.union_b1, 2, "乙会员")
    mine = election(district.admin_a1, district.union_a1, title="甲一公司工会换届选举")
    election(district.admin_b, district.union_b1, title="乙一公司工会换届选举")
    client.force_login(district.admin_a)
    html = client.get("/console/elections/").content.decode()
    assert "甲一公司工会换届选举" in html and "乙一公司工会换届选举" not in html
    assert f"/console/elections/{mine.pk}/" in html
    assert 'id="nav-elections"' in html
    client.force_login(district.admin_b)
    assert client.get(f"/console/elections/{mine.pk}/").status_code == 404


def test_console_creates_an_election_and_keeps_what_was_typed_on_errors(district, client):
    members = roll(district.union_a1, 4)
    client.force_login(district.admin_a1)
    url = f"/console/elections/new/?org={district.union_a1.pk}"
    assert "全体认证会员" in client.get(url).content.decode()
    bad = {
        "title": "第三届委员会选举",
        "seats": "3",
        "candidates": "张三\n李四\n",
        "roll_kind": "delegates",
        "roll_ids": f"{members[0].user_id}, 987654",
        "majority_of": "eligible",
        "quorum": "two_thirds",
        "closes_at": _local(dt.timedelta(days=1)),
    }
    resp = client.post(url, bad)
    assert resp.status_code == 422
    html = resp.content.decode()
    assert "候选人人数（2）不能少于应选名额（3）" in html
    assert "第三届委员会选举" in html and "987654" in html  # kept
    assert not Election.objects.exists()

    bad.update(seats="2", candidates="张三\n李四\n王五")
    resp = client.post(url, bad)
    assert resp.status_code == 422 and "987654" in resp.content.decode()  # the bad id named beside the roll
    assert not Election.objects.exists()

    ok = dict(bad, roll_ids=f"{members[0].user_id}\n{members[1].user_id}，{members[2].user_id}")
    resp = client.post(url, ok)
    assert resp.status_code == 302
    e = Election.objects.get()
    assert resp["Location"] == f"/console/elections/{e.pk}/"
    assert e.eligible == 3 and e.roll_kind == "delegates"
    assert [c.name for c in svc.candidates_of(e)] == ["张三", "李四", "王五"]


def test_console_member_search_for_a_delegate_roll(district, client):
    m = make_member(district.union_a1, "欧阳代表")
    make_member(district.union_b1, "欧阳外人")
    client.force_login(district.admin_a1)
    html = client.get(f"/console/elections/members/?org={district.union_a1.pk}&q=欧阳").content.decode()
    assert "欧阳代表" in html and f'data-add-id="{m.user_id}"' in html
    assert "欧阳外人" not in html


def test_console_detail_shows_turnout_only_until_close_then_results(district, client):
    voters = roll(district.union_a1, 3)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    for m in voters:
        vote(m, e, ["for", "against"])
    client.force_login(district.admin_a1)
    html = client.get(f"/console/elections/{e.pk}/").content.decode()
    assert 'id="turnout-voted">3<' in html
    assert "result-table" not in html and 'id="close-election"' in html
    turnout = client.get(f"/console/elections/{e.pk}/turnout/").content.decode()
    assert 'id="turnout-voted">3<' in turnout

    client.force_login(district.staff_a)  # staff sees it but cannot close
    html = client.get(f"/console/elections/{e.pk}/").content.decode()
    assert 'id="close-election"' not in html
    assert client.post(f"/console/elections/{e.pk}/close/").status_code == 403

    client.force_login(district.admin_a1)
    resp = client.post(f"/console/elections/{e.pk}/close/")
    assert resp.status_code == 302
    html = client.get(resp["Location"]).content.decode()
    assert 'id="elected-names">张三<' in html
    assert "el-row-elected" in html and 'id="report-link"' in html and f"/elections/{e.pk}/recount/" in html
    again = client.post(f"/console/elections/{e.pk}/close/")
    assert again.status_code == 409 and "该选举已结束" in again.content.decode()


def test_console_offers_and_starts_a_runoff(district, client):
    voters = roll(district.union_a1, 4)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四", "王五"))
    for i, m in enumerate(voters):
        vote(m, e, ["for", "against", "against"] if i < 2 else ["against", "for", "against"])
    svc.close_election(district.admin_a1, e.pk)  # 张三 2, 李四 2 of 4: nobody passes → further round
    client.force_login(district.admin_a1)
    html = client.get(f"/console/elections/{e.pk}/").content.decode()
    assert 'id="next-round-form"' in html and 'value="further"' in html
    resp = client.post(f"/console/elections/{e.pk}/next-round/", {"kind": "further", "closes_at": "not a time"})
    assert resp.status_code == 422 and "时间格式无效" in resp.content.decode()
    a, b, c = ids(e)
    resp = client.post(
        f"/console/elections/{e.pk}/next-round/",
        {"kind": "further", "closes_at": _local(dt.timedelta(days=1)), "candidate_ids": [str(a), str(b)]},
    )
    assert resp.status_code == 302
    child = Election.objects.get(parent=e)
    assert [x.name for x in svc.candidates_of(child)] == ["张三", "李四"]
    html = client.get(f"/console/elections/{e.pk}/").content.decode()
    assert 'id="next-round-link"' in html and 'id="next-round-form"' not in html


# --- member end ---------------------------------------------------------------------------------


def test_member_votes_sees_the_receipt_and_later_the_result(district, client):
    voters = roll(district.union_a1, 3)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    a, b = ids(e)
    client.force_login(voters[0].user)
    assert 'id="home-elections"' in client.get("/m/").content.decode()
    listing = client.get("/m/elections/").content.decode()
    assert f'id="election-{e.pk}"' in listing and "待投票" in listing
    html = client.get(f"/m/elections/{e.pk}/").content.decode()
    assert 'id="ballot-form"' in html and f'name="c{a}"' in html

    resp = client.post(f"/m/elections/{e.pk}/", {f"c{a}": "for", f"c{b}": "for"})
    assert resp.status_code == 422
    html = resp.content.decode()
    assert "赞成票最多投 1 人" in html
    assert f'name="c{b}" value="for" checked' in html  # what was marked is kept
    assert not cast_marks()

    resp = client.post(f"/m/elections/{e.pk}/", {f"c{a}": "for", f"c{b}": "against"})
    assert resp.status_code == 302 and resp["Location"].endswith("?voted=1")
    html = client.get(resp["Location"]).content.decode()
    receipt = ElectionVoter.objects.get(election=e, user=voters[0].user).receipt
    assert f'id="receipt-code">{receipt}<' in html and "投票成功" in html
    assert 'id="ballot-form"' not in html
    again = client.post(f"/m/elections/{e.pk}/", {f"c{a}": "for"})
    assert again.status_code == 409 and "您已投过票" in again.content.decode()
    assert len(cast_marks()) == 1

    for m in voters[1:]:
        vote(m, e, ["for", "against"])
    svc.close_election(district.admin_a1, e.pk)
    html = client.get(f"/m/elections/{e.pk}/").content.decode()
    assert 'id="results"' in html and "当选" in html and receipt in html


def test_member_pages_for_people_off_the_roll_and_out_of_scope(district, client):
    roll(district.union_a1, 2)
    e = election(district.admin_a1, district.union_a1)
    late = make_member(district.union_a1, "后入会")
    client.force_login(late.user)
    html = client.get(f"/m/elections/{e.pk}/").content.decode()
    assert 'id="not-on-roll"' in html
    resp = client.post(f"/m/elections/{e.pk}/", {f"c{ids(e)[0]}": "for"})
    assert resp.status_code == 403 and not cast_marks()
    client.force_login(make_member(district.union_b1, "外单位").user)
    assert client.get(f"/m/elections/{e.pk}/").status_code == 404
    assert "您目前没有需要参加的选举" in client.get("/m/elections/").content.decode()


def test_member_sees_a_not_yet_open_election(district, client):
    voters = roll(district.union_a1, 1)
    now = timezone.now()
    e = election(
        district.admin_a1,
        district.union_a1,
        opens_at=now + dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(hours=3),
    )
    client.force_login(voters[0].user)
    assert 'id="not-started"' in client.get(f"/m/elections/{e.pk}/").content.decode()
    resp = client.post(f"/m/elections/{e.pk}/", {f"c{ids(e)[0]}": "for"})
    assert resp.status_code == 409 and "投票尚未开始" in resp.content.decode()


# --- portal -------------------------------------------------------------------------------------


def test_portal_record_before_and_after_close(district, client):
    voters = roll(district.union_a1, 6)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    receipts = [vote(m, e, ["for", "against"]) for m in voters[:5]]
    # Open: nothing at all, as for a missing election (no title, candidates or turnout).
    for path in ("", "recount/", "record.json"):
        assert client.get(f"/elections/{e.pk}/{path}").status_code == 404

    svc.close_election(district.admin_a1, e.pk)
    e.refresh_from_db()
    html = client.get(f"/elections/{e.pk}/").content.decode()
    for r in receipts:
        assert r in html
    for b in ElectionBallot.objects.all():
        assert b.id in html
    assert e.chain_head in html
    for m in voters:
        assert m.name not in html
    html = client.get(f"/elections/{e.pk}/?receipt={receipts[0].lower()}").content.decode()
    assert 'id="receipt-found"' in html
    assert 'id="receipt-missing"' in client.get(f"/elections/{e.pk}/?receipt=AAAA-BBBB-CCCC").content.decode()

    recount = client.get(f"/elections/{e.pk}/recount/").content.decode()
    assert "与公布的结果一致" in recount and e.chain_head in recount
    data = json.loads(client.get(f"/elections/{e.pk}/record.json").content)
    assert sorted(data["receipts"]) == sorted(receipts) and data["chain_head"] == e.chain_head
    assert client.get("/elections/999999/").status_code == 404


def test_portal_recount_page_reports_a_tampered_ballot(district, client):
    voters = roll(district.union_a1, 3)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    for m in voters:
        vote(m, e, ["for", "against"])
    svc.close_election(district.admin_a1, e.pk)
    b = ElectionBallot.objects.first()
    ElectionBallot.objects.filter(pk=b.pk).update(marks={k: "abstain" for k in b.marks})
    html = client.get(f"/elections/{e.pk}/recount/").content.decode()
    assert "与公布的结果不一致" in html and 'id="findings"' in html


def test_the_public_api_record_and_recount(district, api):
    voters = roll(district.union_a1, 6)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    for m in voters[:5]:
        vote(m, e, ["for"])
    assert api(None).get(f"/api/v1/elections/{e.pk}/record").status_code == 404  # open: as a missing election
    svc.close_election(district.admin_a1, e.pk)
    rec = api(None).get(f"/api/v1/elections/{e.pk}/record").json()
    assert len(rec["ballots"]) == 5 and len(rec["receipts"]) == 5 and rec["withheld"] is False
    assert api(None).get(f"/api/v1/elections/{e.pk}/recount").json()["matches"] is True


def test_a_two_voter_election_publishes_the_totals_only(district, api, client):
    voters = roll(district.union_a1, 2)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    receipts = [vote(voters[0], e, ["for", "against"]), vote(voters[1], e, ["against", "abstain"])]
    svc.close_election(district.admin_a1, e.pk)
    e.refresh_from_db()
    ballot_ids = list(ElectionBallot.objects.filter(election=e).values_list("id", flat=True))
    assert len(ballot_ids) == 2

    rec = api(None).get(f"/api/v1/elections/{e.pk}/record").json()
    assert rec["withheld"] is True and rec["ballots"] == [] and rec["receipts"] == []
    assert [(c["for"], c["against"], c["abstain"]) for c in rec["result"]["candidates"]] == [(1, 1, 0), (0, 1, 1)]
    download = client.get(f"/elections/{e.pk}/record.json").content.decode()
    html = client.get(f"/elections/{e.pk}/").content.decode()
    recount = client.get(f"/elections/{e.pk}/recount/").content.decode()
    assert 'id="withheld"' in html and 'id="ballot-table"' not in html and 'id="receipts"' not in html
    assert 'id="withheld"' in recount and "与公布的结果一致" in recount
    for text in (download, html, recount, json.dumps(api(None).get(f"/api/v1/elections/{e.pk}/recount").json())):
        for secret in receipts + ballot_ids:
            assert secret not in text
    # Offline, such a record cannot be recounted, and the command says so instead of passing it.
    verdict = records.verify_record(json.loads(download))
    assert not verdict.matches and "不能离线重新计票" in verdict.findings[0]


def test_a_sealed_record_is_served_without_recomputation(district, client, api, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    voters = roll(district.union_a1, 6)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    for m in voters:
        vote(m, e, ["for", "against"])
    svc.close_election(district.admin_a1, e.pk)
    e.refresh_from_db()
    urls = [
        f"/elections/{e.pk}/",
        f"/elections/{e.pk}/record.json",
        f"/elections/{e.pk}/recount/",
        f"/api/v1/elections/{e.pk}/record",
        f"/api/v1/elections/{e.pk}/recount",
    ]
    first = [client.get(url).content for url in urls]
    for url, body in zip(urls, first, strict=True):
        # The election and its candidates at most; never the ballots or the roll again.
        with django_assert_max_num_queries(2), CaptureQueriesContext(connection) as seen:
            again = client.get(url)
        assert again.status_code == 200, url
        if "/api/" in url or url.endswith(".json"):
            assert again.content == body, url  # the very same answer, recount time included
        else:
            assert e.chain_head in again.content.decode()  # (pages differ by their CSRF token)
        assert not [
            q["sql"] for q in seen.captured_queries if "electionballot" in q["sql"] or "electionvoter" in q["sql"]
        ]
