"""Member end live sessions (/m/live/…): the list, a session's page with the HLS player, the
reminder toggle, the comment wall and attendance.

The player page keeps itself current with htmx: every 30 s while the video plays it POSTs a
heartbeat to /m/live/<id>/heartbeat/ (the session cookie and the CSRF header set in the base
template) and swaps in the attendance line; the wall refreshes itself every 10 s. Token clients
use the API's /api/v1/live/… operations instead; both call live.services.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import DomainError, NotFound
from live import streams
from live.models import SessionStatus
from live.services import comments as comment_svc
from live.services import presence
from live.services import sessions as svc

from .web import error_context


def _htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _missing(request):
    return render(request, "member/live_missing.html", status=404)


@login_required
def live_list(request):
    groups = svc.split_for_list(svc.sessions_for_user(request.user))
    reminded = set(
        request.user.live_reminders.filter(session_id__in=[s.pk for s in groups["upcoming"]]).values_list(
            "session_id", flat=True
        )
    )
    return render(request, "member/live_list.html", {**groups, "reminded": reminded, "now": timezone.now()})


def _play(session) -> dict:
    """What the player gets: the live stream while live, the replay afterwards, nothing before."""
    status = session.status
    url = (
        session.stream_url
        if status == SessionStatus.LIVE
        else session.replay_url
        if status == SessionStatus.ENDED
        else ""
    )
    return {"url": url, "kind": "mp4" if url and streams.is_mp4(url) else "hls", "live": status == SessionStatus.LIVE}


def _comments_ctx(request, session, **extra) -> dict:
    wall = comment_svc.wall(request.user, session)
    for c in wall:
        c.author = comment_svc.author_name(c)
    return {"session": session, "wall": wall, "errors": {}, "error": "", "body": "", **extra}


@login_required
def live_detail(request, pk: int):
    try:
        session = svc.session_for_user(request.user, pk)
    except NotFound:
        return _missing(request)
    ctx = {
        "session": session,
        "status": session.status,
        "play": _play(session),
        "att": presence.attendance(request.user, session),
        "reminded": svc.has_reminder(request.user, session),
        **_comments_ctx(request, session),
    }
    return render(request, "member/live_detail.html", ctx)


@login_required
@require_POST
def live_reminder(request, pk: int):
    try:
        session = svc.session_for_user(request.user, pk)
    except NotFound:
        return _missing(request)
    error = ""
    try:
        on = svc.set_reminder(request.user, session.pk, request.POST.get("on") == "1")
    except DomainError as e:
        on, error = svc.has_reminder(request.user, session), e.message
    if _htmx(request):
        return render(request, "member/live_reminder.html", {"session": session, "reminded": on, "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("已设置开播提醒，开始前15分钟通知您") if on else _("已取消开播提醒"))
    return redirect("member:live", pk=session.pk)


@login_required
@require_POST
def live_heartbeat(request, pk: int):
    try:
        att = presence.heartbeat(request.user, pk)
        session = svc.session_for_user(request.user, pk)
    except NotFound:
        return _missing(request)
    return render(request, "member/live_attendance.html", {"att": att, "session": session})


@login_required
def live_comments(request, pk: int):
    """GET: the wall (polled). POST: add a comment; answers the form and wall (htmx) or redirects."""
    try:
        session = svc.session_for_user(request.user, pk)
    except NotFound:
        return _missing(request)
    if request.method != "POST":
        return render(request, "member/live_wall.html", _comments_ctx(request, session))
    body = request.POST.get("body", "")
    try:
        comment_svc.post_comment(request.user, session.pk, body)
    except DomainError as e:
        ctx = _comments_ctx(request, session, body=body, **error_context(e))
        if not ctx["error"] and not ctx["errors"]:
            ctx["error"] = e.message
        if _htmx(request):
            return render(request, "member/live_comments.html", ctx, status=200)  # htmx swaps 2xx only
        return render(
            request,
            "member/live_detail.html",
            {
                **ctx,
                "status": session.status,
                "play": _play(session),
                "att": presence.attendance(request.user, session),
                "reminded": svc.has_reminder(request.user, session),
            },
            status=e.status,
        )
    sent = _("评论已发布") if session.auto_approve_comments else _("评论已提交，审核通过后所有人可见")
    if _htmx(request):
        return render(request, "member/live_comments.html", _comments_ctx(request, session, sent=sent))
    messages.success(request, sent)
    return redirect(f"/m/live/{session.pk}/#comments")
