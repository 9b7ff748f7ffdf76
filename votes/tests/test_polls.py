"""Polls as services: creating, who reaches and who may vote, the rules of a ballot, results,
closing and sealing, receipts, recounts that catch tampering."""

from __future__ import annotations

import datetime as dt
import io
import zoneinfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from PIL import Image

from core.errors import DomainError, Forbidden, Invalid, NotFound
from core.sql import sqlite_dt
from votes.models import Ballot, BallotBucket, Option, OptionCount, Poll, RateCount
from votes.services import ballots as ballot_rules
from votes.services import polls, receipts
from votes.tests import builders as b

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def _code(excinfo) -> str:
    return excinfo.value.code


def _rows() -> tuple[int, int, int]:
    """What a refused ballot must leave as it was: ballots, counter totals, bucket rows."""
    votes = sum(OptionCount.objects.values_list("votes", flat=True))
    return Ballot.objects.count(), votes, BallotBucket.objects.count()


# --- creating --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_poll_makes_options_and_a_counter_row_per_shard(district):
    p = b.poll(district.admin_a, district.street_a, n_options=4, ballots_per_day=3, max_choices=2)
    assert p.org == district.street_a and p.ballots_per_day == 3 and p.max_choices == 2
    assert list(p.options.values_list("title", flat=True)) == ["候选人1", "候选人2", "候选人3", "候选人4"]
    assert OptionCount.objects.filter(option__poll=p).count() == 4 * 8
    assert polls.status_of(p) == "open"


@pytest.mark.django_db
def test_create_poll_is_for_admin_cadres_of_the_org_or_above(district):
    with pytest.raises(Forbidden):
        b.poll(district.staff_a, district.street_a)
    with pytest.raises(Forbidden):
        b.poll(district.admin_b, district.street_a)
    with pytest.raises(Forbidden):
        b.poll(b.member(district.union_a1).user, district.union_a1)
    assert b.poll(district.district_admin, district.union_a1).org == district.union_a1
    assert Poll.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "长" * 101}, "title"),
        ({"options": [{"title": "只有一个"}]}, "options"),
        ({"options": [{"title": f"{i}"} for i in range(201)]}, "options"),
        ({"options": [{"title": "甲"}, {"title": " "}]}, "options.1.title"),
        ({"options": [{"title": "甲"}, {"title": "甲"}]}, "options.1.title"),
        ({"options": [{"title": "甲"}, "乙"]}, "options.1"),
        ({"max_choices": 0}, "max_choices"),
        ({"max_choices": 4}, "max_choices"),
        ({"max_choices": True}, "max_choices"),
        ({"ballots_per_day": 0}, "ballots_per_day"),
        ({"ballots_per_day": 101}, "ballots_per_day"),
        ({"eligibility": "all"}, "eligibility"),
        ({"results": "never"}, "results"),
        ({"kind": "election"}, "kind"),
        ({"vote_weight": 101}, "vote_weight"),
        ({"prize_tiers": [{"name": "一等奖", "count": 0}]}, "prize_tiers.0.count"),
        ({"prize_tiers": [{"name": "", "count": 1}]}, "prize_tiers.0.name"),
        ({"block_new_accounts": "yes"}, "block_new_accounts"),
        ({"opens": None, "closes": "now-1h"}, "closes_at"),
        ({"opens": "now+2h", "closes": "now+1h"}, "closes_at"),
    ],
)
def test_create_poll_names_each_bad_field_and_writes_nothing(district, change, field):
    now = timezone.now()
    times = {"now-1h": now - dt.timedelta(hours=1), "now+1h": now + dt.timedelta(hours=1)}
    times["now+2h"] = now + dt.timedelta(hours=2)
    change = dict(change)
    opens, closes = times.get(change.pop("opens", None)), times.get(change.pop("closes", None))
    with pytest.raises(Invalid) as e:
        b.poll(district.admin_a, district.street_a, opens=opens, closes=closes, **change)
    assert field in e.value.fields, e.value.fields
    assert Poll.objects.count() == 0 and Option.objects.count() == 0


