"""The elections API (API.md "Votes"): create, ballots, close, results — and every bad input."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone

from conftest import make_member
from core.models import AuditLog
from elections.models import Candidate, Election, ElectionBallot, ElectionVoter, PooledBallot

from .builders import cast_marks, election, ids, roll

pytestmark = pytest.mark.django_db


def _later(**kw) -> str:
    return (timezone.now() + dt.timedelta(**kw)).isoformat()


def _body(org, **kw) -> dict:
    body = {
        "org_id": org.pk,
        "title": "甲一公司工会第三届委员会选举",
        "seats": 2,
        "candidates": [{"name": "张三"}, {"name": "李四"}, {"name": "王五"}],
        "voters": "members",
        "closes_at": _later(days=1),
    }
    body.update(kw)
    return body


def _code(resp) -> str | None:
    return resp.json().get("error", {}).get("code")


def _expire(e) -> None:
    """Move the election's window into the past (as if its closing time had come)."""
    now = timezone.now()
    Election.objects.filter(pk=e.pk).update(
        opens_at=now - dt.timedelta(hours=2), closes_at=now - dt.timedelta(seconds=1)
    )


def _nothing_recorded() -> tuple[int, int, int]:
    return (
        len(cast_marks()),
        ElectionVoter.objects.filter(voted_at__isnull=False).count(),
        ElectionVoter.objects.filter(receipt__isnull=False).count(),
    )


# --- creating -----------------------------------------------------------------------------------


def test_admin_creates_an_election_with_the_subtree_members_as_roll(district, api):
    voters = roll(district.union_a1, 3) + roll(district.union_a2, 2)
    make_member(district.union_a1, "未认证", certified=False)
    make_member(district.union_b1, "别处会员")
    resp = api(district.admin_a).post("/api/v1/elections", _body(district.street_a))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    # The admin cadres of the district fixture are certified members nowhere: the roll is the 5 voters.
    assert body["eligible"] == 5
    assert [c["name"] for c in body["candidates"]] == ["张三", "李四", "王五"]
    e = Election.objects.get(pk=body["id"])
    assert set(ElectionVoter.objects.filter(election=e).values_list("user_id", flat=True)) == {
        m.user_id for m in voters
    }
    assert e.majority_of == "eligible" and e.quorum == "two_thirds"
    assert AuditLog.objects.filter(action="election.create", target_id=str(e.pk)).exists()


def test_a_delegate_roll_takes_member_ids(district, api):
    members = roll(district.union_a1, 4)
    delegates = [m.user_id for m in members[:3]]
    resp = api(district.admin_a1).post("/api/v1/elections", _body(district.union_a1, voters=delegates))
    assert resp.status_code == 201, resp.content
    assert resp.json()["eligible"] == 3
    e = Election.objects.get(pk=resp.json()["id"])
    assert e.roll_kind == "delegates"
    assert sorted(ElectionVoter.objects.filter(election=e).values_list("user_id", flat=True)) == sorted(delegates)


def test_a_roll_with_people_who_are_not_certified_members_of_the_subtree_names_them(district, api):
    ok = roll(district.union_a1, 2)
    outsider = make_member(district.union_b1, "外单位")
    uncertified = make_member(district.union_a1, "未认证", certified=False)
    bad = [outsider.user_id, uncertified.user_id, 999999]
    resp = api(district.admin_a1).post("/api/v1/elections", _body(district.union_a1, voters=[ok[0].user_id, *bad]))
    assert resp.status_code == 422
    assert _code(resp) == "invalid_roll"
    message = resp.json()["error"]["fields"]["voters"]
    for i in bad:
        assert str(i) in message
    assert str(ok[0].user_id) not in message
    assert not Election.objects.exists()


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"seats": 0}, "seats", "invalid_value"),
        ({"seats": 4}, "candidates", "invalid_candidates"),  # fewer candidates than seats
        (
            {"candidates": [{"name": "张三"}, {"name": " "}, {"name": "王五"}]},
            "candidates.1.name",
            "invalid_candidates",
        ),
        (
            {"candidates": [{"name": "张三"}, {"name": "张三"}, {"name": "王五"}]},
            "candidates.1.name",
            "invalid_candidates",
        ),
        ({"title": "  "}, "title", "invalid_title"),
        ({"majority_of": "present"}, "majority_of", "invalid_value"),
        ({"quorum": "most"}, "quorum", "invalid_value"),
        ({"voters": "everyone"}, "voters", "invalid_roll"),
        ({"voters": []}, "voters", "invalid_roll"),
        ({"closes_at": "2020-01-01T00:00:00+08:00"}, "closes_at", "invalid_window"),
        ({"opens_at": _later(days=3), "closes_at": _later(days=2)}, "closes_at", "invalid_window"),
    ],
)
def test_bad_elections_are_refused_naming_the_field(district, api, change, field, code):
    roll(district.union_a1, 2)
    resp = api(district.admin_a1).post("/api/v1/elections", _body(district.union_a1, **change))
    assert resp.status_code == 422, resp.content
    assert _code(resp) == code
    assert field in resp.json()["error"]["fields"]
    assert not Election.objects.exists() and not Candidate.objects.exists()


