"""Activities (API.md "Activities": /activities): publish or propose, decide, find, sign up and
cancel, the sign-up list and its export, messages, cancelling, check-in and attendance."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from ninja import File, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import StrictBool, StrictInt

from activities.models import Activity, Signup, SignupStatus
from activities.services import activities as svc
from activities.services import checkin, signups
from clubs.models import Club
from core.audit import client_ip
from core.errors import Forbidden, Invalid, NotFound
from orgs.models import Org

from .body import json_object, openapi_body
from .pagination import page_of

router = Router(tags=["activities"])


class ActivityIn(Schema):
    org_id: StrictInt
    title: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: StrictInt
    waitlist: StrictBool = True
    eligibility: str = "members"
    category: str = "other"
    description: str = ""
    place: str = ""
    signup_opens_at: dt.datetime | None = None
    signup_closes_at: dt.datetime | None = None
    cancel_until: dt.datetime | None = None
    extra_fields: list[dict] | None = None
    points_cost: StrictInt = 0
    points_reward: StrictInt = 0
    club_id: StrictInt | None = None


class ActivityPatch(Schema):
    title: str | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    capacity: StrictInt | None = None
    waitlist: StrictBool | None = None
    eligibility: str | None = None
    category: str | None = None
    description: str | None = None
    place: str | None = None
    signup_opens_at: dt.datetime | None = None
    signup_closes_at: dt.datetime | None = None
    cancel_until: dt.datetime | None = None
    extra_fields: list[dict] | None = None
    points_cost: StrictInt | None = None
    points_reward: StrictInt | None = None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def activity_out(a: Activity, user=None) -> dict:
    body = {
        "id": a.pk,
        "title": a.title,
        "status": a.status,
        "org_id": a.org_id,
        "org": {"id": a.org_id, "name": a.org.name},
        "club_id": a.club_id,
        "category": a.category,
        "description": a.description,
        "place": a.place,
        "cover_url": a.cover.url if a.cover else None,
        "starts_at": _iso(a.starts_at),
        "ends_at": _iso(a.ends_at),
        "signup_opens_at": _iso(a.signup_opens_at),
        "signup_closes_at": _iso(a.signup_closes_at),
        "cancel_until": _iso(a.cancel_until),
        "capacity": a.capacity,
        "confirmed_count": a.confirmed_count,
        "waitlist_count": a.waitlist_count,
        "seats_left": max(0, a.capacity - a.confirmed_count),
        "waitlist": a.waitlist,
        "eligibility": a.eligibility,
        "extra_fields": a.extra_fields or [],
        "points_cost": a.points_cost,
        "points_reward": a.points_reward,
        "organizer_id": a.organizer_id,
        "member_initiated": a.member_initiated,
        "checked_in_count": a.checked_in_count,
        "decision_reason": a.decision_reason,
        "cancelled_at": _iso(a.cancelled_at),
        "cancel_reason": a.cancel_reason,
    }
    if user is not None:
        mine = signups.my_signup(user, a)
        live = mine is not None and mine.status != SignupStatus.CANCELLED
        body["my_signup"] = (
            {
                "id": mine.pk,
                "status": mine.status,
                "position": signups.waitlist_position(mine),
                "checked_in_at": _iso(mine.checked_in_at),
            }
            if live
            else None
        )
        body["my_status"] = mine.status if live else None
        body["my_position"] = signups.waitlist_position(mine) if live else None
    return body


def signup_out(s: Signup, *, position: int | None = None) -> dict:
    return {
        "id": s.pk,
        "activity_id": s.activity_id,
        "status": s.status,
        "position": position,
        "created_at": _iso(s.created_at),
        "checked_in_at": _iso(s.checked_in_at),
        "points_paid": bool(s.payment_id),
    }


def _activity(request: HttpRequest, activity_id: int) -> Activity:
    return svc.activity_for_user(request.auth, activity_id)


# --- signing up (first: the rush's hot path is the first URL pattern tried) -----------------------------------------------------------------------------------


_SIGNUP_BODY = openapi_body(
    {"type": "object", "properties": {"answers": {"type": "object", "additionalProperties": {"type": "string"}}}},
    required=False,
)


@router.post("/activities/{int:activity_id}/signups", response={201: dict}, openapi_extra=_SIGNUP_BODY)
def activity_signup(request: HttpRequest, activity_id: int):
    """Body (optional): `{"answers": {"<extra field key>": "..."}}`. → 201 `{"status", "position"}`."""
    body = json_object(request)
    s = signups.sign_up(request.auth, activity_id, body.get("answers"), ip=client_ip(request))
    out = {"id": s.pk, "activity_id": s.activity_id, "status": s.status, "position": getattr(s, "position", None)}
    return JsonResponse(out, status=201)


@router.delete("/activities/{int:activity_id}/signups/me", response={204: None})
def activity_signup_cancel(request: HttpRequest, activity_id: int):
    """Cancel my sign-up (204); the first on the waitlist is confirmed in the same transaction."""
    signups.cancel_signup(request.auth, activity_id)
    return HttpResponse(status=204)


# --- publishing -----------------------------------------------------------------------------------


@router.post("/activities", response={201: dict})
def activity_create(request: HttpRequest, payload: ActivityIn):
    """An admin cadre publishes; a certified member of the org's subtree proposes (status "proposed")."""
    org = Org.objects.filter(pk=payload.org_id).first()
    if org is None:
        raise NotFound(_("未找到该组织"))
    club = None
    if payload.club_id is not None:
        club = Club.objects.select_related("org").filter(pk=payload.club_id).first()
        if club is None:
            raise Invalid("invalid", _("未找到该兴趣联盟"), fields={"club_id": _("未找到")})
    data = payload.dict(exclude={"org_id", "club_id"})
    activity = svc.create_activity(request.auth, org, club=club, ip=client_ip(request), **data)
    return Status(201, activity_out(activity))


