"""积分抽奖 as a specification: commitment, deterministic and verifiable draw, caps, window, points."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections import Counter

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.errors import DomainError, Forbidden, Invalid, NotFound
from points.models import Account, AccountKind, MovementKind
from points.services import ledger
from rewards.models import LotteryEntry, LotteryStatus, PickupStatus, Win
from rewards.services import lottery as lotteries
from rewards.services.lottery import compute_winners

from .lottery_builders import close_now, members, open_lottery

pytestmark = pytest.mark.django_db


def drawn_lottery(district, n_members=6, prizes=(("一等奖", 1), ("二等奖", 2)), **kw):
    ms = members(district, n_members)
    lottery = open_lottery(district, prizes=prizes, **kw)
    for m in ms:
        lotteries.enter(m.user, lottery.pk)
    close_now(lottery)
    return lotteries.draw(district.district_admin, lottery.pk), ms


def verify(lottery_id: int, json_file: str | None = None) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    args = [str(lottery_id)] + (["--json", json_file] if json_file else [])
    try:
        call_command("verify_lottery", *args, stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


# --- the commitment -------------------------------------------------------------------------------


def test_the_commitment_is_the_sha256_of_the_seed_published_at_the_draw(district):
    lottery, _ms = drawn_lottery(district)
    assert len(lottery.seed) == 64
    assert hashlib.sha256(lottery.seed.encode()).hexdigest() == lottery.commitment


def test_the_seed_is_not_published_before_the_draw(district, client):
    lottery = open_lottery(district)
    record = lotteries.public_record(lottery)
    assert record["seed"] is None and record["winners"] == []
    assert lottery.seed == ""
    body = client.get(f"/api/v1/lotteries/{lottery.pk}/record").content.decode()
    from core import pii

    assert pii.decrypt(lottery.seed_enc) not in body


def test_creating_checks_times_and_quantities(district):
    now = timezone.now()
    with pytest.raises(Invalid):
        open_lottery(district, opens_at=now, closes_at=now - dt.timedelta(hours=1))
    with pytest.raises(Invalid):
        open_lottery(district, closes_at=now + dt.timedelta(days=1), draw_at=now)
    with pytest.raises(Invalid):
        open_lottery(district, prizes=[("奖", 0)])
    with pytest.raises(Invalid):
        open_lottery(district, prizes=[])
    with pytest.raises(Invalid):
        open_lottery(district, cost=0)
    with pytest.raises(Forbidden):
        lotteries.create_lottery(
            district.staff_a,
            district.street_a,
            title="x",
            entry_cost=1,
            prizes=[("a", 1)],
            opens_at=now,
            closes_at=now + dt.timedelta(days=1),
        )


# --- the algorithm --------------------------------------------------------------------------------


def test_the_algorithm_is_deterministic_and_follows_the_documented_steps():
    seed = "ab" * 32
    entries = [5, 3, 9, 12, 40]
    prizes = [(100, 1), (200, 2)]
    first = compute_winners(seed, entries, prizes, {})
    assert first == compute_winners(seed, list(reversed(entries)), prizes, {})  # order of input does not matter
    # by hand: slot k picks remaining[sha256(f"{seed}:{k}") % len(remaining)] from the sorted list
    remaining, expect = sorted(entries), []
    for k, prize in enumerate([100, 200, 200]):
        h = int(hashlib.sha256(f"{seed}:{k}".encode()).hexdigest(), 16)
        expect.append((remaining.pop(h % len(remaining)), prize))
    assert first == expect


def test_one_prize_per_member_whatever_their_number_of_entries():
    entries = list(range(1, 31))
    owners = {e: e % 3 for e in entries}  # three entrants holding ten entries each
    for seed in ("a" * 64, "b" * 64, "c" * 64, "0123" * 16):
        winners = compute_winners(seed, entries, [(1, 5), (2, 5)], owners)
        assert len(winners) == 3
        assert len({owners[e] for e, _p in winners}) == 3


def test_prize_quantities_are_never_exceeded_and_nobody_wins_twice():
    for n in (1, 2, 7, 50, 500):
        winners = compute_winners("9f" * 32, range(1, n + 1), [(1, 1), (2, 3), (3, 20)], {})
        per_prize = Counter(p for _e, p in winners)
        assert per_prize[1] <= 1 and per_prize[2] <= 3 and per_prize[3] <= 20
        assert len(winners) == min(n, 24)
        assert len({e for e, _p in winners}) == len(winners)


def test_fewer_entries_than_prizes_awards_in_prize_order_and_leaves_the_rest(district):
    lottery, ms = drawn_lottery(district, n_members=2, prizes=(("一等奖", 1), ("二等奖", 3), ("三等奖", 20)))
    wins = list(Win.objects.filter(entry__lottery=lottery).select_related("prize"))
    assert sorted(w.prize.name for w in wins) == ["一等奖", "二等奖"]
    assert {w.entry.user_id for w in wins} == {m.user_id for m in ms}


def test_a_lottery_without_entries_draws_to_no_winners(district):
    lottery = open_lottery(district)
    close_now(lottery)
    lottery = lotteries.draw(None, lottery.pk)
    assert lottery.status == LotteryStatus.DRAWN and not Win.objects.exists()
    assert verify(lottery.pk)[0] == 0


# --- drawing and verifying ------------------------------------------------------------------------


def test_the_draw_matches_the_pure_algorithm_and_verify_lottery_passes(district):
    lottery, _ms = drawn_lottery(district, n_members=8)
    record = lotteries.public_record(lottery)
    entries = [e["id"] for e in record["entries"]]
    again = compute_winners(
        lottery.seed,
        entries,
        [(p["id"], p["quantity"]) for p in record["prizes"]],
        {e["id"]: e["m"] for e in record["entries"]},
    )
    assert sorted(again) == sorted((w["entry_id"], w["prize_id"]) for w in record["winners"])
    assert len(record["winners"]) == 3
    code, out = verify(lottery.pk)
    assert code == 0, out
    assert "OK" in out


def test_verify_lottery_checks_a_downloaded_record_and_fails_when_a_winner_is_swapped(district, tmp_path, client):
    lottery, _ms = drawn_lottery(district, n_members=8)
    record = json.loads(client.get(f"/lotteries/{lottery.pk}/record.json").content)
    good = tmp_path / "record.json"
    good.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    assert verify(lottery.pk, str(good))[0] == 0

    won = {w["entry_id"] for w in record["winners"]}
    loser = next(e["id"] for e in record["entries"] if e["id"] not in won)
    record["winners"][0]["entry_id"] = loser
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    code, out = verify(lottery.pk, str(bad))
    assert code == 1
    assert "MISMATCH" in out


def test_verify_lottery_fails_when_the_seed_does_not_match_the_commitment(district, tmp_path):
    lottery, _ms = drawn_lottery(district)
    record = lotteries.public_record(lottery)
    record["commitment"] = "0" * 64
    f = tmp_path / "r.json"
    f.write_text(json.dumps(record), encoding="utf-8")
    assert verify(lottery.pk, str(f))[0] == 1


def test_drawing_before_the_draw_time_is_refused(district):
    ms = members(district, 2)
    lottery = open_lottery(district)
    lotteries.enter(ms[0].user, lottery.pk)
    with pytest.raises(DomainError) as e:
        lotteries.draw(district.district_admin, lottery.pk)
    assert e.value.code == "not_yet" and e.value.status == 409
    lottery.refresh_from_db()
    assert lottery.status == LotteryStatus.OPEN and lottery.seed == ""


def test_a_second_draw_is_refused_and_changes_nothing(district):
    lottery, _ms = drawn_lottery(district)
    wins = list(Win.objects.values_list("entry_id", "prize_id", "code"))
    with pytest.raises(DomainError) as e:
        lotteries.draw(district.district_admin, lottery.pk)
    assert e.value.code == "already_drawn"
    assert list(Win.objects.values_list("entry_id", "prize_id", "code")) == wins


def test_only_an_admin_of_the_lottery_org_may_draw(district):
    ms = members(district, 2)
    lottery = open_lottery(district, org=district.street_a)
    lotteries.enter(ms[0].user, lottery.pk)
    close_now(lottery)
    with pytest.raises(NotFound):
        lotteries.draw(district.admin_b, lottery.pk)
    with pytest.raises(Forbidden):
        lotteries.draw(district.staff_a, lottery.pk)
    assert lotteries.draw(district.admin_a, lottery.pk).status == LotteryStatus.DRAWN


def test_draw_lotteries_draws_every_due_lottery_once(district):
    ms = members(district, 3)
    due, later = open_lottery(district), open_lottery(district)
    for m in ms:
        lotteries.enter(m.user, due.pk)
    close_now(due)
    out = io.StringIO()
    call_command("draw_lotteries", stdout=out)
    due.refresh_from_db(), later.refresh_from_db()
    assert due.status == LotteryStatus.DRAWN and later.status == LotteryStatus.OPEN
    call_command("draw_lotteries", stdout=io.StringIO())
    assert Win.objects.count() == 3


# --- entering -------------------------------------------------------------------------------------


def test_entering_moves_the_cost_to_the_pool(district):
    (m,) = members(district, 1, points=100)
    lottery = open_lottery(district, cost=30)
    entry = lotteries.enter(m.user, lottery.pk)
    assert entry.n == 1 and entry.movement.kind == MovementKind.LOTTERY_ENTRY
    assert ledger.balance_of(m.user) == 70
    assert ledger.lottery_account(lottery.pk).balance == 30


def test_the_entry_cap_holds(district):
    (m,) = members(district, 1, points=100)
    lottery = open_lottery(district)
    lotteries.enter(m.user, lottery.pk)
    with pytest.raises(DomainError) as e:
        lotteries.enter(m.user, lottery.pk)
    assert e.value.code == "limit_reached" and e.value.status == 409
    assert ledger.balance_of(m.user) == 90
    three = open_lottery(district, max_entries_per_member=3)
    assert [lotteries.enter(m.user, three.pk).n for _ in range(3)] == [1, 2, 3]
    with pytest.raises(DomainError):
        lotteries.enter(m.user, three.pk)
    assert ledger.balance_of(m.user) == 60


def test_entering_outside_the_window_is_refused(district):
    (m,) = members(district, 1)
    now = timezone.now()
    early = open_lottery(district, opens_at=now + dt.timedelta(hours=1), closes_at=now + dt.timedelta(days=1))
    with pytest.raises(DomainError) as e:
        lotteries.enter(m.user, early.pk)
    assert e.value.code == "not_available"
    late = open_lottery(district)
    close_now(late)
    with pytest.raises(DomainError) as e:
        lotteries.enter(m.user, late.pk)
    assert e.value.code == "not_available"
    assert ledger.balance_of(m.user) == 1000 and not LotteryEntry.objects.exists()


def test_insufficient_points_moves_nothing(district):
    (m,) = members(district, 1, points=5)
    lottery = open_lottery(district, cost=10)
    with pytest.raises(DomainError) as e:
        lotteries.enter(m.user, lottery.pk)
    assert e.value.code == "insufficient_points"
    assert ledger.balance_of(m.user) == 5 and not LotteryEntry.objects.exists()


def test_scope_and_eligibility(district):
    from conftest import make_user

    (other,) = members(district, 1, org=district.union_b1)
    lottery = open_lottery(district, org=district.street_a)
    with pytest.raises(NotFound):
        lotteries.enter(other.user, lottery.pk)
    follower = make_user("粉丝")
    with pytest.raises(NotFound):  # a members-only lottery is not found by a follower, as a missing one
        lotteries.enter(follower, lottery.pk)
    uncertified = members(district, 1, points=0)[0]
    uncertified.certified_at = None
    uncertified.save()
    with pytest.raises(Forbidden):
        lotteries.enter(uncertified.user, lottery.pk)


# --- losers' points -------------------------------------------------------------------------------


@pytest.mark.parametrize("refund", [False, True])
def test_losers_are_refunded_only_when_the_lottery_says_so(district, refund):
    lottery, ms = drawn_lottery(district, n_members=5, prizes=(("奖", 2),), refund_losers=refund, cost=10)
    winners = set(Win.objects.values_list("entry__user_id", flat=True))
    assert len(winners) == 2
    for m in ms:
        expected = 990 if m.user_id in winners or not refund else 1000
        assert ledger.balance_of(m.user) == expected
    pool = Account.objects.get(kind=AccountKind.LOTTERY, ref=lottery.pk)
    assert pool.balance == (20 if refund else 50)
    refunded = LotteryEntry.objects.filter(lottery=lottery, refund__isnull=False)
    assert refunded.count() == (3 if refund else 0)
    assert all(e.refund.kind == MovementKind.LOTTERY_REFUND for e in refunded)
    out = io.StringIO()
    call_command("reconcile_points", stdout=out)


# --- prize pickup ---------------------------------------------------------------------------------


def test_a_pickup_code_works_once_and_only_in_the_lottery_subtree(district):
    lottery, _ms = drawn_lottery(district, org=district.street_a)
    win = Win.objects.first()
    with pytest.raises(NotFound):
        lotteries.verify_win_pickup(district.admin_b, win.code)
    done = lotteries.verify_win_pickup(district.staff_a, win.code.lower())
    assert done.status == PickupStatus.PICKED_UP and done.picked_up_by == district.staff_a
    with pytest.raises(DomainError) as e:
        lotteries.verify_win_pickup(district.admin_a, win.code)
    assert e.value.code == "already_picked_up" and e.value.status == 409
    with pytest.raises(NotFound):
        lotteries.verify_win_pickup(district.admin_a, "NOSUCHCODE")


# --- the public record ----------------------------------------------------------------------------


def test_the_public_record_names_nobody(district, client):
    lottery, ms = drawn_lottery(district, n_members=3)
    record = client.get(f"/api/v1/lotteries/{lottery.pk}/record")
    assert record.status_code == 200
    page = client.get(f"/lotteries/{lottery.pk}/")
    download = client.get(f"/lotteries/{lottery.pk}/record.json")
    for body in (record.content.decode(), page.content.decode(), download.content.decode()):
        for m in ms:
            assert m.user.phone not in body
            assert m._id_number not in body
            assert m.name not in body
    data = record.json()
    assert {e["member"] for e in data["entries"]} == {"成*"}
    assert set(data) >= {"id", "title", "org", "commitment", "status", "prizes", "entries", "seed", "winners"}
