"""The error codes of polls and contests (API.md "Votes"), one place for every caller."""

from __future__ import annotations


class VoteErrors:
    # Casting a ballot.
    ALREADY_VOTED = "already_voted"
    DAILY_LIMIT_REACHED = "daily_limit_reached"
    POLL_NOT_OPEN = "poll_not_open"
    POLL_CLOSED = "poll_closed"
    NOT_ELIGIBLE = "not_eligible"
    INVALID_CHOICE = "invalid_choice"
    RATE_LIMITED = "rate_limited"
    # Results and records.
    RESULTS_HIDDEN = "results_hidden"
    NOT_CLOSED = "not_closed"
    # A poll sealed before recounts were stored, being counted for the first time by another request.
    RECOUNT_PENDING = "recount_pending"
    # Cadres.
    ADMIN_REQUIRED = "admin_required"
    ALREADY_CLOSED = "already_closed"
    NOTHING_TO_VOID = "nothing_to_void"
    REASON_REQUIRED = "reason_required"
    # Contests.
    NOT_A_CONTEST = "not_a_contest"
    NOT_A_JUDGE = "not_a_judge"
    # A judge outside the poll's org subtree, or an id that does not exist: one answer for both.
    INVALID_JUDGES = "invalid_judges"
    AWARDS_PUBLISHED = "awards_published"
    SCORES_INCOMPLETE = "scores_incomplete"
    TIE_AT_CUT = "tie_at_cut"
    INVALID_SCORE = "invalid_score"
