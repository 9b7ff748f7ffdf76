"""Member end lotteries (/m/lotteries/): the list, one lottery with my entries, entering, my prize.

Rules live in rewards.services.lottery; a DomainError's message is shown beside the button.
"""

from __future__ import annotations

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError, NotFound
from members.services import member_of
from points.services import ledger
from rewards.models import LotteryEntry, LotteryStatus, Prize
from rewards.services import lottery as lotteries

from .web import error_context


@login_required
def lottery_list(request):
    items = list(lotteries.lotteries_for_member(request.user).order_by("-status", "-draw_at", "-id")[:50])
    mine: dict[int, int] = {}
    for lottery_id in LotteryEntry.objects.filter(user=request.user, lottery__in=items).values_list(
        "lottery_id", flat=True
    ):
        mine[lottery_id] = mine.get(lottery_id, 0) + 1
    prizes: dict[int, list[Prize]] = {}
    for p in Prize.objects.filter(lottery__in=items).order_by("position", "id"):
        prizes.setdefault(p.lottery_id, []).append(p)
    won = set(
        lotteries.my_wins(request.user).filter(entry__lottery__in=items).values_list("entry__lottery_id", flat=True)
    )
    rows = [{"l": lt, "mine": mine.get(lt.pk, 0), "prizes": prizes.get(lt.pk, []), "won": lt.pk in won} for lt in items]
    ctx = {"rows": rows, "balance": ledger.balance_of(request.user), "now": timezone.now()}
    return render(request, "member/lottery_list.html", ctx)


def _qr(code: str) -> str:
    return segno.make(code, error="m").svg_inline(scale=5, border=2, dark="#111", omitsize=True)


def _detail_ctx(request, lottery) -> dict:
    now = timezone.now()
    entries = lotteries.my_entries(request.user, lottery)
    wins = [{"w": w, "qr": _qr(w.code)} for w in lotteries.my_wins(request.user, lottery)]
    return {
        "lottery": lottery,
        "prizes": list(lottery.prizes.order_by("position", "id")),
        "entries": entries,
        "wins": wins,
        "balance": ledger.balance_of(request.user),
        "member": member_of(request.user),
        "drawn": lottery.status == LotteryStatus.DRAWN,
        "is_open": lottery.status == LotteryStatus.OPEN and lottery.opens_at <= now < lottery.closes_at,
        "not_started": now < lottery.opens_at,
        "can_enter_more": len(entries) < lottery.max_entries_per_member,
        "entry_count": lottery.entries.count(),
        "errors": {},
        "error": "",
    }


@login_required
def lottery_detail(request, pk: int):
    try:
        lottery = lotteries.lottery_for_member(request.user, pk)
    except NotFound:
        return render(request, "member/lottery_missing.html", status=404)
    if request.method == "POST":
        try:
            entry = lotteries.enter(request.user, lottery.pk)
        except DomainError as e:
            lottery.refresh_from_db()
            return render(
                request,
                "member/lottery_detail.html",
                {**_detail_ctx(request, lottery), **error_context(e)},
                status=e.status,
            )
        messages.success(
            request,
            _("参与成功：第 %(n)s 次参与，已扣除 %(cost)s 积分") % {"n": entry.n, "cost": lottery.entry_cost},
        )
        return redirect("member:lottery", pk=lottery.pk)
    return render(request, "member/lottery_detail.html", _detail_ctx(request, lottery))
