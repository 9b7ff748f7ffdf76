"""Yearly points expiry: once per due date, into the expiry account, deeper policies shield, notices."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import make_member, make_user
from core.errors import Forbidden, Invalid
from points.models import Account, AccountKind, ExpiryPolicy, Movement, MovementKind
from points.services import budgets, expiry, ledger

from .helpers import assert_ledger_sound, balance, fund


def _day(offset: int) -> dt.date:
    """today + offset days, stepping past Feb 29 so month/day exists every year."""
    d = timezone.localdate() + dt.timedelta(days=offset)
    return d + dt.timedelta(days=1) if (d.month, d.day) == (2, 29) else d


def _policy(actor, org, day: dt.date, notice_days: int = 30) -> ExpiryPolicy:
    return expiry.set_policy(actor, org, day.month, day.day, notice_days)


@pytest.fixture
def holders(district):
    """Members with points in union A1, union A2 and union B1 (100 each)."""
    fund(district.root, 300, district.district_admin)
    people = {
        "a1": make_member(district.union_a1),
        "a2": make_member(district.union_a2),
        "b1": make_member(district.union_b1),
    }
    budgets.grant(district.district_admin, district.root, [m.user_id for m in people.values()], 100, "福利")
    return people


@pytest.mark.django_db
def test_expiry_moves_every_balance_of_the_subtree_into_the_expiry_account(district, holders):
    due = _day(10)
    _policy(district.admin_a, district.street_a, due)
    assert expiry.expire_due(due) == 2
    assert ledger.balance_of(holders["a1"].user) == 0 and ledger.balance_of(holders["a2"].user) == 0
    assert ledger.balance_of(holders["b1"].user) == 100  # outside the policy's subtree
    sink = Account.objects.get(kind=AccountKind.EXPIRY)
    assert sink.balance == 200
    mv = Movement.objects.filter(kind=MovementKind.EXPIRE).first()
    assert due.isoformat() in mv.reason and mv.source.startswith("expiry:")
    assert [e.movement.kind for e in ledger.history(holders["a1"].user)][0] == MovementKind.EXPIRE
    assert_ledger_sound()


@pytest.mark.django_db
def test_a_policy_runs_once_per_due_date(district, holders):
    due = _day(10)
    _policy(district.district_admin, district.root, due)
    assert expiry.expire_due(due - dt.timedelta(days=1)) == 0  # not yet
    assert ledger.balance_of(holders["a1"].user) == 100
    assert expiry.expire_due(due) == 3
    # Points earned after the run survive the rest of the year, however often the job runs.
    fund(district.root, 50, district.district_admin)
    budgets.grant(district.district_admin, district.root, [holders["a1"].user_id], 50, "新发放")
    for later in (due, due + dt.timedelta(days=1), due + dt.timedelta(days=200)):
        assert expiry.expire_due(later) == 0
    assert ledger.balance_of(holders["a1"].user) == 50
    assert ExpiryPolicy.objects.get().last_run_on == due
    # A year on, it is due again.
    next_due = expiry._date_in(due.year + 1, due.month, due.day)
    assert expiry.expire_due(next_due) == 1
    assert ledger.balance_of(holders["a1"].user) == 0
    assert Movement.objects.filter(kind=MovementKind.EXPIRE).count() == 4
    assert_ledger_sound()


@pytest.mark.django_db
def test_a_job_that_missed_the_due_date_still_expires_once_afterwards(district, holders):
    due = _day(5)
    _policy(district.district_admin, district.root, due)
    assert expiry.expire_due(due + dt.timedelta(days=3)) == 3
    assert expiry.expire_due(due + dt.timedelta(days=4)) == 0


@pytest.mark.django_db
def test_setting_a_policy_does_not_expire_points_for_a_date_that_passed_before_it(district, holders):
    """A cadre sets "expire every <10 days ago>" today: members get until that date next year, with notice."""
    past = _day(-10)
    _policy(district.district_admin, district.root, past)
    assert expiry.expire_due(timezone.localdate()) == 0
    assert all(ledger.balance_of(m.user) == 100 for m in holders.values())
    assert Movement.objects.filter(kind=MovementKind.EXPIRE).count() == 0
    next_due = expiry._date_in(past.year + 1, past.month, past.day)
    assert expiry.expire_due(next_due) == 3


@pytest.mark.django_db
def test_moving_a_policys_date_into_the_past_does_not_expire_at_once(district, holders):
    policy = _policy(district.district_admin, district.root, _day(100))
    past = _day(-3)
    expiry.set_policy(district.district_admin, district.root, past.month, past.day)
    assert ExpiryPolicy.objects.get(pk=policy.pk).month == past.month
    assert expiry.expire_due(timezone.localdate()) == 0
    assert ledger.balance_of(holders["a1"].user) == 100


@pytest.mark.django_db
def test_a_deeper_policy_shields_its_subtree_from_the_ancestors_policy(district, holders):
    root_due, a1_due = _day(10), _day(20)
    _policy(district.district_admin, district.root, root_due)
    _policy(district.admin_a1, district.union_a1, a1_due)
    assert expiry.expire_due(root_due) == 2  # a2 and b1
    assert ledger.balance_of(holders["a1"].user) == 100
    assert ledger.balance_of(holders["a2"].user) == 0 and ledger.balance_of(holders["b1"].user) == 0
    assert expiry.expire_due(a1_due) == 1
    assert ledger.balance_of(holders["a1"].user) == 0
    assert_ledger_sound()


@pytest.mark.django_db
def test_members_with_nothing_to_expire_get_no_movement(district, holders):
    make_member(district.union_a1)  # no points at all
    due = _day(10)
    _policy(district.district_admin, district.root, due)
    assert expiry.expire_due(due) == 3
    assert Movement.objects.filter(kind=MovementKind.EXPIRE).count() == 3


@pytest.mark.django_db
def test_notice_shows_date_and_amount_within_the_notice_period_only(district, holders):
    due = _day(10)
    _policy(district.district_admin, district.root, due, notice_days=30)
    user = holders["a1"].user
    assert expiry.notice_for(user) == {"date": due, "amount": 100}
    assert expiry.notice_for(user, today=due) == {"date": due, "amount": 100}
    assert expiry.notice_for(user, today=due - dt.timedelta(days=30)) == {"date": due, "amount": 100}
    assert expiry.notice_for(user, today=due - dt.timedelta(days=31)) is None
    _policy(district.district_admin, district.root, due, notice_days=5)
    assert expiry.notice_for(user) is None
    assert expiry.notice_for(user, today=due - dt.timedelta(days=5)) == {"date": due, "amount": 100}


@pytest.mark.django_db
def test_no_notice_without_points_policy_or_membership(district, holders):
    due = _day(10)
    assert expiry.notice_for(holders["a1"].user) is None  # no policy yet
    _policy(district.admin_a, district.street_a, due)
    assert expiry.notice_for(holders["b1"].user) is None  # no policy over street B
    assert expiry.notice_for(make_member(district.union_a1).user) is None  # nothing to lose
    assert expiry.notice_for(make_user()) is None  # a follower


@pytest.mark.django_db
def test_notice_follows_the_nearest_policy(district, holders):
    _policy(district.district_admin, district.root, _day(10))
    _policy(district.admin_a1, district.union_a1, _day(200))
    assert expiry.notice_for(holders["a1"].user) is None
    assert expiry.notice_for(holders["a2"].user) == {"date": _day(10), "amount": 100}


@pytest.mark.django_db
def test_set_policy_needs_an_admin_and_a_real_date(district):
    for actor in (district.staff_a, district.admin_b, district.admin_a1):
        with pytest.raises(Forbidden):
            expiry.set_policy(actor, district.street_a, 12, 31)
    for month, day in ((2, 30), (13, 1), (0, 1), ("x", 1)):
        with pytest.raises(Invalid):
            expiry.set_policy(district.admin_a, district.street_a, month, day)
    assert ExpiryPolicy.objects.count() == 0


@pytest.mark.django_db
def test_expire_points_command_reports_how_many_balances_expired(district, holders):
    out = io.StringIO()
    call_command("expire_points", stdout=out)
    assert "0 balances expired" in out.getvalue()
    assert balance(ledger.member_account(holders["a1"].user)) == 100
