"""Lotteries (积分抽奖): create, enter, draw, the public verification record, prize pickup."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema, Status

from core.audit import client_ip
from orgs import scoping
from rewards.models import Eligibility
from rewards.services import lottery as lotteries

router = Router(tags=["lotteries"])


class PrizeIn(Schema):
    name: str
    quantity: int


class LotteryIn(Schema):
    org_id: int
    title: str
    entry_cost: int
    prizes: list[PrizeIn]
    opens_at: dt.datetime
    closes_at: dt.datetime
    draw_at: dt.datetime | None = None
    max_entries_per_member: int = 1
    eligibility: str = Eligibility.MEMBERS
    refund_losers: bool = False
    description: str = ""


@router.post("/lotteries", response={201: dict})
def lottery_create(request: HttpRequest, payload: LotteryIn):
    org = scoping.org_for_cadre(request.auth, payload.org_id, admin=True)
    data = payload.dict(exclude={"org_id", "prizes"})
    prizes = [(p.name, p.quantity) for p in payload.prizes]
    lottery = lotteries.create_lottery(request.auth, org, prizes=prizes, ip=client_ip(request), **data)
    return Status(201, lotteries.public_record(lottery))


@router.get("/lotteries/{int:lottery_id}")
def lottery_detail(request: HttpRequest, lottery_id: int):
    lottery = lotteries.lottery_for_member(request.auth, lottery_id)
    body = lotteries.public_record(lottery)
    body["my_entries"] = [{"id": e.pk, "n": e.n} for e in lotteries.my_entries(request.auth, lottery)]
    body["my_wins"] = [win_out(w) for w in lotteries.my_wins(request.auth, lottery)]
    return body


@router.get("/lotteries/{int:lottery_id}/record", auth=None)
def lottery_record(request: HttpRequest, lottery_id: int):
    """Public: the data anyone needs to re-run the draw (`manage.py verify_lottery`)."""
    return lotteries.public_record(lotteries.get_lottery(lottery_id))


@router.post("/lotteries/{int:lottery_id}/entries", response={201: dict})
def lottery_enter(request: HttpRequest, lottery_id: int):
    entry = lotteries.enter(request.auth, lottery_id)
    return Status(201, {"id": entry.pk, "n": entry.n, "lottery_id": entry.lottery_id})


@router.post("/lotteries/{int:lottery_id}/draw")
def lottery_draw(request: HttpRequest, lottery_id: int):
    return lotteries.public_record(lotteries.draw(request.auth, lottery_id, ip=client_ip(request)))


def win_out(w) -> dict:
    return {
        "id": w.pk,
        "entry_id": w.entry_id,
        "prize_id": w.prize_id,
        "prize": w.prize.name,
        "code": w.code,
        "status": w.status,
        "picked_up_at": w.picked_up_at.isoformat() if w.picked_up_at else None,
    }


class PickupIn(Schema):
    code: str


@router.post("/wins/pickup")
def win_pickup(request: HttpRequest, payload: PickupIn):
    return win_out(lotteries.verify_win_pickup(request.auth, payload.code, ip=client_ip(request)))