def test_missing_and_wrong_typed_fields_are_422_and_non_json_is_400(district, api):
    client = api(district.admin_a1)
    resp = client.post("/api/v1/elections", {"org_id": district.union_a1.pk, "title": "x"})
    assert resp.status_code == 422
    assert {"seats", "candidates", "closes_at"} <= set(resp.json()["error"]["fields"])
    resp = client.post("/api/v1/elections", _body(district.union_a1, seats="two"))
    assert resp.status_code == 422 and "seats" in resp.json()["error"]["fields"]
    resp = client.post("/api/v1/elections", "{not json")
    assert resp.status_code == 400


def test_an_election_with_an_empty_roll_is_refused(district, api):
    resp = api(district.admin_a1).post("/api/v1/elections", _body(district.union_a1))
    assert resp.status_code == 422 and _code(resp) == "empty_roll"
    assert not Election.objects.exists()


def test_only_admin_cadres_over_the_org_create_elections(district, api):
    roll(district.union_a1, 2)
    assert api(district.staff_a).post("/api/v1/elections", _body(district.union_a1)).status_code == 403
    assert api(district.admin_b).post("/api/v1/elections", _body(district.union_a1)).status_code == 404
    member = make_member(district.union_a1, "普通会员")
    assert api(member.user).post("/api/v1/elections", _body(district.union_a1)).status_code == 404
    assert api(None).post("/api/v1/elections", _body(district.union_a1)).status_code == 401
    assert not Election.objects.exists()


# --- voting -------------------------------------------------------------------------------------


@pytest.fixture
def setup(district):
    voters = roll(district.union_a1, 6)
    e = election(district.admin_a1, district.union_a1, seats=2)
    return district, voters, e


def _ballot(api, user, e, marks, **kw):
    return api(user).post(f"/api/v1/elections/{e.pk}/ballots", {"marks": marks}, **kw)


def test_a_voter_casts_a_ballot_and_gets_a_receipt_that_is_not_linked_to_the_ballot(setup, api):
    district, voters, e = setup
    a, b, c = ids(e)
    resp = _ballot(api, voters[0].user, e, {str(a): "for", str(b): "against"})
    assert resp.status_code == 201, resp.content
    receipt = resp.json()["receipt"]
    assert len(receipt) == 14 and receipt.count("-") == 2
    ballot = PooledBallot.objects.get()  # counted once flushed; the flush draws its public id
    assert ballot.marks == {str(a): "for", str(b): "against", str(c): "abstain"}
    assert {f.name for f in ElectionBallot._meta.get_fields()} == {"id", "election", "marks"}
    assert {f.name for f in PooledBallot._meta.get_fields()} == {"id", "election", "marks"}
    assert len(ballot.id) == 32 and receipt not in ballot.id
    row = ElectionVoter.objects.get(election=e, user=voters[0].user)
    assert row.voted_at is not None and row.receipt == receipt
    # The ballot's public id is never shown to the voter.
    detail = api(voters[0].user).get(f"/api/v1/elections/{e.pk}").json()
    assert detail["me"] == {"on_roll": True, "voted": True, "receipt": receipt}
    assert ballot.id not in json.dumps(detail)
    assert detail["voted"] == 1


def test_a_second_ballot_is_already_voted_and_changes_nothing(setup, api):
    district, voters, e = setup
    a, b, _c = ids(e)
    assert _ballot(api, voters[0].user, e, {str(a): "for"}).status_code == 201
    before = _nothing_recorded()
    resp = _ballot(api, voters[0].user, e, {str(b): "for"})
    assert resp.status_code == 409 and _code(resp) == "already_voted"
    assert _nothing_recorded() == before


@pytest.mark.parametrize(
    ("marks", "status", "code", "field"),
    [
        ({"999999": "for"}, 422, "invalid_choice", "marks.999999"),
        ({"yes": "for"}, 422, "invalid_choice", "marks.yes"),
        ({"FIRST": "maybe"}, 422, "invalid_choice", "marks.FIRST"),
        ({"FIRST": "for", "SECOND": "for", "THIRD": "for"}, 422, "too_many_for", "marks"),
        (["FIRST"], 422, "invalid_choice", "marks"),
        ("for", 422, "invalid_choice", "marks"),
    ],
)
def test_bad_ballots_are_refused_and_nothing_is_recorded(setup, api, marks, status, code, field):
    district, voters, e = setup
    a, b, c = ids(e)
    names = {"FIRST": str(a), "SECOND": str(b), "THIRD": str(c)}

    def fill(x):
        if isinstance(x, dict):
            return {names.get(k, k): v for k, v in x.items()}
        if isinstance(x, list):
            return [names.get(k, k) for k in x]
        return x

    marks = fill(marks)
    field = {"marks.FIRST": f"marks.{a}"}.get(field, field)
    resp = _ballot(api, voters[0].user, e, marks)
    assert resp.status_code == status, resp.content
    assert _code(resp) == code
    assert field in resp.json()["error"]["fields"], resp.json()
    assert _nothing_recorded() == (0, 0, 0)


