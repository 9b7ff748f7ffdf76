"""核销 one code, whatever it belongs to: a mall redemption or a lottery prize.

A cadre or a 核销员 (rewards.services.verifiers) scans or types a code; both kinds are one-time
codes of an org in their reach, so the cadre end offers one box for both and this module routes
to the owning service.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.utils.translation import gettext as _

from core.errors import NotFound

from ..models import Redemption, Win
from . import codes, lottery, mall
from .verifiers import may_verify


@dataclasses.dataclass
class Pickup:
    kind: str  # "redemption" | "win"
    code: str
    title: str
    detail: str
    cost: int
    status: str
    status_display: str
    created_at: dt.datetime
    picked_up_at: dt.datetime | None
    user: object


def _of_redemption(r: Redemption) -> Pickup:
    return Pickup(
        "redemption",
        r.code,
        r.reward.title,
        r.reward.get_kind_display(),
        r.cost,
        r.status,
        r.get_status_display(),
        r.created_at,
        r.picked_up_at,
        r.user,
    )


def _of_win(w: Win) -> Pickup:
    lot = w.entry.lottery
    return Pickup(
        "win",
        w.code,
        f"{w.prize.name} · {lot.title}",
        _("抽奖奖品"),
        lot.entry_cost,
        w.status,
        w.get_status_display(),
        w.entry.created_at,
        w.picked_up_at,
        w.entry.user,
    )


def find(actor, code: object) -> Pickup:
    code = codes.normalize(code)
    r = Redemption.objects.select_related("reward__org", "user").filter(code=code).first()
    if r is not None and may_verify(actor, r.reward.org):
        return _of_redemption(r)
    w = Win.objects.select_related("entry__lottery__org", "entry__user", "prize").filter(code=code).first()
    if w is not None and may_verify(actor, w.entry.lottery.org):
        return _of_win(w)
    raise NotFound(_("没有找到这个兑换码，或它不属于你管理的工会"))


def confirm(actor, code: object, *, ip: str | None = None) -> Pickup:
    found = find(actor, code)
    if found.kind == "redemption":
        return _of_redemption(mall.verify_pickup(actor, found.code, ip=ip))
    return _of_win(lottery.verify_win_pickup(actor, found.code, ip=ip))
