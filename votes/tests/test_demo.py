"""The demo polls: an open poll with ballots and a brushing cluster, a sealed contest ready to rank."""

from __future__ import annotations

import hashlib
import random

import pytest
from django.db import transaction
from django.utils import timezone

from demo import district as demo_district
from votes import demo
from votes.models import Award, Ballot, Judge, Poll, Score
from votes.services import contest, monitor, polls


def _fingerprint(summary: dict) -> str:
    """What the seed made, without database ids (PostgreSQL's sequences do not roll back)."""
    from votes.models import Option

    titles = dict(Option.objects.values_list("pk", "title"))
    rows = [
        (receipt, [titles[int(c)] for c in choices.split(",")], prefix, day, created_at.timestamp())
        for receipt, choices, prefix, day, created_at in Ballot.objects.order_by("created_at", "receipt").values_list(
            "receipt", "choices", "ip_prefix", "day", "created_at"
        )
    ]
    counts = (summary["poll_ballots"], summary["contest_ballots"], summary["ranking_ties_at_cut"])
    return hashlib.sha256(repr((counts, rows)).encode()).hexdigest()


def _seed(now) -> dict:
    demo_district.seed(300, 5, "Union@2026", progress=lambda m: None)
    return demo.seed(random.Random(5), now=now)


@pytest.mark.django_db
def test_demo_polls_are_consistent_and_deterministic():
    now = timezone.now().replace(second=0, microsecond=0)
    with transaction.atomic():
        first = _seed(now)
        fingerprint = _fingerprint(first)
        transaction.set_rollback(True)
    summary = _seed(now)
    assert _fingerprint(summary) == fingerprint  # the same rng gives the same polls and ballots

    poll = Poll.objects.get(pk=summary["poll_id"])
    assert polls.status_of(poll) == "open" and poll.eligibility == "everyone"
    assert 10 <= poll.options.count() <= 12 and all(o.description for o in poll.options.all())
    assert summary["poll_ballots"] >= 1000  # 1,600 voters in the full demo district; fewer here
    rc = polls.recount(poll)
    assert rc.tally_matches and rc.tally["total_ballots"] == summary["poll_ballots"]
    data = monitor.monitor(poll)
    top = data["clusters"]["prefixes"][0]
    assert top["prefix"] == "61.183.45.0/24" and top["new_accounts"] == top["ballots"] >= 140
    assert data["bursts"] and 0 < data["new_account_share"] < 0.2
    assert data["clusters"]["devices"][0]["voters"] >= 40

    entry = Poll.objects.get(pk=summary["contest_id"])
    assert entry.kind == "contest" and polls.status_of(entry) == "closed" and entry.chain_head
    assert entry.vote_weight == 40 and [t["count"] for t in entry.prize_tiers] == [1, 2, 3]
    rc = polls.recount(entry)
    assert rc.tally_matches and rc.chain_matches
    assert Judge.objects.filter(poll=entry).count() == 3
    assert Score.objects.filter(judge__poll=entry).count() == 3 * entry.options.count() * 3
    rows = contest.ranking(entry)
    assert [r["tier"] for r in rows[:6]] == ["一等奖", "二等奖", "二等奖", "三等奖", "三等奖", "三等奖"]
    assert summary["ranking_ties_at_cut"] == 0 and not Award.objects.exists()
    assert all(p["complete"] for p in contest.judge_progress(entry))
