"""Builders for the lottery tests: a funded member, an open lottery, moving its clock to the draw."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from conftest import make_member
from points.services import budgets
from rewards.models import Lottery
from rewards.services import lottery as lotteries


def give_points(district, members, amount: int) -> None:
    """Mint at the federation and grant `amount` to each member (any org under the federation)."""
    budgets.mint(None, district.root, amount * len(members) + 1, "测试发行")
    budgets.grant(district.district_admin, district.root, [m.user_id for m in members], amount, "测试发放")


def members(district, n: int, points: int = 1000, org=None) -> list:
    ms = [make_member(org or district.union_a1, f"成员{i}") for i in range(n)]
    if points:
        give_points(district, ms, points)
    return ms


def open_lottery(district, *, prizes=(("一等奖", 1), ("二等奖", 2)), cost=10, org=None, **kw) -> Lottery:
    now = timezone.now()
    return lotteries.create_lottery(
        district.district_admin,
        org or district.root,
        title="测试抽奖",
        entry_cost=cost,
        prizes=list(prizes),
        opens_at=kw.pop("opens_at", now - dt.timedelta(hours=1)),
        closes_at=kw.pop("closes_at", now + dt.timedelta(days=1)),
        draw_at=kw.pop("draw_at", None),
        **kw,
    )


def close_now(lottery: Lottery) -> None:
    """Move the lottery's close and draw time to the past (entries already made stay)."""
    past = timezone.now() - dt.timedelta(seconds=1)
    Lottery.objects.filter(pk=lottery.pk).update(opens_at=past - dt.timedelta(hours=2), closes_at=past, draw_at=past)
    lottery.refresh_from_db()
