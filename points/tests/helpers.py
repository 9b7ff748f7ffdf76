"""Builders and ledger checks shared by the points and rewards tests."""

from __future__ import annotations

import datetime as dt
import io
import itertools

from django.core.management import call_command
from django.db.models import Count, Q, Sum

from conftest import make_id_number, make_member
from orgs.models import Org
from points.models import Account, AccountKind, Entry, Movement
from points.services import budgets, ledger

_births = itertools.count()


def many_members(org, n: int, name: str = "会员") -> list:
    """n certified members with ID numbers of their own (conftest's random pool has only 1,000 per birth date)."""
    start = dt.date(1970, 1, 1)
    members = []
    for i in range(n):
        birth = (start + dt.timedelta(days=next(_births) % 9000)).strftime("%Y%m%d")
        members.append(make_member(org, f"{name}{i}", id_number=make_id_number(birth=birth)))
    return members


def fund(org, amount: int, admin) -> None:
    """Mint `amount` at the top org and allocate it down the tree to `org`'s budget."""
    chain = list(Org.objects.get_ancestors(org)) + [org]
    budgets.mint(None, chain[0], amount, "测试发行")
    for parent, child in zip(chain, chain[1:], strict=False):
        budgets.allocate(admin, parent, child, amount, "测试下拨")


def give(org, admin, members, amount: int) -> None:
    """Fund the org's budget and grant `amount` to each member (all in org's subtree)."""
    fund(org, amount * len(members), admin)
    budgets.grant(admin, org, [m.user_id for m in members], amount, "测试发放")


def counts() -> tuple[int, int, dict]:
    """What a refused operation must leave as it was: movements, entries and every non-zero balance.
    (An empty account opened on the way is no movement of points.)"""
    balances = {pk: b for pk, b in Account.objects.values_list("pk", "balance") if b}
    return Movement.objects.count(), Entry.objects.count(), balances


def balance(account_or_user) -> int:
    if isinstance(account_or_user, Account):
        return Account.objects.get(pk=account_or_user.pk).balance
    return ledger.balance_of(account_or_user)


def assert_ledger_sound() -> None:
    """Entries sum to zero overall and per movement; stored balances equal entry sums; none negative."""
    assert (Entry.objects.aggregate(s=Sum("amount"))["s"] or 0) == 0
    unbalanced = Movement.objects.annotate(s=Sum("entries__amount"), n=Count("entries")).filter(~Q(s=0) | Q(n=0))
    assert not unbalanced.exists(), list(unbalanced.values("pk", "kind", "s", "n"))
    sums = dict(Entry.objects.values("account").annotate(s=Sum("amount")).values_list("account", "s"))
    for pk, kind, stored in Account.objects.values_list("pk", "kind", "balance"):
        assert stored == sums.get(pk, 0), f"account {pk} ({kind}): stored {stored}, entries {sums.get(pk, 0)}"
        if kind != AccountKind.ISSUANCE:
            assert stored >= 0, f"account {pk} ({kind}) is negative: {stored}"


def reconcile() -> tuple[int, str]:
    """Run reconcile_points; (exit code, output)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("reconcile_points", stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code or 0), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()
