"""The counting rules, pure: ballots in, the outcome out. No database, so the tally, the recount
and the property tests all run this one function.

Defaults follow 工会基层组织选举工作条例 (the ACFTU regulations for grassroots union elections):

- Quorum: the vote counts only if more than two thirds of the eligible voters (应到会有选举权人数)
  took part. (The issue states "more than"; we keep it strict. `half` and `none` exist for
  bodies whose own rules say so.) Without a quorum nobody is elected and the election failed.
- Majority: a candidate is elected only with "for" votes from more than half of the eligible
  voters (`majority_of="eligible"`), or of those who voted (`"voted"`).
- More candidates pass than there are seats: the most "for" votes win. Candidates tied at the
  cut (the last seat cannot be given without choosing among equals) are elected by nobody here:
  they go to a run-off among themselves for the seats still open (`runoff_candidate_ids`).
- Fewer pass than there are seats: those who passed are elected; the remaining seats may be
  filled by a further round (另行选举) among the candidates not elected.
- A run-off round (kind "runoff") is decided by the most "for" votes (条例: 以得票多的当选), still
  under the quorum; a candidate needs at least one "for" vote; a new tie at the cut goes to
  another run-off.

"Valid" ballots: under the regulations a ballot marking more candidates than seats is invalid.
We refuse such a ballot when it is cast (422 too_many_for) so the voter can correct it, and so
every stored ballot is valid: valid = ballots counted = voters who took part. A blank ballot
(all abstain) is valid: it counts towards turnout and towards the majority base, never "for".

All comparisons are integer arithmetic (2·for > base, 3·voted > 2·eligible): no rounding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

MARKS = ("for", "against", "abstain")


@dataclasses.dataclass(frozen=True)
class Rules:
    seats: int
    quorum: str = "two_thirds"  # two_thirds | half | none
    majority_of: str = "eligible"  # eligible | voted
    kind: str = "regular"  # regular | runoff | further


def tally(candidate_ids: Iterable[int], ballots: Iterable[Mapping[str, str]]) -> dict[int, dict[str, int]]:
    """{candidate id: {"for", "against", "abstain"}} from ballots' marks ({"<id>": mark}); unmarked = abstain."""
    ids = list(candidate_ids)
    counts = {cid: {"for": 0, "against": 0, "abstain": 0} for cid in ids}
    for marks in ballots:
        for cid in ids:
            mark = marks.get(str(cid), "abstain")
            counts[cid][mark if mark in MARKS else "abstain"] += 1
    return counts


def quorum_met(quorum: str, eligible: int, voted: int) -> bool:
    if quorum == "none":
        return voted > 0
    if quorum == "half":
        return 2 * voted > eligible
    return 3 * voted > 2 * eligible


def outcome(rules: Rules, eligible: int, voted: int, counts: Mapping[int, Mapping[str, int]]) -> dict:
    """The published result: API.md's fields plus what the console needs to offer the next round.

    `counts` is in ballot order (candidate position); the answer lists candidates in that order.
    """
    ids = list(counts)
    met = quorum_met(rules.quorum, eligible, voted)
    elected: set[int] = set()
    runoff: list[int] = []
    passing: list[int] = []
    if met:
        if rules.kind == "runoff":
            passing = [c for c in ids if counts[c]["for"] > 0]
        else:
            base = voted if rules.majority_of == "voted" else eligible
            passing = [c for c in ids if 2 * counts[c]["for"] > base]
        if len(passing) <= rules.seats:
            elected = set(passing)
        else:
            ranked = sorted(passing, key=lambda c: -counts[c]["for"])
            cut = counts[ranked[rules.seats - 1]]["for"]
            above = [c for c in ranked if counts[c]["for"] > cut]
            at_cut = [c for c in ranked if counts[c]["for"] == cut]
            if len(above) + len(at_cut) == rules.seats:
                elected = set(above) | set(at_cut)
            else:
                elected = set(above)
                runoff = [c for c in ids if c in set(at_cut)]
    open_seats = rules.seats - len(elected)
    if not met:
        state = "failed_quorum"
    elif runoff:
        state = "runoff"
    elif open_seats > 0:
        state = "seats_remaining"
    else:
        state = "complete"
    return {
        "eligible": eligible,
        "voted": voted,
        "valid": voted,
        "quorum_met": met,
        "candidates": [
            {
                "id": c,
                "for": counts[c]["for"],
                "against": counts[c]["against"],
                "abstain": counts[c]["abstain"],
                "elected": c in elected,
            }
            for c in ids
        ],
        "runoff_candidate_ids": runoff,
        "seats": rules.seats,
        "open_seats": open_seats if met else rules.seats,
        # A further round (另行选举) for the open seats among those not elected, when no run-off is due.
        "further_round_candidate_ids": [c for c in ids if c not in elected] if state == "seats_remaining" else [],
        "state": state,
    }


def count(rules: Rules, eligible: int, candidate_ids: list[int], ballots: list[Mapping[str, str]]) -> dict:
    """tally + outcome in one call: what closing and recounting both run."""
    return outcome(rules, eligible, len(ballots), tally(candidate_ids, ballots))
