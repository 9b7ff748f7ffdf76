"""积分商城 for cadres: rewards of the subtree, listing a reward, its redemptions, cancel, pickup."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import audit
from core.errors import DomainError, Invalid, NotFound
from orgs import scoping
from rewards.models import Eligibility, PickupStatus, Redemption, RewardKind
from rewards.services import mall, verifiers
from rewards.services import pickup as pickups

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate
from .points import _int_or_raw


def _rewards(request, org):
    return (
        mall.rewards_for_cadre(request.user)
        .filter(org__path__startswith=org.path)
        .annotate(
            redeemed=Count("redemptions", filter=~Q(redemptions__status=PickupStatus.CANCELLED)),
            picked=Count("redemptions", filter=Q(redemptions__status=PickupStatus.PICKED_UP)),
        )
        .order_by("-created_at", "-id")
    )


def _mall_page(request, org, *, errors=None, form="", values=None, picked=None, status=200):
    user = request.user
    return page(
        request,
        "console/mall.html",
        {
            "nav": "mall",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "rewards": paginate(request, _rewards(request, org), 30),
            "is_admin": scoping.covers(user, org, admin=True),
            "kinds": RewardKind.choices,
            "eligibilities": Eligibility.choices,
            "errors": errors or {},
            "form": form,
            "values": values or {},
            "picked": picked,
            "verifiers": verifiers.verifiers_for(user).filter(org__path__startswith=org.path)[:100],
            "now": timezone.now(),
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def mall_page(request):
    return _mall_page(request, current_org(request))


def _when(raw: str, field: str) -> dt.datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("invalid_time", _("时间格式无效"), fields={field: _("时间格式无效")}) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


@cadre_required
@require_POST
def reward_create(request):
    user = request.user
    org = current_org(request)
    values = request.POST
    try:
        starts_at = _when(values.get("starts_at", ""), "starts_at")
        ends_at = _when(values.get("ends_at", ""), "ends_at")
        reward = mall.create_reward(
            user,
            org,
            title=values.get("title", ""),
            cost=_int_or_raw(values.get("cost", "")),
            stock=_int_or_raw(values.get("stock", "")),
            per_member_limit=_int_or_raw(values.get("per_member_limit", "1")),
            kind=values.get("kind", ""),
            description=values.get("description", "").strip(),
            eligibility=values.get("eligibility", ""),
            starts_at=starts_at,
            ends_at=ends_at,
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        return _mall_page(request, org, errors=error_dict(e), form="create", values=values, status=e.status)
    return redirect("console:reward", reward_id=reward.pk)


@cadre_required
@require_POST
def pickup(request):
    """核销: type a pickup code; the result (or why not) shows beside the box."""
    org = current_org(request)
    code = request.POST.get("code", "")
    try:
        r = pickups.confirm(request.user, code, ip=audit.client_ip(request))  # mall redemption or lottery prize
    except DomainError as e:
        errors = {"code": e.message}
        return _mall_page(request, org, errors=errors, form="pickup", values=request.POST, status=e.status)
    return _mall_page(request, org, picked=r)


@cadre_required
@require_POST
def verifier_add(request):
    """An admin cadre adds a merchant's account as 核销员 of the current org (by its phone)."""
    org = current_org(request)
    values = request.POST
    try:
        verifiers.add_verifier(
            request.user, org.pk, values.get("phone", ""), values.get("note", ""), ip=audit.client_ip(request)
        )
    except DomainError as e:
        errors = error_dict(e)
        if not e.fields:  # not an admin here: said beside the phone, where the cadre is looking
            errors["phone"] = e.message
        return _mall_page(request, org, errors=errors, form="verifier", values=values, status=e.status)
    return redirect(reverse("console:mall") + f"?org={org.pk}#verifiers")


@cadre_required
@require_POST
def verifier_remove(request, verifier_id: int):
    org = current_org(request)
    verifiers.remove_verifier(request.user, verifier_id, ip=audit.client_ip(request))
    return redirect(reverse("console:mall") + f"?org={org.pk}#verifiers")


def _reward_for_cadre(user, reward_id):
    reward = mall.rewards_for_cadre(user).filter(pk=reward_id).first()
    if reward is None:
        raise NotFound(_("未找到该商品"))
    return reward


def _reward_page(request, reward, *, errors=None, status=200):
    user = request.user
    status_filter = request.GET.get("status", "")
    qs = Redemption.objects.filter(reward=reward).select_related("user__member", "picked_up_by")
    if status_filter in PickupStatus.values:
        qs = qs.filter(status=status_filter)
    counts = dict(
        Redemption.objects.filter(reward=reward).values("status").annotate(n=Count("id")).values_list("status", "n")
    )
    return page(
        request,
        "console/reward_detail.html",
        {
            "nav": "mall",
            "org": reward.org,
            "reward": reward,
            "crumbs": breadcrumbs(user, reward.org),
            "redemptions": paginate(request, qs.order_by("-created_at", "-id")),
            "counts": counts,
            "statuses": PickupStatus.choices,
            "status_filter": status_filter,
            "can_manage": scoping.covers(user, reward.org),
            "errors": errors or {},
            "now": timezone.now(),
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def reward_detail(request, reward_id: int):
    return _reward_page(request, _reward_for_cadre(request.user, reward_id))


@cadre_required
@require_POST
def redemption_cancel(request, redemption_id: int):
    user = request.user
    r = Redemption.objects.filter(pk=redemption_id).select_related("reward").first()
    if r is None:
        raise NotFound()
    reward = _reward_for_cadre(user, r.reward_id)
    try:
        mall.cancel(user, r.pk, ip=audit.client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        errors = error_dict(e)
        errors["cancel_id"] = r.pk
        return _reward_page(request, reward, errors=errors, status=e.status)
    return redirect(f"{reverse('console:reward', args=[reward.pk])}?done=cancel")
