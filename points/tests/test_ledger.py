"""The ledger's posting rules, budgets (mint, allocate, grant) and the reconcile command."""

from __future__ import annotations

import pytest
from django.db import connection

from conftest import make_cadre, make_member, make_user
from core.errors import DomainError, Forbidden, Invalid
from points.models import Account, AccountKind, Entry, Movement, MovementKind
from points.services import budgets, ledger

from .helpers import assert_ledger_sound, balance, counts, fund, reconcile

BAD_AMOUNTS = [0, -1, -(10**6), True, False, 1.0, 2.5, "10", None, 10**12 + 1, 10**30]


# --- post ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_post_moves_points_as_balanced_entries_and_updates_both_balances(district):
    budget = ledger.budget_account(district.root)
    ledger.post(MovementKind.MINT, [(ledger.issuance_account(), budget, 500)], reason="发行")
    member = make_member(district.union_a1)
    acct = ledger.member_account(member.user)

    mv = ledger.post(MovementKind.GRANT, [(budget, acct, 120)], reason="节日福利", source="test:1")

    assert balance(budget) == 380 and balance(acct) == 120
    assert ledger.balance_of(member.user) == 120
    amounts = sorted(mv.entries.values_list("account_id", "amount"))
    assert amounts == sorted([(budget.pk, -120), (acct.pk, 120)])
    assert mv.reason == "节日福利" and mv.source == "test:1" and mv.kind == MovementKind.GRANT
    assert_ledger_sound()


@pytest.mark.django_db
def test_post_of_several_transfers_is_one_movement_with_all_entries(district):
    budget = ledger.budget_account(district.root)
    ledger.post(MovementKind.MINT, [(ledger.issuance_account(), budget, 100)], reason="发行")
    a, b = make_member(district.union_a1), make_member(district.union_a2)
    accts = ledger.member_accounts([a.user_id, b.user_id])
    mv = ledger.post(
        MovementKind.GRANT, [(budget, accts[a.user_id], 30), (budget, accts[b.user_id], 40)], reason="发放"
    )
    assert mv.entries.count() == 4
    assert balance(budget) == 30 and ledger.balance_of(a.user) == 30 and ledger.balance_of(b.user) == 40
    assert_ledger_sound()


@pytest.mark.django_db
def test_issuance_is_the_only_account_allowed_below_zero(district):
    budget = ledger.budget_account(district.root)
    ledger.post(MovementKind.MINT, [(ledger.issuance_account(), budget, 10**9)], reason="发行")
    assert balance(ledger.issuance_account()) == -(10**9)
    assert_ledger_sound()


@pytest.mark.django_db
def test_insufficient_member_balance_writes_nothing(district):
    member = make_member(district.union_a1)
    acct = ledger.member_account(member.user)
    mall = ledger.mall_account(district.union_a1)
    before = counts()
    with pytest.raises(DomainError) as e:
        ledger.post(MovementKind.REDEEM, [(acct, mall, 1)], reason="兑换")
    assert e.value.code == "insufficient_points" and e.value.status == 409
    assert counts() == before


@pytest.mark.django_db
def test_insufficient_budget_in_a_multi_transfer_post_writes_nothing_at_all(district):
    """The first transfer would fit, the total does not: no partial movement, no balance touched."""
    budget = ledger.budget_account(district.root)
    ledger.post(MovementKind.MINT, [(ledger.issuance_account(), budget, 50)], reason="发行")
    a, b = make_member(district.union_a1), make_member(district.union_a2)
    accts = ledger.member_accounts([a.user_id, b.user_id])
    before = counts()
    with pytest.raises(DomainError) as e:
        ledger.post(MovementKind.GRANT, [(budget, accts[a.user_id], 30), (budget, accts[b.user_id], 30)], reason="发放")
    assert e.value.code == "insufficient_budget" and e.value.status == 409
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_post_refuses_amounts_that_are_not_positive_integers_with_422(district, amount):
    budget, issuance = ledger.budget_account(district.root), ledger.issuance_account()
    before = counts()
    with pytest.raises(Invalid) as e:
        ledger.post(MovementKind.MINT, [(issuance, budget, amount)], reason="发行")
    assert e.value.code == "invalid_amount" and e.value.status == 422
    assert counts() == before


@pytest.mark.django_db
def test_post_with_no_transfers_is_refused(district):
    with pytest.raises(Invalid):
        ledger.post(MovementKind.GRANT, [], reason="空")
    assert Movement.objects.count() == 0


@pytest.mark.django_db
def test_database_refuses_a_negative_balance_even_bypassing_post(district):
    from django.db import IntegrityError, transaction

    acct = ledger.member_account(make_member(district.union_a1).user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=acct.pk).update(balance=-1)


