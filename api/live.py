"""Live sessions (在线直播): list, read, heartbeats (attendance and points), reminders, comments.

The member end's player page sends its heartbeats to /m/live/<id>/heartbeat/ with the session
cookie; apps and mini programs use POST /live/{id}/heartbeats here with a bearer token. Both
count the same minute once.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema, Status

from live.models import LiveSession
from live.services import comments as comment_svc
from live.services import presence
from live.services import sessions as svc

from .pagination import page_of

router = Router(tags=["live"])


def session_out(s: LiveSession) -> dict:
    status = s.status
    return {
        "id": s.pk,
        "title": s.title,
        "speaker": s.speaker,
        "description": s.description,
        "org": {"id": s.org_id, "name": s.org.name},
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "status": status,
        "stream_url": s.stream_url if status == "live" else None,
        "replay_url": s.replay_url or None if status == "ended" else None,
        "min_minutes": s.min_minutes,
        "points_reward": s.points_reward,
    }


class SessionFilter(Schema):
    status: str = ""  # scheduled | live | ended; empty: all
    page: int = 1
    page_size: int = 50


@router.get("/live")
def live_list(request: HttpRequest, filters: Query[SessionFilter]):
    now = timezone.now()
    qs = svc.sessions_for_user(request.auth)
    if filters.status == "scheduled":
        qs = qs.filter(starts_at__gt=now)
    elif filters.status == "live":
        qs = qs.filter(starts_at__lte=now, ends_at__gt=now)
    elif filters.status == "ended":
        qs = qs.filter(ends_at__lte=now)
    items, count = page_of(qs.order_by("-starts_at", "-id"), filters.page, filters.page_size)
    return {"items": [session_out(s) for s in items], "count": count}


@router.get("/live/{int:session_id}")
def live_detail(request: HttpRequest, session_id: int):
    s = svc.session_for_user(request.auth, session_id)
    body = session_out(s)
    body["attendance"] = presence.attendance(request.auth, s).as_dict()
    body["reminder"] = svc.has_reminder(request.auth, s)
    return body


@router.post("/live/{int:session_id}/heartbeats")
def live_heartbeat(request: HttpRequest, session_id: int):
    """Count this minute once → 200 the attendance `{"minutes","min_minutes","points_reward","eligible",
    "rewarded","counted","live","note"}` (`counted` false: this minute was counted already, or not live)."""
    return presence.heartbeat(request.auth, session_id).as_dict()


@router.put("/live/{int:session_id}/reminder")
def live_remind(request: HttpRequest, session_id: int):
    """Set the reminder (idempotent) → 200 `{"reminder": true}`; 409 `not_scheduled` once it started."""
    return {"reminder": svc.set_reminder(request.auth, session_id, True)}


@router.delete("/live/{int:session_id}/reminder")
def live_unremind(request: HttpRequest, session_id: int):
    return {"reminder": svc.set_reminder(request.auth, session_id, False)}


def comment_out(c) -> dict:
    return {
        "id": c.pk,
        "author": comment_svc.author_name(c),
        "body": c.body,
        "status": c.status,
        "created_at": c.created_at.isoformat(),
    }


@router.get("/live/{int:session_id}/comments")
def live_comments(request: HttpRequest, session_id: int):
    """The wall: approved comments and the caller's own pending ones, newest first (50)."""
    s = svc.session_for_user(request.auth, session_id)
    items = comment_svc.wall(request.auth, s)
    return {"items": [comment_out(c) for c in items], "count": len(items)}


class CommentIn(Schema):
    body: str


@router.post("/live/{int:session_id}/comments", response={201: dict})
def live_comment(request: HttpRequest, session_id: int, payload: CommentIn):
    """→ 201 the comment (`status` "pending" until a moderator approves, unless the session auto-approves);
    422 `required` | `too_long` (over 300 characters); 429 `rate_limited` (one per 5 s)."""
    return Status(201, comment_out(comment_svc.post_comment(request.auth, session_id, payload.body)))


class ModerationIn(Schema):
    comment_ids: list[int]
    approve: bool


@router.post("/live/comments/moderation")
def live_moderate(request: HttpRequest, payload: ModerationIn):
    """A cadre covering the sessions' orgs approves or rejects pending comments → `{"moved": n}`."""
    return {"moved": comment_svc.moderate(request.auth, payload.comment_ids, approve=payload.approve)}
