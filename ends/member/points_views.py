"""Member end points pages (/m/points/, /m/mall/, /m/redemptions/): balance and history, 签到, the mall.

Every rule lives in points.services and rewards.services.mall; these views only call them and
show their answers (a DomainError's message beside the button it concerns).
"""

from __future__ import annotations

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.audit import client_ip
from core.errors import DomainError
from members.services import member_of
from points.models import EarnAction, Earning
from points.services import earning, expiry, ledger
from rewards.models import PickupStatus, Redemption
from rewards.services import mall

from .web import error_context

PER_PAGE = 30


# --- my points ----------------------------------------------------------------------------------


def _checked_in_today(user) -> bool:
    return Earning.objects.filter(user=user, rule__action=EarnAction.CHECKIN, day=timezone.localdate()).exists()


@login_required
def points(request):
    user = request.user
    if request.method == "POST":
        try:
            mv = earning.earn(user, EarnAction.CHECKIN)
        except DomainError as e:
            messages.error(request, e.message)
        else:
            got = sum(e.amount for e in mv.entries.all() if e.amount > 0)
            messages.success(request, _("签到成功，+%(n)s 积分") % {"n": got})
        return redirect("member:points")
    member = member_of(user)
    page = Paginator(ledger.history(user), PER_PAGE).get_page(request.GET.get("page"))
    ctx = {
        "member": member,
        "balance": ledger.balance_of(user),
        "notice": expiry.notice_for(user),
        "page": page,
        "checked_in": member is not None and _checked_in_today(user),
        "checkin_rule": earning.rule_for(member.org, EarnAction.CHECKIN) if member and member.certified else None,
    }
    return render(request, "member/points.html", ctx)


# --- the mall -----------------------------------------------------------------------------------


@login_required
def mall_list(request):
    rewards = mall.rewards_for_member(request.user).order_by("cost", "id")
    page = Paginator(rewards, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "member/mall.html",
        {"page": page, "balance": ledger.balance_of(request.user), "member": member_of(request.user)},
    )


def _reward_ctx(request, reward) -> dict:
    return {
        "reward": reward,
        "balance": ledger.balance_of(request.user),
        "mine": Redemption.objects.filter(reward=reward, user=request.user)
        .exclude(status=PickupStatus.CANCELLED)
        .count(),
        "now": timezone.now(),
        "errors": {},
        "error": "",
    }


@login_required
def reward_detail(request, pk: int):
    try:
        reward = mall.reward_for_member(request.user, pk)
    except DomainError:
        return render(request, "member/reward_missing.html", status=404)
    return render(request, "member/reward.html", _reward_ctx(request, reward))


@login_required
@require_POST
def reward_redeem(request, pk: int):
    try:
        reward = mall.reward_for_member(request.user, pk)
    except DomainError:
        return render(request, "member/reward_missing.html", status=404)
    try:
        r = mall.redeem(request.user, reward.pk)
    except DomainError as e:
        reward.refresh_from_db()
        ctx = {**_reward_ctx(request, reward), **error_context(e)}
        return render(request, "member/reward.html", ctx, status=e.status)
    messages.success(request, _("兑换成功：%(title)s，取货码 %(code)s") % {"title": reward.title, "code": r.code})
    return redirect(reverse("member:redemptions") + "?" + urlencode({"new": r.pk}))


# --- my redemptions -----------------------------------------------------------------------------


def _pickup_qr(request, code: str) -> str:
    link = request.build_absolute_uri(reverse("cadre:pickup")) + "?" + urlencode({"code": code})
    return segno.make(link, error="m").svg_inline(scale=4, border=2, dark="#111", omitsize=True)


@login_required
def redemptions(request):
    qs = Redemption.objects.filter(user=request.user).select_related("reward", "reward__org")
    page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {"r": r, "qr": _pickup_qr(request, r.code) if r.status == PickupStatus.ISSUED else ""} for r in page.object_list
    ]
    return render(request, "member/redemptions.html", {"page": page, "rows": rows, "new": request.GET.get("new", "")})


@login_required
@require_POST
def redemption_cancel(request, pk: int):
    try:
        r = mall.cancel(request.user, pk, ip=client_ip(request))
    except DomainError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("已取消兑换“%(title)s”，%(n)s 积分已退回") % {"title": r.reward.title, "n": r.cost})
    return redirect("member:redemptions")
