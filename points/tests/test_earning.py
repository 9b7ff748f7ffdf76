"""Earning points by the union's rules: caps, refs, nearest rule, budgets, who may earn."""

from __future__ import annotations

import datetime as dt
import types

import pytest
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from conftest import make_member, make_user
from core.errors import DomainError, Forbidden, Invalid
from points.models import Earning, EarningRule, Movement, MovementKind
from points.services import earning, ledger

from .helpers import assert_ledger_sound, balance, counts, fund


def _on_day(monkeypatch, day: dt.date) -> None:
    """Make earning.earn believe today is `day`."""
    monkeypatch.setattr(earning, "timezone", types.SimpleNamespace(localdate=lambda: day))


@pytest.fixture
def a1(district):
    """union A1 with a budget of 1000 and a certified member."""
    fund(district.union_a1, 1000, district.district_admin)
    return types.SimpleNamespace(org=district.union_a1, admin=district.admin_a1, member=make_member(district.union_a1))


@pytest.mark.django_db
def test_earning_pays_the_rule_amount_from_the_rule_orgs_budget(a1):
    earning.set_rule(a1.admin, a1.org, "checkin", 5)
    mv = earning.earn(a1.member.user, "checkin")
    assert mv.kind == MovementKind.EARN and mv.source.startswith("rule:")
    assert ledger.balance_of(a1.member.user) == 5
    assert balance(ledger.budget_account(a1.org)) == 995
    assert_ledger_sound()


@pytest.mark.django_db
def test_daily_cap_stops_the_extra_earnings_of_the_day_and_the_next_day_starts_afresh(a1, monkeypatch):
    earning.set_rule(a1.admin, a1.org, "checkin", 5, daily_cap=2)
    day = dt.date(2030, 3, 1)
    _on_day(monkeypatch, day)
    earning.earn(a1.member.user, "checkin")
    earning.earn(a1.member.user, "checkin")
    before = counts()
    with pytest.raises(DomainError) as e:
        earning.earn(a1.member.user, "checkin")
    assert e.value.code == "daily_cap_reached" and e.value.status == 409
    assert counts() == before
    _on_day(monkeypatch, day + dt.timedelta(days=1))
    earning.earn(a1.member.user, "checkin")
    assert ledger.balance_of(a1.member.user) == 15
    assert sorted(Earning.objects.values_list("day", "n")) == [(day, 1), (day, 2), (day + dt.timedelta(days=1), 1)]


@pytest.mark.django_db
def test_the_daily_cap_is_a_database_fact_a_stale_count_cannot_earn_twice(a1, monkeypatch):
    """Two parallel check-ins both count 0 earnings today; the UNIQUE (rule, user, day, n) lets one through."""
    earning.set_rule(a1.admin, a1.org, "checkin", 5, daily_cap=1)
    earning.earn(a1.member.user, "checkin")
    real_count = QuerySet.count
    monkeypatch.setattr(QuerySet, "count", lambda qs: 0 if qs.model is Earning else real_count(qs))
    before = counts()
    with pytest.raises(DomainError) as e:
        earning.earn(a1.member.user, "checkin")
    assert e.value.code == "daily_cap_reached"
    assert counts() == before  # the movement posted before the UNIQUE failure was rolled back
    assert ledger.balance_of(a1.member.user) == 5
    assert_ledger_sound()


@pytest.mark.django_db
def test_the_database_refuses_a_second_nth_earning_of_the_day(a1):
    rule = earning.set_rule(a1.admin, a1.org, "checkin", 5)
    earning.earn(a1.member.user, "checkin")
    e = Earning.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Earning.objects.create(rule=rule, user=e.user, day=e.day, n=1, movement=Movement.objects.create(kind="earn"))


@pytest.mark.django_db
def test_total_cap_limits_earnings_across_days(a1, monkeypatch):
    earning.set_rule(a1.admin, a1.org, "checkin", 3, daily_cap=2, total_cap=3)
    day = dt.date(2030, 5, 1)
    _on_day(monkeypatch, day)
    earning.earn(a1.member.user, "checkin")
    earning.earn(a1.member.user, "checkin")
    _on_day(monkeypatch, day + dt.timedelta(days=1))
    earning.earn(a1.member.user, "checkin")
    with pytest.raises(DomainError) as e:
        earning.earn(a1.member.user, "checkin")
    assert e.value.code == "total_cap_reached"
    _on_day(monkeypatch, day + dt.timedelta(days=30))
    with pytest.raises(DomainError):
        earning.earn(a1.member.user, "checkin")
    assert ledger.balance_of(a1.member.user) == 9


@pytest.mark.django_db
def test_an_action_with_a_ref_earns_once_per_ref(a1):
    earning.set_rule(a1.admin, a1.org, "read_article", 2, daily_cap=10)
    earning.earn(a1.member.user, "read_article", ref="article:1")
    with pytest.raises(DomainError) as e:
        earning.earn(a1.member.user, "read_article", ref="article:1")
    assert e.value.code == "already_earned"
    earning.earn(a1.member.user, "read_article", ref="article:2")
    assert ledger.balance_of(a1.member.user) == 4
    other = make_member(a1.org)  # another member may read the same article
    earning.earn(other.user, "read_article", ref="article:1")
    assert ledger.balance_of(other.user) == 2


