"""Member end interest clubs (/m/clubs/…): lists, a club's page, proposing, joining and leaving,
and the club admin's tools (join requests, announcements, members). Rules live in
clubs.services.clubs; these views call it and show its answers beside the field they concern."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clubs.models import ClubStatus, JoinPolicy, MembershipStatus
from clubs.services import clubs as svc
from core.errors import DomainError, NotFound
from members.services import standing_of

from .web import error_context

PER_PAGE = 30
ACTIVITY_NEW_URL = "/m/activities/new/"  # activities-ui's page; a club admin creates a club-only activity there


def _missing(request):
    return render(request, "member/club_missing.html", status=404)


@login_required
def club_list(request):
    tab = request.GET.get("tab", "mine")
    if tab not in ("mine", "all"):
        tab = "mine"
    user = request.user
    mine_qs = svc.my_clubs(user).order_by("-members_count", "id")
    qs = mine_qs if tab == "mine" else svc.clubs_for_user(user)
    page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
    states = {
        m.club_id: m
        for m in user.club_memberships.filter(club_id__in=[c.pk for c in page.object_list]).only(
            "club_id", "status", "role"
        )
    }
    rows = [{"club": c, "ms": states.get(c.pk)} for c in page.object_list]
    return render(
        request,
        "member/club_list.html",
        {"tab": tab, "page": page, "rows": rows, "certified": standing_of(user).certified},
    )


def _club_ctx(request, club) -> dict:
    user = request.user
    ms = svc.membership_of(user, club)
    return {
        "club": club,
        "ms": ms,
        "is_admin": svc.is_club_admin(user, club),
        "in_reach": svc.clubs_for_user(user).filter(pk=club.pk).exists(),
        "posts": list(club.posts.select_related("author")[:20]),
        "activities": list(svc.upcoming_activities(club)) if club.status == ClubStatus.ACTIVE else [],
        "pending_count": svc.join_requests(club).count() if ms and ms.role == "admin" else 0,
        "activity_new_url": f"{ACTIVITY_NEW_URL}?club={club.pk}",
        "certified": standing_of(user).certified,
        "error": "",
    }


@login_required
def club_detail(request, pk: int):
    try:
        club = svc.club_for_user(request.user, pk)
    except NotFound:
        return _missing(request)
    return render(request, "member/club_detail.html", _club_ctx(request, club))


@login_required
@require_POST
def club_join(request, pk: int):
    try:
        club = svc.club_for_user(request.user, pk)
    except NotFound:
        return _missing(request)
    try:
        ms = svc.join(request.user, club.pk)
    except NotFound:
        return _missing(request)
    except DomainError as e:
        club.refresh_from_db()
        return render(
            request, "member/club_detail.html", {**_club_ctx(request, club), **error_context(e)}, status=e.status
        )
    if ms.status == MembershipStatus.ACTIVE:
        messages.success(request, _("已加入“%(name)s”") % {"name": club.name})
    else:
        messages.success(request, _("已提交加入申请，请等待联盟管理员审核"))
    return redirect("member:club", pk=club.pk)


@login_required
@require_POST
def club_leave(request, pk: int):
    try:
        club = svc.club_for_user(request.user, pk)
    except NotFound:
        return _missing(request)
    was_pending = (ms := svc.membership_of(request.user, club)) is not None and ms.status == MembershipStatus.PENDING
    try:
        svc.leave(request.user, club.pk)
    except DomainError as e:
        club.refresh_from_db()
        return render(
            request, "member/club_detail.html", {**_club_ctx(request, club), **error_context(e)}, status=e.status
        )
    messages.success(request, _("已撤回加入申请") if was_pending else _("已退出“%(name)s”") % {"name": club.name})
    return redirect("member:club", pk=club.pk)


@login_required
def club_propose(request):
    ctx = {"values": request.POST, "errors": {}, "error": "", "policies": JoinPolicy.choices}
    ctx["certified"] = standing_of(request.user).certified
    if request.method == "POST":
        p = request.POST
        try:
            club = svc.propose(
                request.user,
                name=p.get("name", ""),
                category=p.get("category", ""),
                description=p.get("description", ""),
                join_policy=p.get("join_policy", ""),
            )
        except DomainError as e:
            ctx.update(error_context(e))
            return render(request, "member/club_propose.html", ctx, status=e.status)
        messages.success(request, _("联盟申请已提交，工会审核通过后即可招募成员"))
        return redirect("member:club", pk=club.pk)
    return render(request, "member/club_propose.html", ctx)


# --- club admin tools -------------------------------------------------------------------------


def _manage_ctx(request, club, **extra) -> dict:
    ctx = {
        "club": club,
        "requests": list(svc.join_requests(club).order_by("id")),
        "members": [{"ms": m, "name": svc.display_name(m.user)} for m in svc.members(club)[:500]],
        "values": {},
        "errors": {},
        "error": "",
        "activity_new_url": f"{ACTIVITY_NEW_URL}?club={club.pk}",
    }
    for r in ctx["requests"]:
        r.display = svc.display_name(r.user)
    ctx.update(extra)
    return ctx


def _admin_club(request, pk):
    club = svc.club_for_user(request.user, pk)
    if not svc.is_club_admin(request.user, club):
        raise NotFound()
    return club


@login_required
def club_manage(request, pk: int):
    try:
        club = _admin_club(request, pk)
    except NotFound:
        return _missing(request)
    return render(request, "member/club_manage.html", _manage_ctx(request, club))


@login_required
@require_POST
def club_request_decide(request, pk: int, user_id: int):
    try:
        club = _admin_club(request, pk)
    except NotFound:
        return _missing(request)
    approve = request.POST.get("decision") == "approve"
    try:
        svc.decide_join(request.user, club.pk, user_id, approve=approve)
    except DomainError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("已通过加入申请") if approve else _("已拒绝加入申请"))
    return redirect("member:club_manage", pk=club.pk)


@login_required
@require_POST
def club_promote(request, pk: int, user_id: int):
    try:
        club = _admin_club(request, pk)
    except NotFound:
        return _missing(request)
    try:
        ms = svc.promote(request.user, club.pk, user_id)
    except DomainError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("已设置%(name)s为管理员") % {"name": svc.display_name(ms.user)})
    return redirect("member:club_manage", pk=club.pk)


@login_required
@require_POST
def club_post(request, pk: int):
    try:
        club = _admin_club(request, pk)
    except NotFound:
        return _missing(request)
    try:
        p = svc.post(request.user, club.pk, title=request.POST.get("title", ""), body=request.POST.get("body", ""))
    except DomainError as e:
        ctx = _manage_ctx(request, club, values=request.POST, **error_context(e))
        return render(request, "member/club_manage.html", ctx, status=e.status)
    messages.success(request, _("公告已发布，已通知联盟成员"))
    return redirect(f"/m/clubs/{club.pk}/#post-{p.pk}")
