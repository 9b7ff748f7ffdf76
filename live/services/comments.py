"""The moderated comment wall of a live session.

A comment waits for a moderator (any cadre whose role reaches the session's org) unless the
session approves comments automatically. The wall shows approved comments to everyone and a
person's own pending ones to that person. Moderation is a conditional UPDATE from pending, so
two moderators deciding the same comment cannot both win.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError, Invalid, NotFound, Throttled

from ..models import Comment, CommentStatus, LiveSession
from .presence import epoch_minute
from .sessions import LiveErrors, can_moderate, session_for_cadre, session_for_user, sessions_for_cadre

MAX_LENGTH = 300
MIN_INTERVAL = dt.timedelta(seconds=5)  # one comment per person per 5 s: a wall, not a flood
WALL_SIZE = 50


class CommentErrors:
    NOT_PENDING = "not_pending"


def post_comment(user, session_id: object, body: object) -> Comment:
    session = session_for_user(user, session_id)
    if session.cancelled_at is not None:
        raise DomainError(LiveErrors.CANCELLED, _("该直播已取消"))
    text = " ".join(str(body or "").split())  # one line: collapse newlines and runs of spaces
    if not text:
        raise Invalid("required", _("请输入评论内容"), fields={"body": _("请输入评论内容")})
    if len(text) > MAX_LENGTH:
        msg = _("评论不能超过%(n)s个字") % {"n": MAX_LENGTH}
        raise Invalid("too_long", msg, fields={"body": msg})
    now = timezone.now()
    last = Comment.objects.filter(session=session, user=user).order_by("-id").values_list("created_at", flat=True)
    last = last.first()
    if last is not None and now - last < MIN_INTERVAL:
        wait = int((MIN_INTERVAL - (now - last)).total_seconds()) + 1
        raise Throttled("rate_limited", _("发言太快了，请稍后再试"), retry_after=wait)
    auto = session.auto_approve_comments
    return Comment.objects.create(
        session=session,
        user=user,
        body=text,
        status=CommentStatus.APPROVED if auto else CommentStatus.PENDING,
        minute=epoch_minute(now),
        moderated_at=now if auto else None,
    )


def wall(user, session: LiveSession, limit: int = WALL_SIZE) -> list[Comment]:
    """Newest first: approved comments, and the person's own pending ones."""
    mine = Q(user=user, status=CommentStatus.PENDING) if getattr(user, "is_authenticated", False) else Q(pk__in=[])
    return list(
        Comment.objects.filter(session=session)
        .filter(Q(status=CommentStatus.APPROVED) | mine)
        .select_related("user")
        .order_by("-id")[:limit]
    )


def queue(cadre, session: LiveSession | None = None) -> QuerySet[Comment]:
    """Pending comments the cadre may moderate, oldest first."""
    qs = Comment.objects.filter(status=CommentStatus.PENDING, session__in=sessions_for_cadre(cadre))
    if session is not None:
        qs = qs.filter(session=session)
    return qs.select_related("user", "session").order_by("id")


def moderate(cadre, comment_ids: list[object], *, approve: bool) -> int:
    """Approve or reject pending comments the cadre may moderate; returns how many moved."""
    ids = []
    for raw in comment_ids:
        try:
            ids.append(int(raw))
        except (TypeError, ValueError):
            raise NotFound(_("未找到该评论")) from None
    found = list(Comment.objects.filter(pk__in=ids).select_related("session__org"))
    if len(found) != len(set(ids)) or not all(can_moderate(cadre, c.session) for c in found):
        raise NotFound(_("未找到该评论"))
    moved = Comment.objects.filter(pk__in=ids, status=CommentStatus.PENDING).update(
        status=CommentStatus.APPROVED if approve else CommentStatus.REJECTED,
        moderated_by=cadre,
        moderated_at=timezone.now(),
    )
    if len(ids) == 1 and moved == 0:
        raise DomainError(CommentErrors.NOT_PENDING, _("该评论已经审核过了"))
    return moved


def moderate_session_all(cadre, session_id: object, *, approve: bool) -> int:
    """Approve (or reject) every pending comment of one session at once."""
    session = session_for_cadre(cadre, session_id)
    return Comment.objects.filter(session=session, status=CommentStatus.PENDING).update(
        status=CommentStatus.APPROVED if approve else CommentStatus.REJECTED,
        moderated_by=cadre,
        moderated_at=timezone.now(),
    )


def author_name(comment: Comment) -> str:
    """Name as the wall shows it: the name only, never the phone."""
    return comment.user.name or _("会员%(id)s") % {"id": comment.user_id}
