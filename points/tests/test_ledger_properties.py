"""Property: no sequence of mints, allocations, grants, earnings, redemptions, cancellations,
pickups, expiries and lotteries (create, enter, draw) breaks the ledger.

After every step: all entries sum to zero (and every movement is balanced), no balance but the
issuance account's is negative, every stored balance equals the sum of its entries, no stock is
negative and stock + live redemptions = stock_total. No prize is won more often than its quantity, nobody wins
twice in one lottery, every drawn lottery's winners are what compute_winners gives on its public
record, and losing entries are refunded exactly when the lottery says so. A refused step changes nothing at all, and
members' balances follow a simple model of what each successful step should do to them.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import forget_remembered_reads, make_member, make_user
from core.errors import DomainError
from points.models import Account, AccountKind, Entry, Movement
from points.services import budgets, earning, expiry, ledger
from rewards.models import Lottery, LotteryEntry, LotteryStatus, PickupStatus, Prize, Redemption, Reward, Win
from rewards.services import lottery, mall

from .helpers import assert_ledger_sound

# (giver, receiver) names: every pair where the receiver is a descendant, plus a few that are not.
PAIRS = [
    ("root", "street_a"),
    ("root", "street_b"),
    ("root", "union_a1"),
    ("street_a", "union_a1"),
    ("street_a", "union_a2"),
    ("street_b", "union_b1"),
    ("street_a", "union_b1"),  # not a descendant: refused
    ("union_a1", "street_a"),  # upwards: refused
]
GRANT_ORGS = ["root", "street_a", "union_a1", "street_b"]
PEOPLE = 6  # m0, m1 in A1; m2 in A2; m3 in B1; m4 uncertified in A1; a follower
REWARDS = 4
ACTIONS = ["checkin", "read_article"]
LOTTERY_ORGS = ["root", "street_a", "union_b1", "street_b"]
# admin_a does not cover union_b1 or root, admin_b not street_a: refused. Mostly the district admin.
ADMINS = st.sampled_from(["district_admin", "district_admin", "district_admin", "admin_a", "admin_b"])

ledger_ops = st.one_of(
    st.tuples(st.just("mint"), st.integers(1, 2000)),
    st.tuples(st.just("allocate"), st.sampled_from(PAIRS), st.integers(1, 800)),
    st.tuples(
        st.just("grant"),
        st.sampled_from(GRANT_ORGS),
        st.one_of(st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True), st.lists(st.integers(0, 5))),
        st.integers(1, 300),
    ),
    st.tuples(st.just("redeem"), st.integers(0, PEOPLE - 1), st.integers(0, REWARDS - 1)),
    st.tuples(st.just("redeem"), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("cancel"), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("pickup"), st.integers(0, 99)),
    st.tuples(st.just("earn"), st.integers(0, PEOPLE - 1), st.sampled_from(ACTIONS), st.integers(0, 2)),
    st.tuples(st.just("expire"), st.integers(0, 400)),
)
lottery_ops = st.one_of(
    st.tuples(
        st.just("lottery"),
        st.sampled_from(LOTTERY_ORGS),
        ADMINS,
        st.integers(1, 150),
        st.one_of(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.lists(st.integers(0, 3), max_size=3)),
        st.integers(1, 3),
        st.booleans(),
        st.sampled_from(["members", "everyone"]),
    ),
    st.tuples(st.just("enter"), st.integers(0, PEOPLE - 1), st.integers(0, 9)),
    st.tuples(st.just("enter"), st.integers(0, 3), st.integers(0, 9)),
    st.tuples(st.just("enter"), st.integers(0, 3), st.integers(0, 9)),
    st.tuples(st.just("enter"), st.integers(0, 3), st.integers(0, 9)),
    st.tuples(st.just("draw"), st.integers(0, 9), ADMINS),
)
ops = st.one_of(ledger_ops, lottery_ops)  # half the steps are lottery steps


class World:
    def __init__(self, d):
        self.d = d
        self.people = [
            make_member(d.union_a1, "甲一一").user,
            make_member(d.union_a1, "甲一二").user,
            make_member(d.union_a2, "甲二").user,
            make_member(d.union_b1, "乙一").user,
            make_member(d.union_a1, "未认证", certified=False).user,
            make_user("粉丝"),
        ]
        now = timezone.now()
        self.rewards = [
            mall.create_reward(d.admin_a, d.street_a, title="毛巾", cost=50, stock=3, per_member_limit=2).pk,
            mall.create_reward(d.district_admin, d.root, title="电影票", cost=120, stock=2, eligibility="everyone").pk,
            mall.create_reward(d.admin_b, d.union_b1, title="米", cost=30, stock=4, per_member_limit=3).pk,
            mall.create_reward(
                d.admin_a, d.street_a, title="过期", cost=10, stock=9, ends_at=now - dt.timedelta(days=1)
            ).pk,
        ]
        # A funded start, so most steps can succeed: budgets at several levels, points in pockets.
        budgets.mint(d.district_admin, d.root, 6000, "发行")
        for org in (d.street_a, d.street_b, d.union_a1):
            budgets.allocate(d.district_admin, d.root, org, 1000, "下拨")
        budgets.grant(d.district_admin, d.root, [u.pk for u in self.people[:4]], 200, "起始积分")
        earning.set_rule(d.district_admin, d.root, "checkin", 10, daily_cap=3)
        earning.set_rule(d.admin_a, d.street_a, "read_article", 25, daily_cap=5)
        self.due = timezone.localdate() + dt.timedelta(days=5)
        if (self.due.month, self.due.day) == (2, 29):
            self.due += dt.timedelta(days=1)
        expiry.set_policy(d.admin_a, d.street_a, self.due.month, self.due.day)
        first = lottery.create_lottery(  # one open lottery with entries from the start, so a draw has winners
            d.district_admin,
            d.root,
            title="年终抽奖",
            entry_cost=40,
            prizes=[("一等奖", 1), ("二等奖", 2)],
            opens_at=now - dt.timedelta(hours=1),
            closes_at=now + dt.timedelta(days=1),
            max_entries_per_member=2,
            refund_losers=True,
            eligibility="everyone",
        )
        for i in (0, 1, 1, 3):
            lottery.enter(self.people[i], first.pk)


def _snapshot():
    return (
        Movement.objects.count(),
        Entry.objects.count(),
        {pk: b for pk, b in Account.objects.values_list("pk", "balance") if b},
        list(Reward.objects.order_by("pk").values_list("stock")),
        list(Redemption.objects.order_by("pk").values_list("status")),
        list(Lottery.objects.order_by("pk").values_list("pk", "status", "seed", "opens_at", "closes_at")),
        list(LotteryEntry.objects.order_by("pk").values_list("pk", "refund")),
        list(Win.objects.order_by("pk").values_list("pk", "entry", "prize")),
        Prize.objects.count(),
    )


def _balances(people) -> list[int]:
    return [ledger.balance_of(u) for u in people]


def _check_invariants() -> None:
    assert_ledger_sound()
    for r in Reward.objects.annotate(live=Count("redemptions", filter=~Q(redemptions__status=PickupStatus.CANCELLED))):
        assert r.stock >= 0
        assert r.stock + r.live == r.stock_total, (r.title, r.stock, r.live, r.stock_total)
    for p in Prize.objects.annotate(n_wins=Count("wins")):
        assert p.n_wins <= p.quantity, (p.pk, p.n_wins, p.quantity)
    for lot in Lottery.objects.select_related("org"):
        entries = list(LotteryEntry.objects.filter(lottery=lot).values_list("pk", "user_id", "refund_id"))
        wins = sorted(Win.objects.filter(entry__lottery=lot).values_list("entry_id", "prize_id"))
        pool = Account.objects.filter(kind=AccountKind.LOTTERY, ref=lot.pk).values_list("balance", flat=True)
        refunded = sum(1 for _e, _u, r in entries if r)
        assert (pool.first() or 0) == lot.entry_cost * (len(entries) - refunded), lot.pk
        if lot.status != LotteryStatus.DRAWN:
            assert not wins and not refunded and lot.seed in ("", None), lot.pk
            continue
        rec = lottery.public_record(lot)
        assert lottery.commitment_of(rec["seed"]) == rec["commitment"]
        prizes = sorted(rec["prizes"], key=lambda p: (p["position"], p["id"]))
        expected = lottery.compute_winners(
            rec["seed"],
            [e["id"] for e in rec["entries"]],
            [(p["id"], p["quantity"]) for p in prizes],
            {e["id"]: e["m"] for e in rec["entries"]},
        )
        assert sorted(expected) == wins, (lot.pk, expected, wins)
        assert lottery.verify_record(rec) == (True, [])
        won = {e for e, _p in wins}
        by_entry = {e: u for e, u, _r in entries}
        assert len({by_entry[e] for e in won}) == len(won), "someone won twice"
        for e, _u, r in entries:
            assert bool(r) == (lot.refund_losers and e not in won), (lot.pk, e, r)


def _step(w: World, op: tuple, model: list[int], day: list[dt.date]) -> None:
    d, kind = w.d, op[0]
    if kind == "mint":
        budgets.mint(d.district_admin, d.root, op[1], "发行")
    elif kind == "allocate":
        (giver, receiver), amount = op[1], op[2]
        budgets.allocate(d.district_admin, getattr(d, giver), getattr(d, receiver), amount, "下拨")
    elif kind == "grant":
        org, who, amount = getattr(d, op[1]), op[2], op[3]
        budgets.grant(d.district_admin, org, [w.people[i].pk for i in who], amount, "发放")
        for i in who:
            model[i] += amount
    elif kind == "redeem":
        user = w.people[op[1]]
        r = mall.redeem(user, w.rewards[op[2]])
        model[op[1]] -= r.cost
    elif kind == "cancel":
        live = list(Redemption.objects.order_by("pk"))
        if not live:
            raise DomainError("nothing_yet", "no redemption yet")
        r = live[op[1] % len(live)]
        actor = r.user if op[2] else d.district_admin
        mall.cancel(actor, r.pk)
        model[w.people.index(r.user)] += r.cost
    elif kind == "pickup":
        live = list(Redemption.objects.order_by("pk").select_related("reward__org"))
        if not live:
            raise DomainError("nothing_yet", "no redemption yet")
        mall.verify_pickup(d.district_admin, live[op[1] % len(live)].code)
    elif kind == "earn":
        i, action, ref = op[1], op[2], op[3]
        user = w.people[i]
        earning.earn(user, action, ref=f"article:{ref}" if action == "read_article" else "")
        model[i] += earning.rule_for(user.member.org, action).amount
    elif kind == "expire":
        day[0] += dt.timedelta(days=op[1])
        expiry.expire_due(day[0])
        now = _balances(w.people)
        for i, (was, is_) in enumerate(zip(model, now, strict=True)):
            if was != is_:  # only members under the policy (street A) lose points, and all of them
                assert is_ == 0 and w.people[i].member.org.path.startswith(d.street_a.path), (i, was, is_)
                model[i] = 0
    elif kind == "lottery":
        org, admin, cost, qtys, cap, refund, elig = op[1:]
        now = timezone.now()
        lottery.create_lottery(
            getattr(d, admin),
            getattr(d, org),
            title="抽奖",
            entry_cost=cost,
            prizes=[(f"奖{i}", q) for i, q in enumerate(qtys)],
            opens_at=now - dt.timedelta(hours=1),
            closes_at=now + dt.timedelta(days=1),
            max_entries_per_member=cap,
            refund_losers=refund,
            eligibility=elig,
        )
    elif kind in ("enter", "draw"):
        lots = list(Lottery.objects.order_by("pk"))
        if not lots:
            raise DomainError("nothing_yet", "no lottery yet")
        lot = lots[op[2 if kind == "enter" else 1] % len(lots)]
        if kind == "enter":
            lottery.enter(w.people[op[1]], lot.pk)
            model[op[1]] -= lot.entry_cost
        else:  # move its clock to the past, as lottery_builders.close_now does, then draw
            past = timezone.now() - dt.timedelta(seconds=1)
            Lottery.objects.filter(pk=lot.pk).update(
                opens_at=past - dt.timedelta(hours=2), closes_at=past, draw_at=past
            )
            lottery.draw(getattr(d, op[2]), lot.pk)
            event(f"draw: {min(Win.objects.filter(entry__lottery=lot).count(), 2)}+ wins")
            for uid in LotteryEntry.objects.filter(lottery=lot, refund__isnull=False).values_list("user_id", flat=True):
                model[[u.pk for u in w.people].index(uid)] += lot.entry_cost


@pytest.mark.django_db
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(ops, min_size=1, max_size=25))
def test_random_sequences_keep_the_ledger_balanced_non_negative_and_reconciled(district, steps):
    w = getattr(district, "_world", None) or World(district)
    district._world = w
    forget_remembered_reads()  # the last example's rollback hands its ids (a mall account) out again
    with transaction.atomic():  # each example starts from the same world
        model = _balances(w.people)
        day = [timezone.localdate()]
        for op in steps:
            before = _snapshot()
            try:
                with transaction.atomic():
                    _step(w, op, model, day)
                event(f"{op[0]} ok")
            except DomainError as e:
                event(f"{op[0]} refused: {e.code}")
                assert _snapshot() == before, f"{op} was refused but changed something"
            _check_invariants()
            assert _balances(w.people) == model, op
            assert Account.objects.filter(kind=AccountKind.ISSUANCE).count() <= 1
        transaction.set_rollback(True)
