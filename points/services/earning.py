"""Earning points by the rules of one's union (签到, reading, voting, surveys, activity check-in)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Forbidden, Invalid
from members.services import member_of
from orgs import scoping

from ..models import Account, EarnAction, Earning, EarningRule, Movement, MovementKind
from . import ledger


class EarnErrors:
    NO_RULE = "no_rule"
    NOT_A_MEMBER = "not_a_member"
    DAILY_CAP = "daily_cap_reached"
    TOTAL_CAP = "total_cap_reached"
    ALREADY_EARNED = "already_earned"
    BUDGET_EXHAUSTED = "budget_exhausted"


def rule_for(org, action: str) -> EarningRule | None:
    """The active rule for the action set by the org or its nearest ancestor."""
    prefixes = scoping.self_and_ancestor_paths(org.path)
    return (
        EarningRule.objects.select_related("org")
        .filter(action=action, active=True, org__path__in=prefixes)
        .order_by("-org__depth")
        .first()
    )


def earn(user, action: str, ref: str = "") -> Movement:
    """Pay the member for an action, within the rule's caps, from the rule's org budget.

    Caps are database facts: the n-th earning of the day is a unique row, so two parallel
    check-ins cannot both be the first.
    """
    if action not in EarnAction.values:
        raise Invalid("invalid_action", _("未知的积分行为"))
    member = member_of(user)
    if member is None or not member.certified:
        raise Forbidden(EarnErrors.NOT_A_MEMBER, _("完成实名认证的会员才能获得积分"))
    rule = rule_for(member.org, action)
    if rule is None:
        raise DomainError(EarnErrors.NO_RULE, _("所在工会没有设置该项积分奖励"))
    today = timezone.localdate()
    ref = str(ref or "")[:64]
    account = ledger.member_account(user)
    with transaction.atomic():
        # One person's earnings queue on their account row, so the total-cap count cannot be raced
        # (the daily cap is a UNIQUE constraint besides).
        Account.objects.select_for_update().filter(pk=account.pk).first()
        if ref and Earning.objects.filter(rule=rule, user=user, ref=ref).exists():
            raise DomainError(EarnErrors.ALREADY_EARNED, _("这项内容已经获得过积分"))
        if rule.total_cap is not None and Earning.objects.filter(rule=rule, user=user).count() >= rule.total_cap:
            raise DomainError(EarnErrors.TOTAL_CAP, _("该项积分已达到总上限"))
        n = Earning.objects.filter(rule=rule, user=user, day=today).count() + 1
        if n > rule.daily_cap:
            raise DomainError(EarnErrors.DAILY_CAP, _("今天该项积分已达上限，明天再来"))
        try:
            with transaction.atomic():
                mv = ledger.post(
                    MovementKind.EARN,
                    [(ledger.budget_account(rule.org), account, rule.amount)],
                    reason=rule.get_action_display(),
                    org=rule.org,
                    source=f"rule:{rule.pk}",
                )
                Earning.objects.create(rule=rule, user=user, day=today, n=n, ref=ref, movement=mv)
        except IntegrityError:
            raise DomainError(EarnErrors.DAILY_CAP, _("今天该项积分已达上限，明天再来")) from None
        except DomainError as e:
            if e.code == ledger.PointsErrors.INSUFFICIENT_BUDGET:
                raise DomainError(EarnErrors.BUDGET_EXHAUSTED, _("本工会积分预算已用完，请联系工会")) from None
            raise
    return mv


def rules_for(actor):
    return scoping.scoped(EarningRule.objects.select_related("org"), actor, "org__path")


@transaction.atomic
def set_rule(
    actor,
    org,
    action: str,
    amount: object,
    daily_cap: object = 1,
    total_cap: object = None,
    active: bool = True,
    *,
    ip: str | None = None,
) -> EarningRule:
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以设置积分规则"))
    if action not in EarnAction.values:
        raise Invalid("invalid_action", _("未知的积分行为"), fields={"action": _("无效")})
    amount = ledger.check_amount(amount)
    if isinstance(daily_cap, bool) or not isinstance(daily_cap, int) or not 1 <= daily_cap <= 100:
        raise Invalid("invalid_cap", _("每日次数应为1到100"), fields={"daily_cap": _("应为1到100")})
    if total_cap is not None and (isinstance(total_cap, bool) or not isinstance(total_cap, int) or total_cap < 1):
        raise Invalid("invalid_cap", _("总次数应为正整数"), fields={"total_cap": _("应为正整数")})
    rule, _created = EarningRule.objects.update_or_create(
        org=org,
        action=action,
        defaults={
            "amount": amount,
            "daily_cap": daily_cap,
            "total_cap": total_cap,
            "active": active,
            "created_by": actor,
        },
    )
    audit.record(actor, "points.rule", org=org, target=rule, summary=f"{action} +{amount} ×{daily_cap}/天", ip=ip)
    return rule
