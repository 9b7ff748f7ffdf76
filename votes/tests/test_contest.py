"""Contests: judges, criteria, scores, the ranking (votes and judges' scores, ties shown) and awards."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import DomainError, Forbidden, Invalid, NotFound
from votes.models import Award, Criterion, Judge, Score
from votes.services import contest, polls
from votes.tests import builders as b

TIERS = [{"name": "一等奖", "count": 1}, {"name": "二等奖", "count": 2}, {"name": "三等奖", "count": 3}]


def _contest(district, *, n_options=6, vote_weight=40, tiers=TIERS, **kw):
    return b.poll(
        district.admin_a,
        district.street_a,
        kind="contest",
        n_options=n_options,
        vote_weight=vote_weight,
        prize_tiers=tiers,
        **kw,
    )


def _vote(district, poll, counts: list[int]) -> None:
    """counts[i] members vote for the i-th option."""
    ids = b.option_ids(poll)
    for option_id, n in zip(ids, counts, strict=True):
        for _ in range(n):
            polls.cast_ballot(b.member(district.union_a1).user, poll.pk, [option_id])


def _score_all(poll, judges, table: list[list[int]]) -> None:
    """table[j][i]: judge j's score for option i on every criterion."""
    ids = b.option_ids(poll)
    crits = list(poll.criteria.all())
    for judge, row in zip(judges, table, strict=True):
        for option_id, score in zip(ids, row, strict=True):
            contest.submit_scores(judge, poll, option_id, {c.pk: score for c in crits})


@pytest.mark.django_db
def test_judges_and_criteria_are_set_by_admins_and_replace_the_old_ones(district):
    p = _contest(district)
    a, c, d = (b.member(district.union_a2).user for _ in range(3))
    with pytest.raises(Forbidden):
        contest.set_judges(district.staff_a, p, [a.pk])
    with pytest.raises(NotFound):
        contest.set_judges(district.admin_b, p, [a.pk])
    with pytest.raises(Invalid) as e:
        contest.set_judges(district.admin_a, p, [a.pk, 10**9])
    assert "user_ids" in e.value.fields and not Judge.objects.exists()
    contest.set_judges(district.admin_a, p, [a.pk, c.pk])
    contest.set_judges(district.admin_a, p, [c.pk, d.pk])
    assert set(Judge.objects.filter(poll=p).values_list("user_id", flat=True)) == {c.pk, d.pk}
    crits = contest.set_criteria(
        district.admin_a, p, [{"name": "事迹", "max_score": 10, "weight": 3}, {"name": "表达", "max_score": 5}]
    )
    assert [(x.name, x.max_score, x.weight) for x in crits] == [("事迹", 10, 3), ("表达", 5, 1)]
    for bad, field in (
        ([{"name": "", "max_score": 10}], "criteria.0.name"),
        ([{"name": "甲", "max_score": 0}], "criteria.0.max_score"),
        ([{"name": "甲", "weight": 101}], "criteria.0.weight"),
        ([{"name": "甲"}, {"name": "甲"}], "criteria.1.name"),
        ([{"name": "甲", "id": 10**9}], "criteria.0.id"),
    ):
        with pytest.raises(Invalid) as e:
            contest.set_criteria(district.admin_a, p, bad)
        assert field in e.value.fields
    contest.set_criteria(district.admin_a, p, [{"id": crits[1].pk, "name": "表达能力", "max_score": 5}])
    assert list(Criterion.objects.filter(poll=p).values_list("name", flat=True)) == ["表达能力"]
    plain = b.poll(district.admin_a, district.street_a, title="普通投票")
    with pytest.raises(Invalid) as e:
        contest.set_judges(district.admin_a, plain, [a.pk])
    assert e.value.code == "not_a_contest"