@pytest.mark.django_db
def test_history_lists_the_members_entries_newest_first_with_their_movement(district):
    fund(district.union_a1, 100, district.district_admin)
    member = make_member(district.union_a1)
    budgets.grant(district.admin_a1, district.union_a1, [member.user_id], 10, "第一次")
    budgets.grant(district.admin_a1, district.union_a1, [member.user_id], 20, "第二次")
    items = list(ledger.history(member.user))
    assert [(e.amount, e.movement.reason) for e in items] == [(20, "第二次"), (10, "第一次")]


@pytest.mark.django_db
def test_balance_of_someone_without_an_account_is_zero(district):
    assert ledger.balance_of(make_user()) == 0


# --- mint ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_mint_creates_budget_at_the_top_org_from_issuance(district):
    budgets.mint(district.district_admin, district.root, 1000, "年度预算")
    assert balance(ledger.budget_account(district.root)) == 1000
    assert balance(ledger.issuance_account()) == -1000
    assert_ledger_sound()


@pytest.mark.django_db
def test_mint_below_the_top_org_is_forbidden_and_moves_nothing(district):
    before = counts()
    with pytest.raises(Forbidden) as e:
        budgets.mint(district.district_admin, district.street_a, 1000)
    assert e.value.code == "mint_top_only"
    assert counts() == before


@pytest.mark.django_db
def test_mint_by_someone_who_does_not_administer_the_top_org_is_forbidden(district):
    for actor in (district.admin_a, district.staff_a, make_user()):
        with pytest.raises(Forbidden):
            budgets.mint(actor, district.root, 1000)
    assert Movement.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_mint_refuses_bad_amounts(district, amount):
    with pytest.raises(Invalid):
        budgets.mint(district.district_admin, district.root, amount)
    assert Movement.objects.count() == 0


# --- allocate --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_allocate_moves_budget_down_to_a_descendant_and_it_can_reallocate_in_its_subtree(district):
    budgets.mint(None, district.root, 1000)
    budgets.allocate(district.district_admin, district.root, district.street_a, 600)
    budgets.allocate(district.admin_a, district.street_a, district.union_a1, 250)
    budgets.allocate(district.district_admin, district.root, district.union_b1, 100)  # grandchild is fine
    assert balance(ledger.budget_account(district.root)) == 300
    assert balance(ledger.budget_account(district.street_a)) == 350
    assert balance(ledger.budget_account(district.union_a1)) == 250
    assert balance(ledger.budget_account(district.union_b1)) == 100
    assert_ledger_sound()


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["root", "street_a", "street_b", "union_b1"])
def test_allocate_only_goes_down_never_up_sideways_or_to_itself(district, target):
    budgets.mint(None, district.root, 1000)
    budgets.allocate(district.district_admin, district.root, district.street_a, 500)
    before = counts()
    with pytest.raises(Invalid) as e:
        budgets.allocate(district.district_admin, district.street_a, getattr(district, target), 10)
    assert e.value.code == "not_a_descendant"
    assert counts() == before


@pytest.mark.django_db
def test_allocate_needs_an_admin_of_the_giving_org(district):
    budgets.mint(None, district.root, 1000)
    budgets.allocate(district.district_admin, district.root, district.street_a, 500)
    before = counts()
    for actor in (district.staff_a, district.admin_b, district.admin_a1, make_cadre(district.union_a1, "staff")):
        with pytest.raises(Forbidden):
            budgets.allocate(actor, district.street_a, district.union_a1, 10)
    with pytest.raises(Forbidden):  # an admin of street A cannot spend the federation's budget
        budgets.allocate(district.admin_a, district.root, district.union_a1, 10)
    assert counts() == before


@pytest.mark.django_db
def test_allocate_above_the_givers_budget_is_409_and_moves_nothing(district):
    budgets.mint(None, district.root, 100)
    before = counts()
    with pytest.raises(DomainError) as e:
        budgets.allocate(district.district_admin, district.root, district.street_a, 101)
    assert e.value.code == "insufficient_budget" and e.value.status == 409
    assert counts() == before


# --- grant -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_grant_gives_each_listed_member_the_amount_from_the_org_budget(district):
    fund(district.street_a, 1000, district.district_admin)
    members = [make_member(district.union_a1), make_member(district.union_a2), make_member(district.street_a)]
    n = budgets.grant(district.admin_a, district.street_a, [m.user_id for m in members], 100, "  节日福利 ")
    assert n == 3
    assert [ledger.balance_of(m.user) for m in members] == [100, 100, 100]
    assert balance(ledger.budget_account(district.street_a)) == 700
    mv = Movement.objects.get(kind=MovementKind.GRANT)
    assert mv.reason == "节日福利" and mv.actor == district.admin_a and mv.org == district.street_a
    assert_ledger_sound()


