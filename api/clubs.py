"""Interest clubs (兴趣联盟): list, read, propose, join and leave, decide a proposal."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status

from clubs.models import Club, JoinPolicy
from clubs.services import clubs as svc
from core.audit import client_ip

from .pagination import page_of

router = Router(tags=["clubs"])


def club_out(c: Club, user=None) -> dict:
    body = {
        "id": c.pk,
        "name": c.name,
        "category": c.category,
        "description": c.description,
        "org": {"id": c.org_id, "name": c.org.name},
        "join_policy": c.join_policy,
        "status": c.status,
        "members_count": c.members_count,
    }
    if user is not None:
        ms = svc.membership_of(user, c)
        body["my_membership"] = {"status": ms.status, "role": ms.role} if ms else None
    return body


class ClubFilter(Schema):
    mine: bool = False
    page: int = 1
    page_size: int = 50


@router.get("/clubs")
def club_list(request: HttpRequest, filters: Query[ClubFilter]):
    """Active clubs in reach (the caller's union and above), or `?mine=1`: the caller's clubs and proposals."""
    qs = svc.my_clubs(request.auth) if filters.mine else svc.clubs_for_user(request.auth)
    items, count = page_of(qs.order_by("-members_count", "id"), filters.page, filters.page_size)
    return {"items": [club_out(c) for c in items], "count": count}


@router.get("/clubs/{int:club_id}")
def club_detail(request: HttpRequest, club_id: int):
    return club_out(svc.club_for_user(request.auth, club_id), request.auth)


class ClubIn(Schema):
    name: str
    description: str
    category: str = ""
    join_policy: str = JoinPolicy.OPEN


@router.post("/clubs", response={201: dict})
def club_propose(request: HttpRequest, payload: ClubIn):
    """A certified member proposes a club for their union → 201 (status "proposed"); 409 `name_taken`."""
    club = svc.propose(request.auth, **payload.dict())
    return Status(201, club_out(club))


class DecisionIn(Schema):
    approve: bool
    reason: str = ""


@router.post("/clubs/{int:club_id}/decision")
def club_decide(request: HttpRequest, club_id: int, payload: DecisionIn):
    """A cadre covering the club's union approves or rejects (reason required) a proposal; 409 `not_proposed`."""
    club = svc.decide(request.auth, club_id, approve=payload.approve, reason=payload.reason, ip=client_ip(request))
    return club_out(club)


@router.post("/clubs/{int:club_id}/members", response={201: dict})
def club_join(request: HttpRequest, club_id: int):
    """Join → 201 `{"status": "active"|"pending", "members_count"}`; 409 `already_member` | `already_pending` |
    `club_not_active`; 403 `not_a_member` (followers)."""
    ms = svc.join(request.auth, club_id)
    count = Club.objects.filter(pk=ms.club_id).values_list("members_count", flat=True).first()
    return Status(201, {"status": ms.status, "role": ms.role, "members_count": count})


@router.delete("/clubs/{int:club_id}/members/me", response={204: None})
def club_leave(request: HttpRequest, club_id: int):
    """Leave (or withdraw a pending request) → 204; 409 `not_in_club` | `last_admin`."""
    svc.leave(request.auth, club_id)
    return HttpResponse(status=204)
