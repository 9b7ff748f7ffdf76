"""Posting to the points ledger. `post` writes balances and entries for every movement but one: a
mall sale (rewards.services.mall) writes the same rows in its own few statements, its hot path,
under the same rules (balanced entries, conditional debits, CHECK balance >= 0), and
`reconcile_points` and the ledger's property tests cover it like the rest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError, Invalid

from ..models import Account, AccountKind, Entry, Movement

MAX_AMOUNT = 10**12


class PointsErrors:
    INVALID_AMOUNT = "invalid_amount"
    INSUFFICIENT_POINTS = "insufficient_points"
    INSUFFICIENT_BUDGET = "insufficient_budget"


def _account(kind: str, **key) -> Account:
    # Accounts are created once and never deleted: a plain read almost always finds it, without
    # the savepoint (and, on SQLite, the write lock) that get_or_create would take every time.
    if len(key) == 1:  # a plain-SQL read on the hot path (every redemption asks for its mall's account)
        ((field, value),) = key.items()
        column = {"org": "org_id", "user": "user_id", "ref": "ref"}[field]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, balance FROM points_account WHERE kind = %s AND {column} = %s",
                [kind, getattr(value, "pk", value)],
            )
            row = cursor.fetchone()
        if row is not None:
            account = Account(pk=row[0], kind=kind, balance=row[1], **key)
            account._state.adding = False
            return account
    else:
        found = Account.objects.filter(kind=kind, **key).first()
        if found is not None:
            return found
    try:
        with transaction.atomic():
            return Account.objects.create(kind=kind, **key)
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
    before_shared: Callable[[Movement], None] | None = None,
) -> Movement:
    """Move points (from, to, amount)… as one balanced movement, or nothing at all.

    Lock order, the same in every posting so two of them never deadlock: member accounts in
    primary-key order, then the shared ones (budgets, mall, pools, issuance, expiry) in
    primary-key order. The movement and its entries are written first and the shared accounts
    last, so a busy shared row (a mall everyone buys from) stays locked for as short as possible;
    `before_shared(movement)` runs just before them (e.g. writing the redemption, then taking
    stock, another busy row).
    Each debit is a conditional UPDATE that only succeeds while the balance covers it, so no
    balance goes below zero even under a rush; the CHECK constraint backs that up.
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
    order = sorted(deltas, key=lambda pk: (kinds[pk] != AccountKind.MEMBER, pk))
    now = timezone.now()
    at = connection.ops.adapt_datetimefield_value(now)
    # Plain SQL: this runs for every point that moves (a sale rush, a vote rush), and the ORM's
    # query building cost several times what the database spends on these statements.
    with transaction.atomic(), connection.cursor() as cursor:  # a savepoint inside a caller's transaction
        cursor.execute(
            "INSERT INTO points_movement (kind, reason, actor_id, org_id, source, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [kind, reason[:200], getattr(actor, "pk", None), getattr(org, "pk", None), source[:64], at],
        )
        movement_id = cursor.fetchone()[0]
        rows = []
        for src, dst, amount in transfers:
            rows += [(movement_id, src.pk, -amount, at), (movement_id, dst.pk, amount, at)]
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            cursor.execute(
                "INSERT INTO points_entry (movement_id, account_id, amount, created_at) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(part)),
                [v for row in part for v in row],
            )
        movement = Movement(
            id=movement_id, kind=kind, reason=reason[:200], actor=actor, org=org, source=source[:64], created_at=now
        )
        movement._state.adding = False
        hook_done = before_shared is None
        for pk in order:
            if not hook_done and kinds[pk] != AccountKind.MEMBER:
                before_shared(movement)
                hook_done = True
            delta = deltas[pk]
            if delta < 0:
                cursor.execute(
                    "UPDATE points_account SET balance = balance + %s WHERE id = %s AND (balance >= %s OR kind = %s)",
                    [delta, pk, -delta, AccountKind.ISSUANCE.value],
                )
                if cursor.rowcount != 1:
                    raise _short(kinds[pk])
            elif delta > 0:
                cursor.execute("UPDATE points_account SET balance = balance + %s WHERE id = %s", [delta, pk])
        if not hook_done:
            before_shared(movement)
    return movement


def balance_of(user) -> int:
    """A member's balance (0 for someone who never held points)."""
    return Account.objects.filter(kind=AccountKind.MEMBER, user=user).values_list("balance", flat=True).first() or 0


def history(user):
    """The member's entries, newest first, with the movement that explains each.

    Looked up by the account id, so the (account, -id) index serves a page directly even when
    the ledger holds millions of other members' entries.
    """
    account_id = getattr(user, "points_account_id", None) or (
        Account.objects.filter(kind=AccountKind.MEMBER, user=user).values_list("pk", flat=True).first()
    )
    return Entry.objects.filter(account_id=account_id).select_related("movement").order_by("-id")
