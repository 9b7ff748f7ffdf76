"""The counting rules of 工会基层组织选举工作条例, on hand-made tallies (no database)."""

from __future__ import annotations

from elections.services.counting import Rules, count, outcome, quorum_met, tally


def _counts(fors: dict[int, int], voted: int) -> dict[int, dict[str, int]]:
    return {c: {"for": f, "against": voted - f, "abstain": 0} for c, f in fors.items()}


def _elected(result: dict) -> list[int]:
    return [c["id"] for c in result["candidates"] if c["elected"]]


def test_quorum_needs_more_than_two_thirds_of_the_roll():
    assert not quorum_met("two_thirds", 30, 20)  # exactly two thirds is not more than two thirds
    assert quorum_met("two_thirds", 30, 21)
    assert not quorum_met("half", 10, 5) and quorum_met("half", 10, 6)
    assert quorum_met("none", 10, 1) and not quorum_met("none", 10, 0)


def test_without_quorum_nobody_is_elected_and_the_election_failed():
    result = outcome(Rules(seats=2), eligible=30, voted=20, counts=_counts({1: 20, 2: 20, 3: 19}, 20))
    assert result["quorum_met"] is False
    assert _elected(result) == []
    assert result["state"] == "failed_quorum"
    assert result["runoff_candidate_ids"] == [] and result["further_round_candidate_ids"] == []


def test_majority_is_of_the_eligible_voters_by_default():
    # 30 on the roll, 21 voted: 15 "for" is exactly half of 30 (not elected), 16 is more than half.
    result = outcome(Rules(seats=2), 30, 21, _counts({1: 16, 2: 15, 3: 2}, 21))
    assert _elected(result) == [1]
    assert result["state"] == "seats_remaining"
    assert result["open_seats"] == 1
    assert result["further_round_candidate_ids"] == [2, 3]


def test_majority_of_those_who_voted_when_configured():
    result = outcome(Rules(seats=2, majority_of="voted"), 30, 21, _counts({1: 16, 2: 11, 3: 10}, 21))
    assert _elected(result) == [1, 2]  # 11 > 21/2; 10 is not
    assert result["state"] == "complete"


def test_more_passing_than_seats_the_most_for_votes_win():
    result = outcome(Rules(seats=2), 10, 10, _counts({1: 7, 2: 9, 3: 8, 4: 6}, 10))
    assert _elected(result) == [2, 3]
    assert result["state"] == "complete" and result["runoff_candidate_ids"] == []


def test_a_tie_at_the_cut_goes_to_a_runoff_among_the_tied_for_the_open_seats():
    result = outcome(Rules(seats=2), 10, 10, _counts({1: 9, 2: 7, 3: 7, 4: 6}, 10))
    assert _elected(result) == [1]
    assert result["runoff_candidate_ids"] == [2, 3]
    assert result["open_seats"] == 1
    assert result["state"] == "runoff"


def test_a_tie_that_fits_within_the_seats_elects_all_tied():
    result = outcome(Rules(seats=3), 10, 10, _counts({1: 9, 2: 7, 3: 7, 4: 6}, 10))
    assert _elected(result) == [1, 2, 3]
    assert result["runoff_candidate_ids"] == []


def test_a_tie_of_everyone_for_one_seat():
    result = outcome(Rules(seats=1), 10, 9, _counts({1: 8, 2: 8}, 9))
    assert _elected(result) == []
    assert result["runoff_candidate_ids"] == [1, 2]
    assert result["open_seats"] == 1


def test_a_runoff_round_is_decided_by_the_most_for_votes():
    # In a run-off nobody needs a majority: 4 of 10 "for" wins one seat over 3.
    result = outcome(Rules(seats=1, kind="runoff"), 10, 8, _counts({1: 4, 2: 3}, 8))
    assert _elected(result) == [1]
    tied_again = outcome(Rules(seats=1, kind="runoff"), 10, 8, _counts({1: 4, 2: 4}, 8))
    assert tied_again["runoff_candidate_ids"] == [1, 2]
    nobody = outcome(Rules(seats=1, kind="runoff"), 10, 8, _counts({1: 0, 2: 0}, 8))
    assert _elected(nobody) == [] and nobody["state"] == "seats_remaining"


def test_tally_counts_unmarked_candidates_as_abstaining():
    counts = tally([1, 2, 3], [{"1": "for", "2": "against"}, {"3": "for"}, {}])
    assert counts == {
        1: {"for": 1, "against": 0, "abstain": 2},
        2: {"for": 0, "against": 1, "abstain": 2},
        3: {"for": 1, "against": 0, "abstain": 2},
    }


def test_every_ballot_is_valid_and_counted():
    result = count(Rules(seats=1), 3, [1, 2], [{"1": "for"}, {}, {"2": "against"}])
    assert result["voted"] == result["valid"] == 3
    for c in result["candidates"]:
        assert c["for"] + c["against"] + c["abstain"] == 3
