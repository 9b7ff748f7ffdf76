"""Property: whatever ballots arrive (good, bad, repeated, early closes), the published tally equals
an independent count of the accepted ballots, and the recount equals the published tally."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import DomainError
from elections.services import elections as svc
from elections.services import record as records

from .builders import cast_marks, roll

MARK = st.sampled_from(["for", "against", "abstain", "maybe"])


@st.composite
def scenarios(draw):
    n_candidates = draw(st.integers(1, 5))
    seats = draw(st.integers(1, n_candidates))
    roll_size = draw(st.integers(1, 10))
    attempts = draw(
        st.lists(
            st.tuples(
                st.integers(0, 11),  # a voter: beyond the roll means someone not on it
                st.dictionaries(st.integers(-1, n_candidates), MARK, max_size=n_candidates + 1),
            ),
            max_size=25,
        )
    )
    return {
        "n_candidates": n_candidates,
        "seats": seats,
        "roll_size": roll_size,
        "quorum": draw(st.sampled_from(["two_thirds", "half", "none"])),
        "majority_of": draw(st.sampled_from(["eligible", "voted"])),
        "attempts": attempts,
    }


@pytest.fixture
def pool(district):
    return district, roll(district.union_a1, 12)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_any_sequence_of_ballots_keeps_tally_equal_to_recount(pool, scenario):
    district, members = pool
    on_roll = members[: scenario["roll_size"]]
    e = svc.create_election(
        district.admin_a1,
        district.union_a1,
        title="性质测试",
        seats=scenario["seats"],
        candidates=[f"候选人{i}" for i in range(scenario["n_candidates"])],
        voters=[m.user_id for m in on_roll],
        quorum=scenario["quorum"],
        majority_of=scenario["majority_of"],
        closes_at=timezone.now() + dt.timedelta(hours=1),
    )
    cids = [c.pk for c in svc.candidates_of(e)]
    accepted: list[dict[str, str]] = []
    voted: set[int] = set()
    for who, raw in scenario["attempts"]:
        # Candidate numbers index this election's candidates; -1 and n stand for ids outside it.
        marks = {str(cids[k]) if 0 <= k < len(cids) else str(10**9 + k): v for k, v in raw.items()}
        user = members[who].user if who < len(members) else district.admin_b
        try:
            svc.cast_ballot(user, e.pk, marks)
        except DomainError:
            continue
        # Accepted only when on the roll, first time, known candidates, known marks, ≤ seats "for".
        assert who < scenario["roll_size"] and who not in voted
        assert all(v in ("for", "against", "abstain") for v in marks.values())
        assert sum(v == "for" for v in marks.values()) <= scenario["seats"]
        voted.add(who)
        accepted.append({str(c): marks.get(str(c), "abstain") for c in cids})
    # Every refused attempt of a voter on the roll who had not voted would have been a bad ballot.
    assert len(cast_marks(e)) == len(accepted) == len(voted)

    svc.close_election(district.admin_a1, e.pk)
    e.refresh_from_db()
    published = e.result
    assert published["voted"] == published["valid"] == len(accepted)
    assert published["eligible"] == scenario["roll_size"]
    for c in published["candidates"]:
        col = [b[str(c["id"])] for b in accepted]
        assert (c["for"], c["against"], c["abstain"]) == (col.count("for"), col.count("against"), col.count("abstain"))
    n_elected = sum(c["elected"] for c in published["candidates"])
    assert n_elected <= scenario["seats"]
    if not published["quorum_met"]:
        assert n_elected == 0
    r = records.recount(e)
    assert r.matches, r.findings
    rec = records.public_record(e)
    # Below the minimum only totals are public: nothing to recount offline, and the check says so.
    assert rec["withheld"] == (len(accepted) < records.MIN_PUBLISHED_BALLOTS)
    assert records.verify_record(rec).matches != rec["withheld"]