@pytest.mark.django_db
def test_closes_at_must_be_after_now_and_after_opens_at(district):
    now = timezone.now()
    with pytest.raises(Invalid) as e:
        polls.create_poll(
            district.admin_a,
            district.street_a,
            title="t",
            options=[{"title": "a"}, {"title": "b"}],
            max_choices=1,
            opens_at=now - dt.timedelta(days=2),
            closes_at=now - dt.timedelta(days=1),
        )
    assert e.value.code == "invalid_window" and "closes_at" in e.value.fields


# --- reach and eligibility -------------------------------------------------------------------------


@pytest.mark.django_db
def test_members_reach_polls_of_their_union_and_above_followers_reach_everyone_polls(district):
    street_poll = b.poll(district.admin_a, district.street_a, title="甲街道评选")
    b_poll = b.poll(district.admin_b, district.street_b, title="乙街道评选")
    open_poll = b.poll(district.admin_b, district.street_b, title="人人可投", eligibility="everyone")
    a1 = b.member(district.union_a1).user
    fan = b.follower()
    assert polls.poll_for_user(a1, street_poll.pk) == street_poll
    assert polls.poll_for_user(a1, open_poll.pk) == open_poll
    with pytest.raises(NotFound):
        polls.poll_for_user(a1, b_poll.pk)
    with pytest.raises(NotFound):
        polls.poll_for_user(fan, street_poll.pk)
    assert polls.poll_for_user(fan, open_poll.pk) == open_poll
    with pytest.raises(NotFound):
        polls.poll_for_user(a1, 10**9)
    assert set(polls.polls_for_user(a1)) == {street_poll, open_poll}
    assert set(polls.polls_for_user(fan)) == {open_poll}
    # Cadres reach the polls of their subtrees.
    assert polls.poll_for_user(district.admin_b, b_poll.pk) == b_poll
    assert set(polls.polls_for_cadre(district.admin_a)) == {street_poll}


@pytest.mark.django_db
def test_not_eligible_followers_members_elsewhere_and_uncertified_members(district):
    p = b.poll(district.admin_a, district.street_a)
    ids = b.option_ids(p)
    before = _rows()
    for user in (
        b.follower(),
        b.member(district.union_b1).user,
        b.member(district.union_a1, certified=False).user,
    ):
        with pytest.raises(Forbidden) as e:
            polls.cast_ballot(user, p.pk, [ids[0]])
        assert _code(e) == "not_eligible"
    assert _rows() == before


@pytest.mark.django_db
def test_block_new_accounts_refuses_accounts_created_after_opening_with_its_own_message(district):
    p = b.poll(district.admin_a, district.street_a, eligibility="everyone", block_new_accounts=True)
    ids = b.option_ids(p)
    newcomer = b.follower()  # created now, after the poll opened an hour ago
    with pytest.raises(Forbidden) as e:
        polls.cast_ballot(newcomer, p.pk, [ids[0]])
    assert _code(e) == "not_eligible" and "注册" in e.value.message
    veteran = b.follower()
    type(veteran).objects.filter(pk=veteran.pk).update(date_joined=p.opens_at - dt.timedelta(days=30))
    veteran.refresh_from_db()
    ballot = polls.cast_ballot(veteran, p.pk, [ids[0]])
    assert ballot.new_account is False
    assert Ballot.objects.count() == 1


@pytest.mark.django_db
def test_an_everyone_poll_takes_followers_and_members_of_other_subtrees(district):
    p = b.poll(district.admin_a, district.street_a, eligibility="everyone")
    ids = b.option_ids(p)
    polls.cast_ballot(b.follower(), p.pk, [ids[0]])
    polls.cast_ballot(b.member(district.union_b1).user, p.pk, [ids[1]])
    assert polls.results(p)["total_ballots"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["closed_at", "seal_claimed_at", "closes_at"])
