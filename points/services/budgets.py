"""Points budgets down the org tree, and grants from a budget to members."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from core import audit
from core.errors import Forbidden, Invalid
from members.models import Member
from orgs import scoping

from ..models import MovementKind
from . import ledger


@transaction.atomic
def mint(actor, org, amount: int, reason: str = "", *, ip: str | None = None):
    """Create points into a top-level org's budget: the only way points enter circulation."""
    ledger.check_amount(amount)
    if org.parent_id is not None:
        raise Forbidden("mint_top_only", _("只有顶级工会可以发行积分预算"))
    if actor is not None and not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织的管理员可以发行积分预算"))
    mv = ledger.post(
        MovementKind.MINT,
        [(ledger.issuance_account(), ledger.budget_account(org), amount)],
        reason=reason or _("积分预算发行"),
        actor=actor,
        org=org,
    )
    audit.record(actor, "points.mint", org=org, target=mv, summary=f"{amount}", ip=ip)
    return mv


@transaction.atomic
def allocate(actor, from_org, to_org, amount: int, reason: str = "", *, ip: str | None = None):
    """Move budget from an org to one of its descendants; the actor administers the giving org."""
    ledger.check_amount(amount)
    if not scoping.covers(actor, from_org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以下拨预算"))
    if to_org.pk == from_org.pk or not to_org.path.startswith(from_org.path):
        raise Invalid("not_a_descendant", _("只能下拨给本组织的下级组织"), fields={"to_org": _("应为下级组织")})
    mv = ledger.post(
        MovementKind.ALLOCATE,
        [(ledger.budget_account(from_org), ledger.budget_account(to_org), amount)],
        reason=reason or _("预算下拨"),
        actor=actor,
        org=from_org,
        source=f"org:{to_org.pk}",
    )
    audit.record(
        actor, "points.allocate", org=from_org, target=mv, summary=f"{from_org.name} → {to_org.name}: {amount}", ip=ip
    )
    return mv


@transaction.atomic
def grant(actor, org, member_ids: list, amount: int, reason: str, *, ip: str | None = None) -> int:
    """Give `amount` to each listed member (ids are person ids) of the org's subtree, from its budget."""
    ledger.check_amount(amount)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", _("请填写发放原因"), fields={"reason": _("必填")})
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以发放积分"))
    if not member_ids:
        raise Invalid("member_ids_required", _("请选择要发放的会员"), fields={"member_ids": _("不能为空")})
    try:
        ids = [int(i) for i in member_ids]
    except (TypeError, ValueError):
        raise Invalid("invalid_member_ids", _("会员编号无效"), fields={"member_ids": _("应为会员编号列表")}) from None
    if len(set(ids)) != len(ids):
        raise Invalid("duplicate_member_ids", _("会员编号有重复"), fields={"member_ids": _("有重复")})
    found = set(
        Member.objects.filter(user_id__in=ids, org__path__startswith=org.path).values_list("user_id", flat=True)
    )
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10])
        raise Invalid(
            "unknown_members", _("这些编号不是本组织的会员：%(ids)s") % {"ids": shown}, fields={"member_ids": shown}
        )
    budget = ledger.budget_account(org)
    accounts = ledger.member_accounts(ids)
    transfers = [(budget, accounts[i], amount) for i in ids]
    mv = ledger.post(MovementKind.GRANT, transfers, reason=reason, actor=actor, org=org)
    audit.record(actor, "points.grant", org=org, target=mv, summary=f"{len(ids)} × {amount}: {reason}", ip=ip)
    return len(ids)