@pytest.mark.django_db
def test_grant_naming_unknown_or_out_of_subtree_people_is_422_naming_them(district):
    fund(district.street_a, 1000, district.district_admin)
    inside = make_member(district.union_a1)
    outside = make_member(district.union_b1)
    follower = make_user()  # a person, but not a member
    before = counts()
    with pytest.raises(Invalid) as e:
        budgets.grant(
            district.admin_a, district.street_a, [inside.user_id, outside.user_id, follower.pk, 987654], 10, "福利"
        )
    assert e.value.code == "unknown_members" and e.value.status == 422
    named = e.value.fields["member_ids"]
    for pk in (outside.user_id, follower.pk, 987654):
        assert str(pk) in named
    assert str(inside.user_id) not in named.split(", ")
    assert counts() == before


@pytest.mark.django_db
def test_grant_with_duplicate_ids_is_422_and_moves_nothing(district):
    fund(district.street_a, 1000, district.district_admin)
    m = make_member(district.union_a1)
    before = counts()
    with pytest.raises(Invalid) as e:
        budgets.grant(district.admin_a, district.street_a, [m.user_id, m.user_id], 10, "福利")
    assert e.value.code == "duplicate_member_ids"
    assert counts() == before


@pytest.mark.django_db
def test_grant_above_the_budget_is_409_and_nobody_gets_anything(district):
    fund(district.street_a, 250, district.district_admin)
    members = [make_member(district.union_a1) for _ in range(3)]
    before = counts()
    accounts_before = Account.objects.count()
    with pytest.raises(DomainError) as e:
        budgets.grant(district.admin_a, district.street_a, [m.user_id for m in members], 100, "福利")
    assert e.value.code == "insufficient_budget" and e.value.status == 409
    assert counts() == before
    assert Account.objects.count() == accounts_before  # not even the members' empty accounts
    assert all(ledger.balance_of(m.user) == 0 for m in members)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ids", "reason", "code"),
    [([], "福利", "member_ids_required"), (["x"], "福利", "invalid_member_ids"), (None, "福利", "member_ids_required")],
)
def test_grant_refuses_bad_lists(district, ids, reason, code):
    fund(district.street_a, 100, district.district_admin)
    before = counts()
    with pytest.raises(Invalid) as e:
        budgets.grant(district.admin_a, district.street_a, ids, 10, reason)
    assert e.value.code == code
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_grant_refuses_bad_amounts(district, amount):
    fund(district.street_a, 100, district.district_admin)
    m = make_member(district.union_a1)
    before = counts()
    with pytest.raises(Invalid) as e:
        budgets.grant(district.admin_a, district.street_a, [m.user_id], amount, "福利")
    assert e.value.code == "invalid_amount"
    assert counts() == before


@pytest.mark.django_db
def test_grant_needs_a_reason_and_an_admin(district):
    fund(district.street_a, 100, district.district_admin)
    m = make_member(district.union_a1)
    with pytest.raises(Invalid) as e:
        budgets.grant(district.admin_a, district.street_a, [m.user_id], 10, "   ")
    assert e.value.code == "reason_required"
    for actor in (district.staff_a, district.admin_b, district.admin_a1):
        with pytest.raises(Forbidden):
            budgets.grant(actor, district.street_a, [m.user_id], 10, "福利")
    assert ledger.balance_of(m.user) == 0


# --- reconcile -------------------------------------------------------------------------------------


def _busy_ledger(district) -> None:
    fund(district.union_a1, 1000, district.district_admin)
    members = [make_member(district.union_a1) for _ in range(3)]
    budgets.grant(district.admin_a1, district.union_a1, [m.user_id for m in members], 50, "福利")


@pytest.mark.django_db
def test_reconcile_passes_on_a_clean_ledger(district):
    _busy_ledger(district)
    code, out = reconcile()
    assert code == 0, out
    assert "reconcile" in out


@pytest.mark.django_db
def test_reconcile_fails_with_exit_code_1_when_a_stored_balance_was_tampered_with(district):
    _busy_ledger(district)
    acct = Account.objects.filter(kind=AccountKind.MEMBER).first()
    with connection.cursor() as c:
        c.execute("UPDATE points_account SET balance = balance + 7 WHERE id = %s", [acct.pk])
    code, out = reconcile()
    assert code == 1
    assert f"account {acct.pk}" in out and "stored 57" in out and "entries 50" in out


@pytest.mark.django_db
def test_reconcile_fails_when_an_entry_was_deleted_behind_the_ledgers_back(district):
    _busy_ledger(district)
    with connection.cursor() as c:
        c.execute("DELETE FROM points_entry WHERE id = %s", [Entry.objects.order_by("-id").first().pk])
    code, out = reconcile()
    assert code == 1
    assert "ledger sum" in out