def test_a_remembered_poll_serves_the_next_ballots_but_the_write_sees_it_closed(district, monkeypatch, change):
    p = b.poll(district.admin_a, district.street_a)
    ids = b.option_ids(p)
    reads = []
    real = ballot_rules.load_poll
    monkeypatch.setattr(ballot_rules, "load_poll", lambda db, pid: reads.append(pid) or real(db, pid))
    voters = [b.member(district.union_a1).user for _ in range(4)]
    polls.cast_ballot(voters[0], p.pk, [ids[0]])
    polls.cast_ballot(voters[1], p.pk, [ids[1]])
    assert reads == [p.pk]  # the second ballot used the first one's read
    # Closed, or being sealed, or past its end, by another process this one's memory knows nothing of.
    Poll.objects.filter(pk=p.pk).update(**{change: timezone.now() - dt.timedelta(seconds=1)})
    before = _rows()
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(voters[2], p.pk, [ids[0]])
    assert _code(e) == "poll_closed" and _rows() == before
    assert p.pk not in ballot_rules._recent  # forgotten: the next ballot reads the poll again
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(voters[3], p.pk, [ids[0]])
    assert _code(e) == "poll_closed" and reads == [p.pk, p.pk] and _rows() == before


@pytest.mark.django_db
def test_a_poll_is_remembered_only_while_open_and_only_for_a_few_seconds(district, monkeypatch):
    upcoming = b.poll(district.admin_a, district.street_a, opens=timezone.now() + dt.timedelta(hours=1))
    voter = b.member(district.union_a1).user
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(voter, upcoming.pk, b.option_ids(upcoming)[:1])
    assert _code(e) == "poll_not_open" and upcoming.pk not in ballot_rules._recent
    p = b.poll(district.admin_a, district.street_a)
    monkeypatch.setattr(ballot_rules._recent, "seconds", 0.0)
    reads = []
    real = ballot_rules.load_poll
    monkeypatch.setattr(ballot_rules, "load_poll", lambda db, pid: reads.append(pid) or real(db, pid))
    for _ in range(2):
        polls.cast_ballot(b.member(district.union_a1).user, p.pk, b.option_ids(p)[:1])
    assert reads == [p.pk, p.pk]


# --- the rules of a ballot -------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_ballot_in_all(district):
    p = b.poll(district.admin_a, district.street_a)
    ids = b.option_ids(p)
    m = b.member(district.union_a1)
    ballot = polls.cast_ballot(m.user, p.pk, [ids[1]], ip="10.20.30.40", device="d1")
    assert ballot.n == 1 and ballot.day == timezone.localdate(p.opens_at)
    assert ballot.ip_prefix == "10.20.30.0/24" and ballot.device == "d1"
    before = _rows()
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(m.user, p.pk, [ids[0]])
    assert _code(e) == "already_voted" and e.value.status == 409
    assert _rows() == before


@pytest.mark.django_db
def test_n_a_day_gives_exactly_n_slots_today_and_fresh_ones_tomorrow(district):
    p = b.poll(district.admin_a, district.street_a, ballots_per_day=3)
    ids = b.option_ids(p)
    m = b.member(district.union_a1)
    assert [polls.cast_ballot(m.user, p.pk, [ids[0]]).n for _ in range(3)] == [1, 2, 3]
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(m.user, p.pk, [ids[0]])
    assert _code(e) == "daily_limit_reached"
    # Yesterday's three ballots (moved back a day) leave today's slots free again.
    Ballot.objects.filter(voter=m.user).update(day=timezone.localdate() - dt.timedelta(days=1))
    assert polls.cast_ballot(m.user, p.pk, [ids[1]]).n == 1
    assert polls.voter_state(m.user, p)["left_today"] == 2


