"""The demo elections: one closed with a published result that recounts, one open that demo members can vote in."""

from __future__ import annotations

import random

import pytest

from elections import demo
from elections.models import ElectionVoter
from elections.services import record as records

from .builders import roll

pytestmark = pytest.mark.django_db


def test_demo_seed_creates_a_closed_and_an_open_election(district):
    roll(district.union_a1, 24, "演示")
    roll(district.union_a2, 2, "小")
    closed, open_ = demo.seed(random.Random(7), [district.union_a1, district.union_a2])
    assert closed.org_id == open_.org_id == district.union_a1.pk
    assert closed.status == "closed" and closed.result["eligible"] == 24
    assert closed.result["quorum_met"] and sum(c["elected"] for c in closed.result["candidates"]) >= 1
    assert records.recount(closed).matches
    assert open_.status == "open"
    # The members in the demo logins (here: all 24, the first 1,000 ordinary members) can still vote.
    assert not ElectionVoter.objects.filter(election=open_, voted_at__isnull=False).exists()
    again = demo.seed(random.Random(7), [district.union_a1, district.union_a2])
    assert [e.title for e in again] == [closed.title, open_.title]  # deterministic choices


def test_demo_seed_does_nothing_without_a_fitting_union(district):
    roll(district.union_a2, 2, "小")
    assert demo.seed(random.Random(1), [district.union_a1, district.union_a2]) == []
