"""API.md "Points and rewards": balances and history, grants, the points mall."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest, JsonResponse
from ninja import Query, Router, Schema, Status
from pydantic import StrictInt

from core import idempotency
from core.audit import client_ip
from orgs import scoping
from points.services import budgets, ledger
from rewards.models import Eligibility, RewardKind
from rewards.services import mall

from .pagination import page_of

router = Router(tags=["points"])


class Paging(Schema):
    page: int = 1
    page_size: int = 50


@router.get("/me/points")
def my_points(request: HttpRequest, paging: Query[Paging]):
    user = request.auth
    items, count = page_of(ledger.history(user), paging.page, paging.page_size)
    return {
        "balance": user.points_balance,  # loaded with the token
        "items": [
            {
                "amount": e.amount,
                "kind": e.movement.kind,
                "reason": e.movement.reason,
                "source": e.movement.source,
                "created_at": e.created_at.isoformat(),
            }
            for e in items
        ],
        "count": count,
    }


# Strict: JSON `true` or `1.0` is not a number of points (lax parsing would make them 1).
class GrantIn(Schema):
    member_ids: list[StrictInt]
    amount: StrictInt
    reason: str


@router.post("/orgs/{int:org_id}/points/grants", response={201: dict})
def grant(request: HttpRequest, org_id: int, payload: GrantIn):
    org = scoping.org_for_cadre(request.auth, org_id, admin=True)
    n = budgets.grant(request.auth, org, payload.member_ids, payload.amount, payload.reason, ip=client_ip(request))
    return Status(201, {"granted": n})


class RewardIn(Schema):
    org_id: int
    title: str
    cost: StrictInt
    stock: StrictInt
    per_member_limit: StrictInt = 1
    kind: str = RewardKind.GOODS
    description: str = ""
    eligibility: str = Eligibility.MEMBERS
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None


def reward_out(r) -> dict:
    return {
        "id": r.pk,
        "org_id": r.org_id,
        "title": r.title,
        "kind": r.kind,
        "cost": r.cost,
        "stock_left": r.stock,
        "stock": r.stock_total,
        "per_member_limit": r.per_member_limit,
        "eligibility": r.eligibility,
        "starts_at": r.starts_at.isoformat() if r.starts_at else None,
        "ends_at": r.ends_at.isoformat() if r.ends_at else None,
        "active": r.active,
    }


@router.post("/rewards", response={201: dict}, tags=["rewards"])
def reward_create(request: HttpRequest, payload: RewardIn):
    org = scoping.org_for_cadre(request.auth, payload.org_id, admin=True)
    data = payload.dict(exclude={"org_id"})
    reward = mall.create_reward(request.auth, org, ip=client_ip(request), **data)
    return Status(201, reward_out(reward))


@router.get("/rewards", tags=["rewards"])
def reward_list(request: HttpRequest, paging: Query[Paging]):
    items, count = page_of(mall.rewards_for_member(request.auth).order_by("-id"), paging.page, paging.page_size)
    return {"items": [reward_out(r) for r in items], "count": count}


@router.get("/rewards/{int:reward_id}", tags=["rewards"])
def reward_detail(request: HttpRequest, reward_id: int):
    return reward_out(mall.reward_for_member(request.auth, reward_id))


def redemption_out(r) -> dict:
    return {
        "id": r.pk,
        "code": r.code,
        "reward_id": r.reward_id,
        "cost": r.cost,
        "status": r.status,
        "created_at": r.created_at.isoformat(),
        "picked_up_at": r.picked_up_at.isoformat() if r.picked_up_at else None,
    }


@router.post("/rewards/{int:reward_id}/redemptions", response={201: dict}, tags=["rewards"])
def redeem(request: HttpRequest, reward_id: int):
    # Built by hand, not through the response schema: the hot path of a sale rush.
    return JsonResponse(
        redemption_out(mall.redeem(request.auth, reward_id)), status=201, json_dumps_params={"ensure_ascii": False}
    )


# The sale reads and checks before its Idempotency-Key transaction opens (rewards.services.mall).
idempotency.claims_late("api:redeem")


@router.get("/me/redemptions", tags=["rewards"])
def my_redemptions(request: HttpRequest, paging: Query[Paging]):
    from rewards.models import Redemption

    items, count = page_of(Redemption.objects.filter(user=request.auth), paging.page, paging.page_size)
    return {"items": [redemption_out(r) for r in items], "count": count}


@router.post("/redemptions/{int:redemption_id}/cancel", tags=["rewards"])
def redemption_cancel(request: HttpRequest, redemption_id: int):
    return redemption_out(mall.cancel(request.auth, redemption_id, ip=client_ip(request)))


class PickupIn(Schema):
    code: str


@router.post("/redemptions/pickup", tags=["rewards"])
def redemption_pickup(request: HttpRequest, payload: PickupIn):
    return redemption_out(mall.verify_pickup(request.auth, payload.code, ip=client_ip(request)))