def test_the_ballot_day_turns_at_midnight_in_shanghai_not_utc():
    poll = Poll(ballots_per_day=2, opens_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    before = dt.datetime(2026, 3, 10, 23, 59, tzinfo=SHANGHAI)
    after = dt.datetime(2026, 3, 11, 0, 1, tzinfo=SHANGHAI)
    assert ballot_rules.ballot_day(poll, before) == (dt.date(2026, 3, 10), 2)
    assert ballot_rules.ballot_day(poll, after) == (dt.date(2026, 3, 11), 2)
    # 15:59 and 16:01 UTC are on either side of Shanghai's midnight.
    assert ballot_rules.ballot_day(poll, dt.datetime(2026, 3, 10, 15, 59, tzinfo=dt.UTC))[0] == dt.date(2026, 3, 10)
    assert ballot_rules.ballot_day(poll, dt.datetime(2026, 3, 10, 16, 1, tzinfo=dt.UTC))[0] == dt.date(2026, 3, 11)
    one = Poll(ballots_per_day=None, opens_at=dt.datetime(2026, 3, 1, 17, tzinfo=dt.UTC))
    assert ballot_rules.ballot_day(one, after) == (dt.date(2026, 3, 2), 1)  # the opening day, in Shanghai


@pytest.mark.django_db
@pytest.mark.parametrize(
    "choice",
    [[], [0], [10**9], ["1"], [1.0], [True], None, "1", [None]],
)
def test_invalid_choices_are_422_and_record_nothing(district, choice):
    p = b.poll(district.admin_a, district.street_a, max_choices=2)
    m = b.member(district.union_a1)
    before = _rows()
    with pytest.raises(Invalid) as e:
        polls.cast_ballot(m.user, p.pk, choice)
    assert _code(e) == "invalid_choice" and "option_ids" in e.value.fields
    assert _rows() == before


@pytest.mark.django_db
def test_duplicates_too_many_and_other_polls_options_are_invalid_choices(district):
    p = b.poll(district.admin_a, district.street_a, n_options=4, max_choices=2)
    other = b.poll(district.admin_a, district.street_a, title="另一个")
    ids = b.option_ids(p)
    m = b.member(district.union_a1)
    for choice in ([ids[0], ids[0]], ids[:3], [b.option_ids(other)[0]]):
        with pytest.raises(Invalid) as e:
            polls.cast_ballot(m.user, p.pk, choice)
        assert _code(e) == "invalid_choice"
    assert Ballot.objects.count() == 0
    ballot = polls.cast_ballot(m.user, p.pk, [ids[2], ids[0]])
    assert ballot.choices == f"{ids[0]},{ids[2]}"  # ascending
    res = polls.results(p)
    assert res["total_ballots"] == 1
    assert {o["id"]: o["votes"] for o in res["options"]} == {ids[0]: 1, ids[1]: 0, ids[2]: 1, ids[3]: 0}


@pytest.mark.django_db
def test_time_window_upcoming_and_closed(district):
    now = timezone.now()
    later = b.poll(district.admin_a, district.street_a, opens=now + dt.timedelta(hours=1))
    m = b.member(district.union_a1)
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(m.user, later.pk, [b.option_ids(later)[0]])
    assert _code(e) == "poll_not_open" and polls.status_of(later) == "upcoming"
    done = b.backdate(b.poll(district.admin_a, district.street_a), closes=now - dt.timedelta(minutes=1))
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(m.user, done.pk, [b.option_ids(done)[0]])
    assert _code(e) == "poll_closed" and polls.status_of(done) == "closed"
    with pytest.raises(NotFound):
        polls.cast_ballot(m.user, 10**9, [1])
    assert Ballot.objects.count() == 0


@pytest.mark.django_db
def test_account_rate_limit_429_counts_refused_attempts_too(district, settings):
    settings.VOTE_ACCOUNT_LIMIT = 3
    p = b.poll(district.admin_a, district.street_a)
    ids = b.option_ids(p)
    m = b.member(district.union_a1)
    polls.cast_ballot(m.user, p.pk, [ids[0]])
    for _ in range(2):
        with pytest.raises(DomainError) as e:
            polls.cast_ballot(m.user, p.pk, [ids[0]])
        assert _code(e) == "already_voted"
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(m.user, p.pk, [ids[0]])
    assert _code(e) == "rate_limited" and e.value.status == 429 and 1 <= e.value.retry_after <= 61
    assert Ballot.objects.count() == 1


@pytest.mark.django_db
def test_address_and_device_limits_are_per_poll(district, settings):
    settings.VOTE_IP_LIMIT = 2
    p = b.poll(district.admin_a, district.street_a, eligibility="everyone")
    other = b.poll(district.admin_a, district.street_a, eligibility="everyone", title="另一个")
    voters = [b.follower() for _ in range(4)]
    for v in voters[:2]:
        polls.cast_ballot(v, p.pk, [b.option_ids(p)[0]], ip="192.168.1.9")
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(voters[2], p.pk, [b.option_ids(p)[0]], ip="192.168.1.9")
    assert _code(e) == "rate_limited"
    polls.cast_ballot(voters[2], p.pk, [b.option_ids(p)[0]], ip="192.168.1.10")  # another address
    polls.cast_ballot(voters[3], other.pk, [b.option_ids(other)[0]], ip="192.168.1.9")  # another poll
    assert Ballot.objects.filter(poll=p).count() == 3
    assert RateCount.objects.filter(key__startswith=f"ballot:ip:{p.pk}:").exists()
    settings.VOTE_IP_LIMIT = 3000
    settings.VOTE_DEVICE_LIMIT = 1
    third = b.poll(district.admin_a, district.street_a, eligibility="everyone", title="第三个")
    a, c = b.follower(), b.follower()
    polls.cast_ballot(a, third.pk, [b.option_ids(third)[0]], ip="10.0.0.1", device="shared")
    with pytest.raises(DomainError) as e:
        polls.cast_ballot(c, third.pk, [b.option_ids(third)[0]], ip="10.0.0.2", device="shared")
    assert _code(e) == "rate_limited"
    polls.cast_ballot(c, other.pk, [b.option_ids(other)[0]], ip="10.0.0.2", device="shared")  # another poll
    assert Ballot.objects.filter(poll=third).count() == 1


def test_rate_keys_are_sorted_so_transactions_take_them_in_one_order():
    keys = [k for k, *_ in ballot_rules.ratelimit.keys_for(7, 3, "1.2.3.4", "dev", now=1_000_000)]
    assert keys == sorted(keys) and len(keys) == 3


def test_receipts_are_12_characters_without_look_alikes():
    codes = {receipts.new_receipt() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 12 and not set(c) & set("01OIL") for c in codes)
    assert receipts.normalize(" abcd-efgh jkmn ") == "ABCDEFGHJKMN"
    assert receipts.display("ABCDEFGHJKMN") == "ABCD-EFGH-JKMN"


# --- results and the voter's page -----------------------------------------------------------------


@pytest.mark.django_db
def test_results_visibility_live_after_close_and_cadres(district):
    live = b.poll(district.admin_a, district.street_a)
    hidden = b.poll(district.admin_a, district.street_a, results="after_close", title="结束后公布")
    member = b.member(district.union_a1).user
    fan = b.follower()
    assert polls.can_see_results(member, live)
    assert not polls.can_see_results(fan, live)  # not eligible in a members poll
    assert not polls.can_see_results(member, hidden)
    with pytest.raises(Forbidden) as e:
        polls.results_for(member, hidden)
    assert _code(e) == "results_hidden"
    assert polls.can_see_results(district.staff_a, hidden) and polls.can_see_results(district.district_admin, hidden)
    assert not polls.can_see_results(district.admin_b, hidden)
    polls.close_poll(district.admin_a, hidden)
    hidden.refresh_from_db()
    assert polls.can_see_results(member, hidden)


@pytest.mark.django_db
def test_voter_state_says_why_not_and_how_many_left(district):
    p = b.poll(district.admin_a, district.street_a, ballots_per_day=2)
    ids = b.option_ids(p)
    m = b.member(district.union_a1).user
    state = polls.voter_state(m, p)
    assert state["can_vote"] and state["left_today"] == 2 and state["last_receipt"] == ""
    ballot = polls.cast_ballot(m, p.pk, [ids[0]])
    state = polls.voter_state(m, p)
    assert state["left_today"] == 1 and state["last_receipt"] == ballot.receipt
    polls.cast_ballot(m, p.pk, [ids[0]])
    state = polls.voter_state(m, p)
    assert not state["can_vote"] and state["reason"] == "daily_limit_reached" and state["reason_text"]
    fan_state = polls.voter_state(b.follower(), p)
    assert not fan_state["can_vote"] and fan_state["reason"] == "not_eligible"
    assert [x.receipt for x in polls.my_ballots(m, p)][0] == ballot.receipt


# --- close, seal, recount, receipts ----------------------------------------------------------------


def _voted_poll(district, n_voters: int = 5, **kw):
    p = b.poll(district.admin_a, district.street_a, **kw)
    ids = b.option_ids(p)
    voters = [b.member(district.union_a1) for _ in range(n_voters)]
    made = [polls.cast_ballot(v.user, p.pk, [ids[i % len(ids)]]) for i, v in enumerate(voters)]
    return p, ids, made


@pytest.mark.django_db
def test_close_early_is_recorded_then_sealed_with_tally_and_chain(district):
    p, ids, made = _voted_poll(district)
    with pytest.raises(Forbidden):
        polls.close_poll(district.staff_a, p)
    with pytest.raises(NotFound):
        polls.close_poll(district.admin_b, p)
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    assert p.closed_early and p.closed_at is not None and polls.status_of(p) == "closed"
    votes = [{"id": i, "votes": v} for i, v in zip(ids, [2, 2, 1], strict=True)]
    assert p.published_tally == {"total_ballots": 5, "options": votes}
    assert len(p.chain_head) == 64 and p.chain_length == 5 and p.sealed_at is not None
    assert polls.results(p) == p.published_tally
    with pytest.raises(DomainError) as e:
        polls.close_poll(district.admin_a, p)
    assert _code(e) == "already_closed"
    assert not polls.seal(p)  # never twice
    rc = polls.recount(p)
    assert rc.tally_matches and rc.chain_matches and rc.first_bad_checkpoint is None and rc.ballots == 5


@pytest.mark.django_db
def test_polls_past_their_close_are_sealed_by_the_command_or_when_read(district):
    p, ids, _ = _voted_poll(district, 3)
    b.backdate(p, closes=timezone.now() - dt.timedelta(seconds=1))
    q, _, _ = _voted_poll(district, 2)
    b.backdate(q, closes=timezone.now() - dt.timedelta(seconds=1))
    assert polls.seal_due_polls() == [p.pk, q.pk]
    p.refresh_from_db()
    assert p.chain_head and p.closed_at == p.closes_at and not p.closed_early
    r, _, _ = _voted_poll(district, 2)
    b.backdate(r, closes=timezone.now() - dt.timedelta(seconds=1))
    assert polls.results(r)["total_ballots"] == 2  # read after close: sealed on the way
    r.refresh_from_db()
    assert r.chain_head and r.published_tally["total_ballots"] == 2


@pytest.mark.django_db
def test_the_chain_is_reproducible_from_the_public_receipts(district):
    import hashlib
    import json

    p, ids, made = _voted_poll(district, 4)
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    record = polls.public_record(p)
    h = hashlib.sha256(f"unionhome-poll:{p.pk}".encode()).hexdigest()
    for ballot in record["ballots"]:
        h = hashlib.sha256((h + json.dumps(ballot, separators=(",", ":"))).encode()).hexdigest()
    assert h == p.chain_head == record["chain"]["head"]
    page = polls.receipts_page(p, 1, 2)
    assert page["count"] == 4 and [i["receipt"] for i in page["items"]] == [m.receipt for m in made[:2]]
    found = polls.find_receipt(p, receipts.display(made[3].receipt).lower())
    assert found["receipt"] == made[3].receipt and found["choices"] == [ids[0]] and not found["voided"]
    assert polls.find_receipt(p, "ZZZZZZZZZZZZ") is None


@pytest.mark.django_db
def test_receipts_list_only_after_close(district):
    p, _, _ = _voted_poll(district, 1)
    with pytest.raises(DomainError) as e:
        polls.receipts_page(p, 1, 10)
    assert _code(e) == "not_closed"


@pytest.mark.django_db
@pytest.mark.parametrize("tamper", ["delete", "change_choice", "change_receipt", "insert"])
def test_tampering_after_close_is_caught_by_the_recount(district, tamper):
    p, ids, made = _voted_poll(district, 5)
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    victim = made[2]
    if tamper == "delete":
        Ballot.objects.filter(pk=victim.pk).delete()
    elif tamper == "change_choice":
        Ballot.objects.filter(pk=victim.pk).update(choices=str(ids[0] if victim.choices != str(ids[0]) else ids[1]))
    elif tamper == "change_receipt":
        Ballot.objects.filter(pk=victim.pk).update(receipt="TAMPERED2345")
    else:
        intruder = b.member(district.union_a1).user
        Ballot.objects.create(
            poll=p,
            voter=intruder,
            day=victim.day,
            n=1,
            choices=str(ids[0]),
            receipt="INSERTED2345",
            created_at=timezone.now(),
        )
    rc = polls.recount(p)
    assert not rc.chain_matches
    assert rc.first_bad_checkpoint is not None
    assert rc.tally_matches is (tamper == "change_receipt")


@pytest.mark.django_db
def test_a_seal_publishes_the_recount_when_counters_were_wrong(district, caplog):
    p, ids, _ = _voted_poll(district, 3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE votes_optioncount SET votes = votes + 7 WHERE option_id = %s AND shard = 0", [ids[0]])
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    assert p.published_tally["options"][0]["votes"] == 1  # from the ballots, not the counters
    assert "disagree" in caplog.text


# --- photos ----------------------------------------------------------------------------------------


def _image(fmt: str, size=(1600, 1200), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None).save(out, fmt)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_photos_are_reencoded_as_small_jpegs(district, fmt, tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": str(tmp_path)}},
    }
    p = b.poll(district.admin_a, district.street_a)
    option = p.options.first()
    upload = SimpleUploadedFile("photo.bin", _image(fmt), content_type="application/octet-stream")
    polls.set_option_photo(district.admin_a, option, upload)
    option.refresh_from_db()
    with option.photo.open("rb") as f, Image.open(f) as img:
        assert img.format == "JPEG" and max(img.size) == 800


@pytest.mark.django_db
def test_photos_refuse_non_images_big_files_and_strangers(district, tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {"location": str(tmp_path)}},
    }
    p = b.poll(district.admin_a, district.street_a)
    option = p.options.first()
    for upload in (
        SimpleUploadedFile("x.jpg", b"<html>not an image</html>"),
        SimpleUploadedFile("x.jpg", b"GIF89a" + b"\0" * 10),
        SimpleUploadedFile("x.jpg", b"\xff" * (5 * 1024 * 1024 + 1)),
        SimpleUploadedFile("x.bmp", _image("BMP", (20, 20))),
    ):
        with pytest.raises(Invalid) as e:
            polls.set_option_photo(district.admin_a, option, upload)
        assert "photo" in e.value.fields
    with pytest.raises(NotFound):
        polls.set_option_photo(district.admin_b, option, SimpleUploadedFile("a.png", _image("PNG")))
    option.refresh_from_db()
    assert not option.photo


@pytest.mark.django_db
def test_the_streamed_record_is_the_same_document(district):
    import json

    p, ids, made = _voted_poll(district, 7)
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    streamed = json.loads("".join(polls.public_record_chunks(p, chunk=3)))
    assert streamed == json.loads(json.dumps(polls.public_record(p)))
    assert len(streamed["ballots"]) == 7


@pytest.mark.django_db
def test_sqlite_inserts_a_ballot_only_while_the_poll_is_open_inside_the_writer_lock(district):
    """On SQLite the poll is checked before the writer lock; the insert itself re-checks the close."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL holds the poll FOR KEY SHARE instead")
    p = b.poll(district.admin_a, district.street_a)
    m = b.member(district.union_a1)
    db = ballot_rules.DriverCursor()
    row = [
        p.pk,
        m.user_id,
        "2026-01-01",
        1,
        str(b.option_ids(p)[0]),
        "GUARD2345678",
        "2026-01-01 00:00:00",
        None,
        "",
        "",
    ]
    Poll.objects.filter(pk=p.pk).update(closed_at=timezone.now())
    now = sqlite_dt(timezone.now())
    assert db.run(ballot_rules._INSERT_IF_OPEN_SQL, [*row, False, p.pk, now]).fetchone() is None
    Poll.objects.filter(pk=p.pk).update(closed_at=None)
    late = sqlite_dt(p.closes_at + dt.timedelta(seconds=1))  # past closes_at: refused too
    assert db.run(ballot_rules._INSERT_IF_OPEN_SQL, [*row, False, p.pk, late]).fetchone() is None
    assert db.run(ballot_rules._INSERT_IF_OPEN_SQL, [*row, False, p.pk, now]).fetchone() is not None
    db.close()