@pytest.mark.django_db
def test_judges_are_people_within_the_polls_org_subtree(district):
    p = _contest(district)  # street_a's contest
    inside = b.member(district.union_a1).user
    accepted = contest.set_judges(district.admin_a, p, [inside.pk, district.staff_a.pk, district.admin_a1.pk])
    assert {j.user_id for j in accepted} == {inside.pk, district.staff_a.pk, district.admin_a1.pk}
    outsider = b.member(district.union_b1).user  # a certified member of another street
    uncertified = b.member(district.union_a1, certified=False).user
    inactive = b.member(district.union_a2).user
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    refused = {
        "outside the subtree": outsider.pk,
        "a cadre of another street": district.admin_b.pk,
        "a cadre above the poll's org": district.district_admin.pk,
        "not certified": uncertified.pk,
        "inactive": inactive.pk,
        "does not exist": 10**9,
    }
    answers = set()
    for why, uid in refused.items():
        with pytest.raises(Invalid) as e:
            contest.set_judges(district.admin_a, p, [inside.pk, uid])
        assert e.value.code == "invalid_judges" and set(e.value.fields) == {"user_ids"}, why
        # The same words for every kind of refusal, naming only the id that was sent.
        answers.add(e.value.message.replace(str(uid), "<id>"))
        assert outsider.name not in e.value.message and str(inside.pk) not in e.value.message.split("：")[-1]
    assert len(answers) == 1
    assert set(Judge.objects.filter(poll=p).values_list("user_id", flat=True)) == {
        inside.pk,
        district.staff_a.pk,
        district.admin_a1.pk,
    }


@pytest.mark.django_db
def test_scores_only_from_judges_within_range_and_replaced_when_given_again(district):
    p = _contest(district)
    judge = b.member(district.union_a2).user
    contest.set_judges(district.admin_a, p, [judge.pk])
    (crit,) = contest.set_criteria(district.admin_a, p, [{"name": "事迹", "max_score": 10}])
    ids = b.option_ids(p)
    with pytest.raises(Forbidden) as e:
        contest.submit_scores(district.admin_a, p, ids[0], {crit.pk: 5})
    assert e.value.code == "not_a_judge"
    for bad in ({crit.pk: 11}, {crit.pk: -1}, {crit.pk: "x"}, {crit.pk: 1.234}, {crit.pk: True}, {10**9: 5}, {}):
        with pytest.raises(Invalid):
            contest.submit_scores(judge, p, ids[0], bad)
    with pytest.raises(Invalid) as e:
        contest.submit_scores(judge, p, 10**9, {crit.pk: 5})
    assert "option_id" in e.value.fields
    assert not Score.objects.exists()
    contest.submit_scores(judge, p, ids[0], {str(crit.pk): "7.5"})
    contest.submit_scores(judge, p, ids[0], {crit.pk: 8})
    assert Score.objects.get().score == Decimal("8.00")
    progress = contest.judge_progress(p)
    assert progress[0]["scored"] == 1 and progress[0]["total"] == 6 and "*" in progress[0]["phone"]


@pytest.mark.django_db
def test_ranking_mixes_votes_and_judges_by_the_vote_weight(district):
    p = _contest(district, n_options=3, vote_weight=40, tiers=[{"name": "一等奖", "count": 1}])
    judges = [b.member(district.union_a2).user for _ in range(2)]
    contest.set_judges(district.admin_a, p, [j.pk for j in judges])
    contest.set_criteria(
        district.admin_a, p, [{"name": "事迹", "max_score": 10, "weight": 3}, {"name": "表达", "max_score": 10}]
    )
    _vote(district, p, [4, 2, 0])
    _score_all(p, judges, [[5, 10, 10], [5, 10, 8]])
    rows = contest.ranking(p)
    by = {r["option_id"]: r for r in rows}
    ids = b.option_ids(p)
    assert by[ids[0]]["vote_norm"] == 1.0 and by[ids[1]]["vote_norm"] == 0.5 and by[ids[2]]["vote_norm"] == 0.0
    assert by[ids[0]]["judge_norm"] == 0.5 and by[ids[1]]["judge_norm"] == 1.0 and by[ids[2]]["judge_norm"] == 0.9
    # final = 0.4 × votes + 0.6 × judges
    assert [r["final"] for r in rows] == [0.8, 0.7, 0.54]
    assert [r["option_id"] for r in rows] == [ids[1], ids[0], ids[2]]
    assert [r["rank"] for r in rows] == [1, 2, 3] and [r["tier"] for r in rows] == ["一等奖", None, None]
    assert not any(r["tie_at_cut"] or r["tied"] for r in rows)


@pytest.mark.django_db
def test_a_tie_inside_a_tier_shares_the_rank_and_the_tier(district):
    p = _contest(
        district, n_options=4, vote_weight=100, tiers=[{"name": "一等奖", "count": 1}, {"name": "二等奖", "count": 2}]
    )
    _vote(district, p, [3, 2, 2, 1])
    rows = contest.ranking(p)
    assert [r["rank"] for r in rows] == [1, 2, 2, 4]
    assert [r["tier"] for r in rows] == ["一等奖", "二等奖", "二等奖", None]
    assert [r["tied"] for r in rows] == [False, True, True, False]
    assert not any(r["tie_at_cut"] for r in rows)


