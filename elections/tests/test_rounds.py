"""Election rules end to end: quorum failure, majority failure and a further round, a tie and its run-off."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.errors import DomainError, Invalid
from elections.models import Candidate, Election, ElectionVoter
from elections.services import elections as svc

from .builders import election, ids, roll, vote

pytestmark = pytest.mark.django_db


def _close(district, e) -> dict:
    return svc.close_election(district.admin_a1, e.pk).result


def _elected_names(e) -> list[str]:
    names = {c.pk: c.name for c in svc.candidates_of(e)}
    return [names[c["id"]] for c in e.result["candidates"] if c["elected"]]


def _tomorrow():
    return timezone.now() + dt.timedelta(days=1)


def test_quorum_failure_elects_nobody_and_offers_no_round(district):
    voters = roll(district.union_a1, 6)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    for m in voters[:4]:  # 4 of 6 is exactly two thirds: not more
        vote(m, e, ["for"])
    result = _close(district, e)
    assert result["quorum_met"] is False and result["state"] == "failed_quorum"
    assert not any(c["elected"] for c in result["candidates"])
    assert result["candidates"][0]["for"] == 4  # still counted and published
    e.refresh_from_db()
    assert svc.offered_round(e) is None
    with pytest.raises(DomainError) as exc:
        svc.start_next_round(district.admin_a1, e.pk, kind="further", closes_at=_tomorrow())
    assert exc.value.code == "round_not_offered"


def test_majority_failure_then_a_further_round_for_the_open_seats(district):
    voters = roll(district.union_a1, 9)
    e = election(district.admin_a1, district.union_a1, seats=2, names=("张三", "李四", "王五", "赵六"))
    # 9 on the roll, all vote. 张三 5 for (> 4.5: elected); 李四 4, 王五 3, 赵六 0: not more than half.
    pattern = [["for", "for", "abstain", "against"]] * 4 + [["for", "against", "for", "against"]]
    pattern += [["against", "against", "for", "abstain"]] * 2 + [["abstain"] * 4] * 2
    for m, marks in zip(voters, pattern, strict=True):
        vote(m, e, marks)
    result = _close(district, e)
    e.refresh_from_db()
    assert result["quorum_met"] is True
    assert _elected_names(e) == ["张三"]
    assert result["state"] == "seats_remaining" and result["open_seats"] == 1
    assert svc.offered_round(e) == "further"
    a, b, c, d = ids(e)
    assert result["further_round_candidate_ids"] == [b, c, d]

    # The cadre may narrow the list (差额 ratio), but only to candidates not elected, and not below the seats.
    with pytest.raises(Invalid):
        svc.start_next_round(district.admin_a1, e.pk, kind="further", closes_at=_tomorrow(), candidate_ids=[a, b])
    with pytest.raises(DomainError) as exc:
        svc.start_next_round(district.admin_a1, e.pk, kind="runoff", closes_at=_tomorrow())
    assert exc.value.code == "round_not_offered"
    second = svc.start_next_round(district.admin_a1, e.pk, kind="further", closes_at=_tomorrow(), candidate_ids=[b, c])
    assert (second.round, second.kind, second.seats, second.parent_id) == (2, "further", 1, e.pk)
    assert [x.name for x in svc.candidates_of(second)] == ["李四", "王五"]
    assert [x.source_id for x in svc.candidates_of(second)] == [b, c]
    assert second.eligible == 9
    assert set(ElectionVoter.objects.filter(election=second).values_list("user_id", flat=True)) == {
        m.user_id for m in voters
    }
    with pytest.raises(DomainError) as exc:
        svc.start_next_round(district.admin_a1, e.pk, kind="further", closes_at=_tomorrow())
    assert exc.value.code == "round_exists"
    assert Election.objects.filter(parent=e).count() == 1

    # Round two: 李四 gets 6 of 9.
    for i, m in enumerate(voters):
        vote(m, second, ["for" if i < 6 else "against", "against"])
    _close(district, second)
    second.refresh_from_db()
    assert _elected_names(second) == ["李四"] and second.result["state"] == "complete"
    rounds = svc.rounds_of(second)
    assert [r.pk for r in rounds] == [e.pk, second.pk]
    total = svc.overall(rounds)
    assert total.elected == [("张三", 1), ("李四", 2)] and total.open_seats == 0


def test_a_tie_at_the_cut_goes_to_a_runoff_among_exactly_the_tied(district):
    voters = roll(district.union_a1, 10)
    e = election(district.admin_a1, district.union_a1, seats=2, names=("张三", "李四", "王五", "赵六"))
    # Two "for" per ballot: 张三 8, 李四 6, 王五 6, 赵六 0. Three pass (> 5) for two seats: 张三 is
    # elected, 李四 and 王五 are tied for the last seat.
    pattern = [["for", "for", "against", "against"]] * 4 + [["for", "against", "for", "against"]] * 4
    pattern += [["against", "for", "for", "against"]] * 2
    for m, marks in zip(voters, pattern, strict=True):
        vote(m, e, marks)
    result = _close(district, e)
    e.refresh_from_db()
    a, b, c, d = ids(e)
    assert {x["id"]: x["for"] for x in result["candidates"]} == {a: 8, b: 6, c: 6, d: 0}
    assert _elected_names(e) == ["张三"]
    assert result["runoff_candidate_ids"] == [b, c]
    assert result["state"] == "runoff" and result["open_seats"] == 1
    assert svc.offered_round(e) == "runoff"

    runoff = svc.start_next_round(district.admin_a1, e.pk, kind="runoff", closes_at=_tomorrow())
    assert (runoff.kind, runoff.seats, runoff.round) == ("runoff", 1, 2)
    assert [x.name for x in svc.candidates_of(runoff)] == ["李四", "王五"]
    # In the run-off the most "for" votes win, no majority needed: 王五 2, 李四 1, 3 blank.
    marks = [["against", "for"], ["against", "for"], ["for", "against"]] + [[]] * 7
    for m, mk in zip(voters, marks, strict=True):
        vote(m, runoff, mk)
    _close(district, runoff)
    runoff.refresh_from_db()
    assert _elected_names(runoff) == ["王五"]
    assert svc.overall(svc.rounds_of(e)).elected == [("张三", 1), ("王五", 2)]


def test_the_rounds_endpoint(district, api):
    voters = roll(district.union_a1, 3)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    for m in voters:
        vote(m, e, ["against", "against"])
    _close(district, e)
    url = f"/api/v1/elections/{e.pk}/rounds"
    body = {"kind": "further", "closes_at": _tomorrow().isoformat()}
    assert api(district.staff_a).post(url, body).status_code == 403
    assert api(district.admin_a1).post(url, {"kind": "runoff", "closes_at": body["closes_at"]}).status_code == 409
    resp = api(district.admin_a1).post(url, body)
    assert resp.status_code == 201, resp.content
    child = resp.json()
    assert child["round"] == 2 and child["parent_id"] == e.pk and child["eligible"] == 3
    assert [c["name"] for c in child["candidates"]] == ["张三", "李四"]
    again = api(district.admin_a1).post(url, body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "round_exists"
    assert Candidate.objects.filter(election_id=child["id"]).count() == 2