class ListQuery(Schema):
    page: int = 1
    page_size: int = 20
    category: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    scope: str = "all"


@router.get("/activities")
def activity_list(request: HttpRequest, query: Query[ListQuery]):
    """Open activities the caller reaches, soonest first (scope all | org | clubs | mine)."""
    if query.scope not in ("all", "org", "clubs", "mine"):
        raise Invalid("invalid", _("scope 应为 all、org、clubs 或 mine"), fields={"scope": _("无效")})
    qs = svc.activities_for_user(
        request.auth, category=query.category, date_from=query.date_from, date_to=query.date_to, scope=query.scope
    )
    items, count = page_of(qs, query.page, query.page_size)
    return {"items": [activity_out(a) for a in items], "count": count}


class ManagedQuery(Schema):
    page: int = 1
    page_size: int = 50
    status: str | None = None


@router.get("/activities/managed")
def activity_managed(request: HttpRequest, query: Query[ManagedQuery]):
    """For cadres: every activity in their subtrees, newest first, with the attendance rate."""
    items, count = page_of(svc.activities_for_cadre(request.auth, status=query.status), query.page, query.page_size)
    return {
        "items": [
            {
                **activity_out(a),
                "attendance_rate": round(a.checked_in_count / a.confirmed_count, 4) if a.confirmed_count else 0.0,
            }
            for a in items
        ],
        "count": count,
    }


@router.get("/activities/proposals")
def activity_proposals(request: HttpRequest, query: Query[ManagedQuery]):
    """For cadres: members' proposals waiting for a decision."""
    items, count = page_of(svc.proposals_for_cadre(request.auth), query.page, query.page_size)
    return {"items": [activity_out(a) for a in items], "count": count}


@router.get("/activities/{int:activity_id}")
def activity_detail(request: HttpRequest, activity_id: int):
    return activity_out(_activity(request, activity_id), request.auth)


@router.patch("/activities/{int:activity_id}")
def activity_update(request: HttpRequest, activity_id: int, payload: ActivityPatch):
    activity = _activity(request, activity_id)
    fields = payload.dict(exclude_unset=True)
    nulls = [k for k, v in fields.items() if v is None]
    if nulls:
        raise Invalid("invalid", _("不能为空：") + "、".join(nulls), fields=dict.fromkeys(nulls, _("不能为空")))
    return activity_out(svc.update_activity(request.auth, activity, ip=client_ip(request), **fields), request.auth)


@router.post("/activities/{int:activity_id}/cover")
def activity_cover(request: HttpRequest, activity_id: int, file: File[UploadedFile] = None):
    """multipart `file`: JPEG, PNG, WebP or GIF up to 5 MB; stored re-encoded as a JPEG ≤ 1280 px."""
    activity = _activity(request, activity_id)
    if file is None:
        raise Invalid("invalid_image", _("请上传封面图片（multipart 字段 file）"), fields={"file": _("必填")})
    return activity_out(svc.set_cover(request.auth, activity, file, ip=client_ip(request)))


class DecisionIn(Schema):
    approve: StrictBool
    reason: str = ""
    edits: dict | None = None