@pytest.mark.django_db
def test_a_tie_straddling_a_tier_boundary_is_flagged_and_must_be_resolved_to_publish(district):
    p = _contest(
        district, n_options=5, vote_weight=100, tiers=[{"name": "一等奖", "count": 1}, {"name": "二等奖", "count": 2}]
    )
    ids = b.option_ids(p)
    _vote(district, p, [4, 3, 2, 2, 2])  # positions 3-5 tie; the second prize has one place left at position 3
    rows = contest.ranking(p)
    assert [r["rank"] for r in rows] == [1, 2, 3, 3, 3]
    assert [r["tie_at_cut"] for r in rows] == [False, False, True, True, True]
    assert rows[2]["tier"] == "二等奖"  # the tier of the tie's first place, shown, not handed out
    with pytest.raises(DomainError) as e:
        contest.publish_awards(district.admin_a, p)
    assert e.value.code == "not_closed"
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    with pytest.raises(DomainError) as e:
        contest.publish_awards(district.admin_a, p)
    assert e.value.code == "tie_at_cut" and set(e.value.fields) == {str(i) for i in ids[2:]}
    with pytest.raises(DomainError) as e:
        contest.publish_awards(district.admin_a, p, {ids[2]: "二等奖"})  # one of three is not enough
    assert e.value.code == "tie_at_cut" and set(e.value.fields) == {str(ids[3]), str(ids[4])}
    with pytest.raises(Invalid):
        contest.publish_awards(district.admin_a, p, {ids[2]: "特等奖", ids[3]: "", ids[4]: ""})
    assert not Award.objects.exists()
    awards = contest.publish_awards(district.admin_a, p, {ids[2]: "二等奖", ids[3]: "二等奖", ids[4]: ""})
    assert [(a.option_id, a.tier, a.rank) for a in awards] == [
        (ids[0], "一等奖", 1),
        (ids[1], "二等奖", 2),
        (ids[2], "二等奖", 3),
        (ids[3], "二等奖", 3),
    ]
    with pytest.raises(DomainError) as e:
        contest.publish_awards(district.admin_a, p, {ids[2]: "二等奖", ids[3]: "二等奖", ids[4]: ""})
    assert e.value.code == "awards_published"
    with pytest.raises(DomainError) as e:
        contest.set_criteria(district.admin_a, p, [{"name": "新标准"}])
    assert e.value.code == "awards_published"


@pytest.mark.django_db
def test_finals_equal_to_4_decimals_are_a_tie(district):
    p = _contest(district, n_options=2, vote_weight=0, tiers=[{"name": "一等奖", "count": 1}])
    judges = [b.member(district.union_a2).user for _ in range(3)]
    contest.set_judges(district.admin_a, p, [j.pk for j in judges])
    contest.set_criteria(district.admin_a, p, [{"name": "综合", "max_score": 100}])
    # 1/3 × (100 + 0 + 0) / 100 = 0.33333…; 0.3333 × 3 = 99.99 / 3 / 100 = 0.3333: equal at 4 decimals.
    _score_all(p, judges, [[100, "33.33"], [0, "33.33"], [0, "33.33"]])
    rows = contest.ranking(p)
    assert rows[0]["final"] == rows[1]["final"] == 0.3333
    assert [r["rank"] for r in rows] == [1, 1] and all(r["tie_at_cut"] for r in rows)


@pytest.mark.django_db
def test_publishing_waits_for_every_score(district):
    p = _contest(district, n_options=2, vote_weight=50, tiers=[{"name": "一等奖", "count": 1}])
    judges = [b.member(district.union_a2).user for _ in range(2)]
    contest.set_judges(district.admin_a, p, [j.pk for j in judges])
    contest.set_criteria(district.admin_a, p, [{"name": "综合", "max_score": 10}])
    _vote(district, p, [1, 0])
    _score_all(p, judges[:1], [[9, 3]])
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    with pytest.raises(DomainError) as e:
        contest.publish_awards(district.admin_a, p)
    assert e.value.code == "scores_incomplete"
    with pytest.raises(Forbidden):
        contest.publish_awards(district.staff_a, p)
    _score_all(p, judges[1:], [[8, 4]])
    awards = contest.publish_awards(district.admin_a, p)
    assert [(a.option_id, a.tier) for a in awards] == [(b.option_ids(p)[0], "一等奖")]
    with pytest.raises(DomainError) as e:
        contest.submit_scores(judges[0], p, b.option_ids(p)[1], {p.criteria.get().pk: 10})
    assert e.value.code == "awards_published"