@pytest.mark.django_db
def test_the_nearest_orgs_rule_wins_and_pays_from_that_orgs_budget(district):
    fund(district.root, 1000, district.district_admin)
    fund(district.street_a, 1000, district.district_admin)
    earning.set_rule(district.district_admin, district.root, "checkin", 1)
    earning.set_rule(district.admin_a, district.street_a, "checkin", 7)
    in_a1, in_b1 = make_member(district.union_a1), make_member(district.union_b1)
    assert earning.rule_for(district.union_a1, "checkin").org == district.street_a
    assert earning.rule_for(district.union_b1, "checkin").org == district.root
    root_before = balance(ledger.budget_account(district.root))
    earning.earn(in_a1.user, "checkin")
    earning.earn(in_b1.user, "checkin")
    assert ledger.balance_of(in_a1.user) == 7 and ledger.balance_of(in_b1.user) == 1
    assert balance(ledger.budget_account(district.street_a)) == 1000 - 7
    assert balance(ledger.budget_account(district.root)) == root_before - 1
    # A deeper rule overrides again for its own subtree only.
    earning.set_rule(district.admin_a1, district.union_a1, "checkin", 3)
    assert earning.rule_for(district.union_a1, "checkin").amount == 3
    assert earning.rule_for(district.union_a2, "checkin").amount == 7


@pytest.mark.django_db
def test_exhausted_budget_is_409_budget_exhausted_and_records_no_earning(district):
    fund(district.union_a1, 5, district.district_admin)
    earning.set_rule(district.admin_a1, district.union_a1, "checkin", 5)
    first, second = make_member(district.union_a1), make_member(district.union_a1)
    earning.earn(first.user, "checkin")
    before = counts()
    with pytest.raises(DomainError) as e:
        earning.earn(second.user, "checkin")
    assert e.value.code == "budget_exhausted" and e.value.status == 409
    assert counts() == before
    assert Earning.objects.filter(user=second.user).count() == 0


@pytest.mark.django_db
def test_followers_and_uncertified_members_cannot_earn(a1):
    earning.set_rule(a1.admin, a1.org, "checkin", 5)
    for user in (make_user(), make_member(a1.org, certified=False).user):
        with pytest.raises(Forbidden) as e:
            earning.earn(user, "checkin")
        assert e.value.code == "not_a_member" and e.value.status == 403
    assert Earning.objects.count() == 0


@pytest.mark.django_db
def test_earning_without_a_rule_or_with_an_unknown_action_is_refused(a1):
    with pytest.raises(DomainError) as e:
        earning.earn(a1.member.user, "checkin")
    assert e.value.code == "no_rule"
    with pytest.raises(Invalid):
        earning.earn(a1.member.user, "mine_bitcoin")


@pytest.mark.django_db
def test_an_inactive_rule_earns_nothing(a1):
    earning.set_rule(a1.admin, a1.org, "vote", 5, active=False)
    with pytest.raises(DomainError) as e:
        earning.earn(a1.member.user, "vote")
    assert e.value.code == "no_rule"


@pytest.mark.django_db
def test_only_an_admin_of_the_org_sets_its_rules_and_values_are_checked(district):
    for actor in (district.staff_a, district.admin_b, district.admin_a1):
        with pytest.raises(Forbidden):
            earning.set_rule(actor, district.street_a, "checkin", 5)
    for kwargs in (
        {"amount": 0},
        {"amount": -5},
        {"amount": 1.5},
        {"amount": 5, "daily_cap": 0},
        {"amount": 5, "daily_cap": 101},
        {"amount": 5, "total_cap": 0},
        {"amount": 5, "daily_cap": True},
    ):
        with pytest.raises(Invalid):
            earning.set_rule(district.admin_a, district.street_a, "checkin", **kwargs)
    with pytest.raises(Invalid):
        earning.set_rule(district.admin_a, district.street_a, "nap", 5)
    assert EarningRule.objects.count() == 0
    rule = earning.set_rule(district.admin_a, district.street_a, "checkin", 5)
    again = earning.set_rule(district.admin_a, district.street_a, "checkin", 8, daily_cap=3)
    assert again.pk == rule.pk and again.amount == 8 and EarningRule.objects.count() == 1
    assert list(earning.rules_for(district.admin_b)) == []
    assert list(earning.rules_for(district.admin_a)) == [again]


@pytest.mark.django_db
def test_earning_today_uses_the_real_date(a1):
    earning.set_rule(a1.admin, a1.org, "checkin", 5)
    earning.earn(a1.member.user, "checkin")
    assert Earning.objects.get().day == timezone.localdate()