def test_a_candidate_named_twice_in_one_ballot_is_refused(setup, api, client):
    district, voters, e = setup
    a, _b, _c = ids(e)
    from accounts.services import issue_token

    token, _ = issue_token(voters[0].user)
    raw = '{"marks": {"A": "for", "A": "against"}}'.replace("A", str(a))
    resp = client.post(
        f"/api/v1/elections/{e.pk}/ballots", raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert resp.status_code == 422 and _code(resp) == "invalid_choice"
    assert f"marks.{a}" in resp.json()["error"]["fields"]
    assert _nothing_recorded() == (0, 0, 0)


def test_malformed_ballot_bodies(setup, api, client):
    district, voters, e = setup
    from accounts.services import issue_token

    token, _ = issue_token(voters[0].user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    url = f"/api/v1/elections/{e.pk}/ballots"
    resp = client.post(url, "{marks:", content_type="application/json", **auth)
    assert resp.status_code == 400
    resp = client.post(url, "[1, 2]", content_type="application/json", **auth)
    assert resp.status_code == 422
    resp = client.post(url, "{}", content_type="application/json", **auth)
    assert resp.status_code == 422 and "marks" in resp.json()["error"]["fields"]
    resp = client.post(url, "", content_type="application/json", **auth)
    assert resp.status_code == 422
    assert _nothing_recorded() == (0, 0, 0)


def test_an_empty_ballot_is_valid_all_abstain(setup, api):
    district, voters, e = setup
    assert _ballot(api, voters[0].user, e, {}).status_code == 201
    assert [set(m.values()) for m in cast_marks()] == [{"abstain"}]


def test_people_not_on_the_roll_are_refused(setup, api):
    district, voters, e = setup
    a = ids(e)[0]
    late_joiner = make_member(district.union_a1, "后入会")  # joined after the roll was frozen
    resp = _ballot(api, late_joiner.user, e, {str(a): "for"})
    assert resp.status_code == 403 and _code(resp) == "not_eligible"
    stranger = make_member(district.union_b1, "外单位")
    assert _ballot(api, stranger.user, e, {str(a): "for"}).status_code == 404
    assert _nothing_recorded() == (0, 0, 0)


def test_votes_before_open_and_after_close_are_refused(district, api):
    voters = roll(district.union_a1, 3)
    now = timezone.now()
    future = election(
        district.admin_a1,
        district.union_a1,
        opens_at=now + dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(hours=2),
    )
    resp = _ballot(api, voters[0].user, future, {str(ids(future)[0]): "for"})
    assert resp.status_code == 409 and _code(resp) == "poll_not_open"

    past = election(district.admin_a1, district.union_a1, title="已过期")
    Election.objects.filter(pk=past.pk).update(
        opens_at=now - dt.timedelta(hours=2), closes_at=now - dt.timedelta(seconds=1)
    )
    resp = _ballot(api, voters[0].user, past, {str(ids(past)[0]): "for"})
    assert resp.status_code == 409 and _code(resp) == "poll_closed"

    closed = election(district.admin_a1, district.union_a1, title="提前结束")
    assert api(district.admin_a1).post(f"/api/v1/elections/{closed.pk}/close").status_code == 200
    resp = _ballot(api, voters[0].user, closed, {str(ids(closed)[0]): "for"})
    assert resp.status_code == 409 and _code(resp) == "poll_closed"
    assert _nothing_recorded() == (0, 0, 0)


def test_an_idempotent_retry_returns_the_first_receipt(setup, api):
    district, voters, e = setup
    client = api(voters[0].user)
    key = str(uuid.uuid4())
    url = f"/api/v1/elections/{e.pk}/ballots"
    first = client.post(url, {"marks": {str(ids(e)[0]): "for"}}, HTTP_IDEMPOTENCY_KEY=key)
    again = client.post(url, {"marks": {str(ids(e)[0]): "for"}}, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(cast_marks()) == 1


# --- closing and results ------------------------------------------------------------------------


def test_results_are_409_before_close_and_the_tally_after(setup, api):
    district, voters, e = setup
    a, b, c = ids(e)
    for i, m in enumerate(voters[:5]):  # 5 of 6 voted: more than two thirds
        marks = {str(a): "for", str(b): "for" if i < 4 else "against", str(c): "against" if i < 3 else "abstain"}
        assert _ballot(api, m.user, e, marks).status_code == 201
    resp = api(voters[0].user).get(f"/api/v1/elections/{e.pk}/results")
    assert resp.status_code == 409 and _code(resp) == "not_closed"

    closed = api(district.admin_a1).post(f"/api/v1/elections/{e.pk}/close")
    assert closed.status_code == 200, closed.content
    body = closed.json()
    assert list(body)[:6] == ["eligible", "voted", "valid", "quorum_met", "candidates", "runoff_candidate_ids"]
    assert (body["eligible"], body["voted"], body["valid"], body["quorum_met"]) == (6, 5, 5, True)
    assert body["candidates"] == [
        {"id": a, "for": 5, "against": 0, "abstain": 0, "elected": True},
        {"id": b, "for": 4, "against": 1, "abstain": 0, "elected": True},
        {"id": c, "for": 0, "against": 3, "abstain": 2, "elected": False},
    ]
    assert body["runoff_candidate_ids"] == []
    assert len(body["chain_head"]) == 64
    # Members of the subtree and cadres above read the same results; others get 404.
    assert api(voters[5].user).get(f"/api/v1/elections/{e.pk}/results").json() == body
    assert api(district.district_admin).get(f"/api/v1/elections/{e.pk}/results").status_code == 200
    assert api(make_member(district.union_a2, "邻居").user).get(f"/api/v1/elections/{e.pk}/results").status_code == 404
    assert api(district.admin_b).get(f"/api/v1/elections/{e.pk}/results").status_code == 404
    # Closing early is recorded.
    e.refresh_from_db()
    assert e.closed_early and e.closed_by == district.admin_a1
    log = AuditLog.objects.get(action="election.close_early", target_id=str(e.pk))
    assert log.data["chain_head"] == body["chain_head"]


def test_closing_twice_and_closing_without_admin_rights(setup, api):
    district, voters, e = setup
    assert api(district.staff_a).post(f"/api/v1/elections/{e.pk}/close").status_code == 403
    assert api(district.admin_b).post(f"/api/v1/elections/{e.pk}/close").status_code == 404
    assert api(voters[0].user).post(f"/api/v1/elections/{e.pk}/close").status_code == 404
    assert api(district.admin_a).post(f"/api/v1/elections/{e.pk}/close").status_code == 200
    again = api(district.admin_a1).post(f"/api/v1/elections/{e.pk}/close")
    assert again.status_code == 409 and _code(again) == "already_closed"


def test_results_requested_after_closes_at_close_the_election_once(setup, api):
    district, voters, e = setup
    a = ids(e)[0]
    for m in voters[:5]:
        _ballot(api, m.user, e, {str(a): "for"})
    _expire(e)
    first = api(voters[0].user).get(f"/api/v1/elections/{e.pk}/results")
    second = api(district.admin_a1).get(f"/api/v1/elections/{e.pk}/results")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["candidates"][0]["elected"] is True
    e.refresh_from_db()
    assert e.status == "closed" and not e.closed_early and e.closed_by is None
    assert AuditLog.objects.filter(action__startswith="election.close", target_id=str(e.pk)).count() == 1


def test_the_close_elections_command_closes_what_is_due(setup):
    from io import StringIO

    from django.core.management import call_command

    district, voters, e = setup
    other = election(district.admin_a1, district.union_a1, title="未到期")
    _expire(e)
    out = StringIO()
    call_command("close_elections", stdout=out)
    e.refresh_from_db()
    other.refresh_from_db()
    assert e.status == "closed" and other.status == "open"
    assert str(e.pk) in out.getvalue()
    out = StringIO()
    call_command("close_elections", stdout=out)  # nothing left to do
    assert Election.objects.filter(status="closed").count() == 1


def test_detail_and_list(setup, api):
    district, voters, e = setup
    detail = api(voters[0].user).get(f"/api/v1/elections/{e.pk}").json()
    assert detail["status"] == "open" and detail["accepting_ballots"] is True
    assert detail["round"] == 1 and detail["secret"] is True and detail["eligible"] == 6
    assert [c["name"] for c in detail["candidates"]] == ["张三", "李四", "王五"]
    mine = api(voters[0].user).get("/api/v1/elections").json()
    assert mine["count"] == 1 and mine["items"][0]["id"] == e.pk
    assert api(district.admin_a).get("/api/v1/elections").json()["count"] == 1
    assert api(district.admin_b).get("/api/v1/elections").json()["count"] == 0
    assert api(district.admin_b).get(f"/api/v1/elections/{e.pk}").status_code == 404