@router.post("/activities/{int:activity_id}/decision")
def activity_decide(request: HttpRequest, activity_id: int, payload: DecisionIn):
    """A cadre approves (optionally with edits) or rejects (reason required) a member's proposal."""
    activity = _activity(request, activity_id)
    activity = svc.decide_proposal(
        request.auth,
        activity,
        approve=payload.approve,
        reason=payload.reason,
        edits=payload.edits,
        ip=client_ip(request),
    )
    return activity_out(activity)


class ReasonIn(Schema):
    reason: str


@router.post("/activities/{int:activity_id}/cancel")
def activity_cancel(request: HttpRequest, activity_id: int, payload: ReasonIn):
    """Cancel before the start: every sign-up cancelled, points costs refunded, everyone told."""
    activity = _activity(request, activity_id)
    return activity_out(svc.cancel_activity(request.auth, activity, reason=payload.reason, ip=client_ip(request)))


class SignupListQuery(Schema):
    page: int = 1
    page_size: int = 50
    status: str | None = None


@router.get("/activities/{int:activity_id}/signups")
def activity_signups(request: HttpRequest, activity_id: int, query: Query[SignupListQuery]):
    """The sign-up list (organizer or a cadre of the org): names, masked phones, status, answers (masked)."""
    activity = _activity(request, activity_id)
    items, count = page_of(signups.signups_of(request.auth, activity, status=query.status), query.page, query.page_size)
    return {
        "items": [
            {
                **signup_out(s),
                "user_id": s.user_id,
                "name": s.user.name,
                "phone_masked": s.user.phone_masked,
                "answers": dict(signups.answers_for_display(activity, s)),
                "checkin_method": s.checkin_method or None,
            }
            for s in items
        ],
        "count": count,
    }


@router.get("/activities/{int:activity_id}/signups/export")
def activity_signups_export(request: HttpRequest, activity_id: int):
    """The sign-up list as .xlsx."""
    activity = _activity(request, activity_id)
    data = signups.export_signups_xlsx(request.auth, activity, ip=client_ip(request))
    resp = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    resp["Content-Disposition"] = f'attachment; filename="activity-{activity.pk}-signups.xlsx"'
    return resp


class MessageIn(Schema):
    title: str
    body: str
    statuses: list[str] = ["confirmed"]


@router.post("/activities/{int:activity_id}/messages", response={201: dict})
def activity_message(request: HttpRequest, activity_id: int, payload: MessageIn):
    """A notice to the participants (in-app, and the WeChat outbox)."""
    activity = _activity(request, activity_id)
    n = signups.message_participants(
        request.auth, activity, title=payload.title, body=payload.body, statuses=payload.statuses, ip=client_ip(request)
    )
    return Status(201, {"sent": n})


# --- check-in -------------------------------------------------------------------------------------


@router.get("/activities/{int:activity_id}/checkin-code")
def activity_checkin_code(request: HttpRequest, activity_id: int):
    """For the organizer's screen: the current rotating code, the member-end URL it opens, and
    the seconds until it changes."""
    activity = _activity(request, activity_id)
    if not svc.can_manage(request.auth, activity):
        raise Forbidden("not_allowed", _("只有活动组织者或工会干部可以展示签到码"))
    code, left = checkin.rotating_code(activity)
    return {"code": code, "url": checkin.checkin_url(activity, code), "seconds_left": left}


class CodeIn(Schema):
    code: str


@router.post("/activities/{int:activity_id}/checkins", response={201: dict})
def activity_checkin(request: HttpRequest, activity_id: int, payload: CodeIn):
    """The member scanned the organizer's rotating QR code."""
    s = checkin.check_in_by_code(request.auth, activity_id, payload.code)
    return Status(201, {**signup_out(s), "points": s.reward_id is not None})


class CardIn(Schema):
    card_token: str


@router.post("/activities/{int:activity_id}/checkins/card", response={201: dict})
def activity_checkin_card(request: HttpRequest, activity_id: int, payload: CardIn):
    """The organizer (or a cadre of the org) scanned a member's card QR (the token or the whole link)."""
    activity = _activity(request, activity_id)
    s = checkin.check_in_by_card(request.auth, activity, payload.card_token, ip=client_ip(request))
    return Status(201, {**signup_out(s), "user_id": s.user_id, "name": s.user.name, "points": s.reward_id is not None})


@router.get("/activities/{int:activity_id}/attendance")
def activity_attendance(request: HttpRequest, activity_id: int):
    activity = _activity(request, activity_id)
    if not svc.can_manage(request.auth, activity):
        raise Forbidden("not_allowed", _("只有活动组织者或工会干部可以查看签到情况"))
    return checkin.attendance(activity)
