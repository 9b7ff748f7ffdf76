"""Yearly points expiry per org (e.g. every 12-31), as ledger movements like any other."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import Forbidden, Invalid
from orgs import scoping

from ..models import Account, AccountKind, ExpiryPolicy, MovementKind
from . import ledger


def _date_in(year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:  # 02-29 in a common year
        return dt.date(year, month, 28)


def next_expiry(policy: ExpiryPolicy, today: dt.date) -> dt.date:
    this_year = _date_in(today.year, policy.month, policy.day)
    return this_year if this_year >= today else _date_in(today.year + 1, policy.month, policy.day)


def policy_for(org) -> ExpiryPolicy | None:
    prefixes = scoping.self_and_ancestor_paths(org.path)
    return ExpiryPolicy.objects.filter(org__path__in=prefixes).select_related("org").order_by("-org__depth").first()


def notice_for(user, today: dt.date | None = None) -> dict | None:
    """{"date", "amount"} when the member's points expire within the policy's notice period."""
    from members.services import member_of

    member = member_of(user)
    if member is None:
        return None
    policy = policy_for(member.org)
    balance = ledger.balance_of(user)
    if policy is None or balance <= 0:
        return None
    today = today or timezone.localdate()
    when = next_expiry(policy, today)
    if (when - today).days > policy.notice_days:
        return None
    return {"date": when, "amount": balance}


@transaction.atomic
def set_policy(actor, org, month: int, day: int, notice_days: int = 30, *, ip: str | None = None) -> ExpiryPolicy:
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以设置积分有效期"))
    try:
        dt.date(2024, int(month), int(day))
    except (TypeError, ValueError):
        raise Invalid("invalid_date", _("过期日期无效"), fields={"day": _("无效日期")}) from None
    month, day = int(month), int(day)
    old = ExpiryPolicy.objects.filter(org=org).values_list("month", "day").first()
    defaults = {"month": month, "day": day, "notice_days": max(0, int(notice_days))}
    if old != (month, day):
        # A new or moved date counts from today: an occurrence that passed before the policy said so
        # is not run (else the next daily job would expire everyone at once, for a date without notice).
        today = timezone.localdate()
        last = _date_in(today.year, month, day)
        defaults["last_run_on"] = last if last < today else _date_in(today.year - 1, month, day)
    policy, _c = ExpiryPolicy.objects.update_or_create(org=org, defaults=defaults)
    audit.record(actor, "points.expiry_policy", org=org, target=policy, summary=f"{month}-{day}", ip=ip)
    return policy


def expire_due(today: dt.date | None = None) -> int:
    """Run every policy whose date has come since its last run; returns how many balances expired.

    A member follows the nearest policy above them, so a deeper org's policy shields its subtree.
    """
    today = today or timezone.localdate()
    expired = 0
    policies = list(ExpiryPolicy.objects.select_related("org"))
    for policy in policies:
        due = _date_in(today.year, policy.month, policy.day)
        if due > today:
            due = _date_in(today.year - 1, policy.month, policy.day)
        if policy.last_run_on is not None and policy.last_run_on >= due:
            continue
        deeper = [p.org.path for p in policies if p.pk != policy.pk and p.org.path.startswith(policy.org.path)]
        accounts = Account.objects.filter(
            kind=AccountKind.MEMBER, balance__gt=0, user__member__org__path__startswith=policy.org.path
        )
        for path in deeper:
            accounts = accounts.exclude(user__member__org__path__startswith=path)
        sink = ledger.expiry_account()
        for account in accounts.iterator():
            with transaction.atomic():
                # Read the balance under the posting's own guard: whatever is there now expires.
                balance = Account.objects.select_for_update().get(pk=account.pk).balance
                if balance > 0:
                    ledger.post(
                        MovementKind.EXPIRE,
                        [(account, sink, balance)],
                        reason=_("积分到期（%(date)s）") % {"date": due.isoformat()},
                        org=policy.org,
                        source=f"expiry:{policy.pk}",
                    )
                    expired += 1
        ExpiryPolicy.objects.filter(pk=policy.pk).update(last_run_on=due)
    return expired
