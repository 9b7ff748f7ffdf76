"""Posting to the points ledger. `post` is the only writer of balances and entries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from core.errors import DomainError, Invalid

from ..models import Account, AccountKind, Entry, Movement

MAX_AMOUNT = 10**12


class PointsErrors:
    INVALID_AMOUNT = "invalid_amount"
    INSUFFICIENT_POINTS = "insufficient_points"
    INSUFFICIENT_BUDGET = "insufficient_budget"


def _account(kind: str, **key) -> Account:
    try:
        with transaction.atomic():
            return Account.objects.get_or_create(kind=kind, **key)[0]
    except IntegrityError:  # created meanwhile by a parallel request
        return Account.objects.get(kind=kind, **key)


def issuance_account() -> Account:
    return _account(AccountKind.ISSUANCE)


def expiry_account() -> Account:
    return _account(AccountKind.EXPIRY)


def budget_account(org) -> Account:
    return _account(AccountKind.BUDGET, org=org)


def mall_account(org) -> Account:
    return _account(AccountKind.MALL, org=org)


def lottery_account(lottery_id: int) -> Account:
    return _account(AccountKind.LOTTERY, ref=lottery_id)


def member_account(user) -> Account:
    return _account(AccountKind.MEMBER, user=user)


def member_accounts(user_ids: list[int]) -> dict[int, Account]:
    """Accounts of many members at once, creating the missing ones (for grants to long lists)."""
    have = {a.user_id: a for a in Account.objects.filter(kind=AccountKind.MEMBER, user_id__in=user_ids)}
    missing = [i for i in user_ids if i not in have]
    if missing:
        Account.objects.bulk_create(
            [Account(kind=AccountKind.MEMBER, user_id=i) for i in missing], ignore_conflicts=True
        )
        have.update({a.user_id: a for a in Account.objects.filter(kind=AccountKind.MEMBER, user_id__in=missing)})
    return have


def check_amount(amount: object, field: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or amount > MAX_AMOUNT:
        raise Invalid(PointsErrors.INVALID_AMOUNT, _("积分数必须是正整数"), fields={field: _("必须是正整数")})
    return amount


def _short(kind: str) -> DomainError:
    if kind == AccountKind.MEMBER:
        return DomainError(PointsErrors.INSUFFICIENT_POINTS, _("积分不足"))
    if kind == AccountKind.BUDGET:
        return DomainError(PointsErrors.INSUFFICIENT_BUDGET, _("本组织积分预算不足"))
    return DomainError(PointsErrors.INSUFFICIENT_BUDGET, _("积分余额不足"))


def post(
    kind: str,
    transfers: Sequence[tuple[Account, Account, int]],
    *,
    reason: str,
    actor=None,
    org=None,
    source: str = "",
) -> Movement:
    """Move points (from, to, amount)… as one balanced movement, or nothing at all.

    Accounts are changed in primary-key order (no deadlocks between two postings); each debit
    is a conditional UPDATE that only succeeds while the balance covers it, so no balance can go
    below zero even under a rush, and the CHECK constraint backs that up.
    """
    if not transfers:
        raise Invalid(PointsErrors.INVALID_AMOUNT, _("没有要发放的积分"))
    deltas: dict[int, int] = defaultdict(int)
    kinds: dict[int, str] = {}
    for src, dst, amount in transfers:
        check_amount(amount)
        deltas[src.pk] -= amount
        deltas[dst.pk] += amount
        kinds[src.pk], kinds[dst.pk] = src.kind, dst.kind
    with transaction.atomic():
        for pk in sorted(deltas):
            delta = deltas[pk]
            if delta < 0:
                done = (
                    Account.objects.filter(pk=pk)
                    .filter(Q(balance__gte=-delta) | Q(kind=AccountKind.ISSUANCE))
                    .update(balance=F("balance") + delta)
                )
                if not done:
                    raise _short(kinds[pk])
            elif delta > 0:
                Account.objects.filter(pk=pk).update(balance=F("balance") + delta)
        movement = Movement.objects.create(kind=kind, reason=reason[:200], actor=actor, org=org, source=source[:64])
        entries = []
        for src, dst, amount in transfers:
            entries.append(Entry(movement=movement, account_id=src.pk, amount=-amount))
            entries.append(Entry(movement=movement, account_id=dst.pk, amount=amount))
        Entry.objects.bulk_create(entries)
    return movement


def balance_of(user) -> int:
    """A member's balance (0 for someone who never held points)."""
    return Account.objects.filter(kind=AccountKind.MEMBER, user=user).values_list("balance", flat=True).first() or 0


def history(user):
    """The member's entries, newest first, with the movement that explains each."""
    return (
        Entry.objects.filter(account__kind=AccountKind.MEMBER, account__user=user)
        .select_related("movement")
        .order_by("-id")
    )
