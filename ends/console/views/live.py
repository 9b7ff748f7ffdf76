"""在线直播 for cadres: sessions of the subtree, scheduling and editing, the replay address,
cancelling, comment moderation, and viewers and comments per minute."""

from __future__ import annotations

import functools

from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import audit
from core.errors import DomainError, Forbidden
from live.models import Audience, CommentStatus
from live.services import comments as comment_svc
from live.services import presence
from live.services import sessions as svc
from orgs import scoping

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate


def admin_only(view):
    """Staff cadres may look and moderate; scheduling, editing, replays and cancelling need an admin."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Forbidden as e:
            return page(request, "console/live_forbidden.html", {"nav": "live", "message": e.message}, status=403)

    return wrapper


def _local_input(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M") if value else ""


@cadre_required
def live_list(request):
    user = request.user
    org = current_org(request)
    qs = (
        svc.sessions_for_cadre(user)
        .filter(org__path__startswith=org.path)
        .annotate(pending=Count("comments", filter=Q(comments__status=CommentStatus.PENDING)))
        .order_by("-starts_at", "-id")
    )
    return page(
        request,
        "console/live_list.html",
        {
            "nav": "live",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "sessions": paginate(request, qs, 30),
            "is_admin": scoping.covers(user, org, admin=True),
            "queue_count": comment_svc.queue(user).filter(session__org__path__startswith=org.path).count(),
            "now": timezone.now(),
            "query": page_query(request),
        },
    )


def _form_page(request, org, *, session=None, values=None, errors=None, status=200):
    return page(
        request,
        "console/live_form.html",
        {
            "nav": "live",
            "org": org,
            "crumbs": breadcrumbs(request.user, org),
            "session": session,
            "values": values or {},
            "errors": errors or {},
            "audiences": Audience.choices,
        },
        status=status,
    )


@cadre_required
@admin_only
def live_new(request):
    org = current_org(request, admin=True)
    if request.method == "POST":
        try:
            session = svc.create_session(request.user, org, request.POST, ip=audit.client_ip(request))
        except DomainError as e:
            return _form_page(request, org, values=request.POST, errors=error_dict(e), status=e.status)
        return redirect("console:live", session_id=session.pk)
    return _form_page(request, org, values={"min_minutes": 10, "points_reward": 0, "audience": Audience.MEMBERS})


@cadre_required
@admin_only
def live_edit(request, session_id: int):
    session = svc.session_for_cadre(request.user, session_id, admin=True)
    if request.method == "POST":
        try:
            svc.update_session(request.user, session.pk, request.POST, ip=audit.client_ip(request))
        except DomainError as e:
            return _form_page(
                request, session.org, session=session, values=request.POST, errors=error_dict(e), status=e.status
            )
        return redirect(f"{reverse('console:live', args=[session.pk])}?done=saved")
    values = {
        "title": session.title,
        "speaker": session.speaker,
        "description": session.description,
        "starts_at": _local_input(session.starts_at),
        "ends_at": _local_input(session.ends_at),
        "stream_url": session.stream_url,
        "audience": session.audience,
        "min_minutes": session.min_minutes,
        "points_reward": session.points_reward,
        "auto_approve_comments": "1" if session.auto_approve_comments else "",
    }
    return _form_page(request, session.org, session=session, values=values)


def _detail_page(request, session, *, errors=None, form="", values=None, status=200):
    user = request.user
    return page(
        request,
        "console/live_detail.html",
        {
            "nav": "live",
            "session": session,
            "org": session.org,
            "crumbs": breadcrumbs(user, session.org),
            "status": session.status,
            "summary": presence.summary(session),
            "timeline": presence.timeline(session),
            "queue": list(comment_svc.queue(user, session)[:200]),
            "approved": list(
                session.comments.filter(status=CommentStatus.APPROVED).select_related("user").order_by("-id")[:50]
            ),
            "is_admin": scoping.covers(user, session.org, admin=True),
            "errors": errors or {},
            "form": form,
            "values": values or {},
            "done": request.GET.get("done", ""),
        },
        status=status,
    )


@cadre_required
def live_detail(request, session_id: int):
    return _detail_page(request, svc.session_for_cadre(request.user, session_id))


@cadre_required
def live_timeline(request, session_id: int):
    """The chart's data, refreshed by the page every 30 s while the session is live."""
    session = svc.session_for_cadre(request.user, session_id)
    return JsonResponse(
        {"timeline": presence.timeline(session), "summary": {**presence.summary(session), "peak_at": None}},
        json_dumps_params={"ensure_ascii": False},
    )


@cadre_required
@admin_only
@require_POST
def live_replay(request, session_id: int):
    session = svc.session_for_cadre(request.user, session_id, admin=True)
    try:
        svc.set_replay(request.user, session.pk, request.POST.get("replay_url", ""), ip=audit.client_ip(request))
    except DomainError as e:
        return _detail_page(request, session, errors=error_dict(e), form="replay", values=request.POST, status=e.status)
    return redirect(f"{reverse('console:live', args=[session.pk])}?done=replay")


@cadre_required
@admin_only
@require_POST
def live_cancel(request, session_id: int):
    session = svc.session_for_cadre(request.user, session_id, admin=True)
    try:
        svc.cancel_session(request.user, session.pk, ip=audit.client_ip(request))
    except DomainError as e:
        return _detail_page(request, session, errors=error_dict(e), form="cancel", status=e.status)
    return redirect(f"{reverse('console:live', args=[session.pk])}?done=cancelled")


@cadre_required
@require_POST
def live_moderate(request, session_id: int):
    """Approve or reject the ticked comments, one comment, or all pending ones of the session."""
    session = svc.session_for_cadre(request.user, session_id)
    approve = request.POST.get("decision") == "approve"
    try:
        if request.POST.get("all") == "1":
            n = comment_svc.moderate_session_all(request.user, session.pk, approve=approve)
        else:
            ids = request.POST.getlist("comment")
            if not ids:
                raise DomainError("nothing_selected", _("请先勾选要审核的评论"))
            n = comment_svc.moderate(request.user, ids, approve=approve)
    except DomainError as e:
        return _detail_page(request, session, errors=error_dict(e), form="moderate", status=e.status)
    return redirect(
        f"{reverse('console:live', args=[session.pk])}?done={'approved' if approve else 'rejected'}&n={n}#queue"
    )
