"""Cadre end activities (/c/activities/): member proposals to decide (approve, edit then approve,
reject with a reason), the activities in scope, and the organizer's check-in page — a big rotating
QR that members scan, a live count, and a box for scanning a member's card.

The organizer page is open to the activity's organizer even when they are not a cadre (a member
who proposed it), so it is linked from the member end too. Rules are activities.services'.
"""

from __future__ import annotations

from functools import lru_cache, wraps

import segno
from django.contrib import messages
from django.contrib.staticfiles import finders
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from activities.models import Activity, ActivityStatus, Category
from activities.services import activities as activities_svc
from activities.services import checkin as checkin_svc
from core.audit import client_ip
from core.errors import DomainError, NotFound
from ends.member.activities_views import int_or_raw, local_input, parse_when
from ends.member.web import error_context
from orgs import scoping

from .points_views import mask_name
from .views import cadre_required

QR_PERIOD_MAX = 30  # the page asks for a new code at least this often (seconds)
SCANNER_JS = "vendor/jsQR.js"


def _login_required(view):
    """Signed in (through the cadre login), cadre or not: the organizer check is the page's own."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(reverse("cadre:login") + "?" + urlencode({"next": request.get_full_path()}))
        return view(request, *args, **kwargs)

    return wrapper


# --- proposals and the list ----------------------------------------------------------------------


def _hub_ctx(request, **extra) -> dict:
    user = request.user
    ctx = {
        "proposals": list(activities_svc.proposals_for_cadre(user).select_related("org", "club", "organizer")[:100]),
        "activities": list(
            activities_svc.activities_for_cadre(user, status=ActivityStatus.PUBLISHED)
            .select_related("org", "club")
            .order_by("-starts_at", "-id")[:50]
        ),
        "form_for": None,
        "reason": "",
        "errors": {},
        "error": "",
    }
    ctx.update(extra)
    return ctx


@cadre_required
def activity_hub(request):
    return render(request, "cadre/activities.html", _hub_ctx(request))


def _proposal_for(user, pk) -> Activity:
    activity = activities_svc.proposals_for_cadre(user).filter(pk=pk).select_related("org", "club").first()
    if activity is None:
        raise Http404
    return activity


@cadre_required
@require_POST
def proposal_decide(request, pk: int):
    user = request.user
    activity = _proposal_for(user, pk)
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "").strip()
    try:
        activities_svc.decide_proposal(user, activity, approve=approve, reason=reason, ip=client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise Http404 from None
        ctx = _hub_ctx(request, form_for=activity.pk, reason=reason, **error_context(e))
        return render(request, "cadre/activities.html", ctx, status=e.status)
    if approve:
        messages.success(request, _("已通过并发布“%(t)s”") % {"t": activity.title})
    else:
        messages.success(request, _("已驳回“%(t)s”，发起人会收到通知") % {"t": activity.title})
    return redirect("cadre:activities")


EDITABLE = (
    "title", "category", "place", "description", "starts_at", "ends_at", "capacity", "points_cost", "points_reward"
)


def _review_values(activity: Activity) -> dict:
    return {
        "title": activity.title,
        "category": activity.category,
        "place": activity.place,
        "description": activity.description,
        "starts_at": local_input(activity.starts_at),
        "ends_at": local_input(activity.ends_at),
        "capacity": str(activity.capacity),
        # What the activity costs the org or asks of members: shown and decided here, never hidden.
        "points_cost": str(activity.points_cost),
        "points_reward": str(activity.points_reward),
    }


@cadre_required
def proposal_review(request, pk: int):
    """Edit a proposal, then approve it with the edits (the service applies them in the same step)."""
    user = request.user
    activity = _proposal_for(user, pk)
    ctx = {"a": activity, "values": _review_values(activity), "categories": Category.choices, "errors": {}, "error": ""}
    if request.method != "POST":
        return render(request, "cadre/activity_review.html", ctx)
    v = request.POST
    ctx["values"] = v
    try:
        edits = {
            "title": v.get("title", ""),
            "category": v.get("category", ""),
            "place": v.get("place", "").strip(),
            "description": v.get("description", "").strip(),
            "starts_at": parse_when(v.get("starts_at", ""), "starts_at"),
            "ends_at": parse_when(v.get("ends_at", ""), "ends_at"),
            "capacity": int_or_raw(v.get("capacity", "")),
            "points_cost": int_or_raw(v.get("points_cost", "0")),
            "points_reward": int_or_raw(v.get("points_reward", "0")),
        }
        before = _review_values(activity)
        changed = {k: val for k, val in edits.items() if str(v.get(k, "")).strip() != str(before[k]).strip()}
        activities_svc.decide_proposal(user, activity, approve=True, edits=changed or None, ip=client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise Http404 from None
        ctx.update(error_context(e))
        return render(request, "cadre/activity_review.html", ctx, status=e.status)
    messages.success(request, _("已修改并发布“%(t)s”") % {"t": edits["title"] or activity.title})
    return redirect("cadre:activities")


@_login_required
def activity_entry(request, pk: int):
    """/c/activities/<id>/ (the link in a cadre's notice): a proposal's review, else the check-in page."""
    user = request.user
    if activities_svc.proposals_for_cadre(user).filter(pk=pk).exists():
        return redirect("cadre:activity_review", pk=pk)
    organized_activity(user, pk)
    return redirect("cadre:activity_checkin", pk=pk)


# --- the organizer's check-in page ---------------------------------------------------------------


def organized_activity(user, pk) -> Activity:
    """The activity if the person may run its check-in (its organizer, or a cadre covering it); else 404."""
    try:
        activity = activities_svc.activity_for_user(user, pk)
    except NotFound:
        raise Http404 from None
    if not activities_svc.can_manage(user, activity) or activity.status in (
        ActivityStatus.PROPOSED,
        ActivityStatus.REJECTED,
    ):
        raise Http404
    return activity


@lru_cache(maxsize=1)
def scanner_script() -> str:
    """The QR decoder for the camera (jsqr from npm, assets/package.json) when set-up has put it
    among the static files; without it the page uses the browser's BarcodeDetector, or the box."""
    return SCANNER_JS if finders.find(SCANNER_JS) else ""


def attendance(activity: Activity) -> dict:
    """The service's attendance with the rate as a whole percent for display (None before anyone confirmed)."""
    stats = checkin_svc.attendance(activity)
    stats["rate_pct"] = round(100 * stats["rate"]) if stats["confirmed"] else None
    return stats


def _qr_ctx(request, activity: Activity) -> dict:
    code, seconds_left = checkin_svc.rotating_code(activity)
    link = request.build_absolute_uri(checkin_svc.checkin_url(activity, code))
    svg = segno.make(link, error="m").svg_inline(scale=6, border=2, dark="#111", omitsize=True)
    return {
        "a": activity,
        "qr_svg": svg,
        "checkin_link": link,
        "refresh_in": max(1, min(QR_PERIOD_MAX, int(seconds_left) + 1)),
        "stats": attendance(activity),
    }


def _checkin_ctx(request, activity: Activity, **extra) -> dict:
    ctx = {
        **_qr_ctx(request, activity),
        "is_cadre": scoping.is_cadre(request.user),
        "live": activity.status == ActivityStatus.PUBLISHED,
        "scanner_js": scanner_script(),
        "card": "",
        "done": None,
        "errors": {},
        "error": "",
        "error_code": "",
    }
    ctx.update(extra)
    return ctx


@_login_required
def activity_checkin(request, pk: int):
    activity = organized_activity(request.user, pk)
    return render(request, "cadre/activity_checkin.html", _checkin_ctx(request, activity))


@_login_required
def activity_checkin_qr(request, pk: int):
    """htmx: a fresh code and count, asked for right after the current code turns over."""
    activity = organized_activity(request.user, pk)
    return render(request, "cadre/activity_checkin_qr.html", _qr_ctx(request, activity))


@_login_required
@require_POST
def activity_checkin_card(request, pk: int):
    """签到 by scanning the member's card QR (or pasting its link/token)."""
    user = request.user
    activity = organized_activity(user, pk)
    token = request.POST.get("card", "").strip()
    if not token:
        ctx = _checkin_ctx(request, activity, errors={"card": _("请扫描或粘贴会员证二维码内容")})
        return render(request, "cadre/activity_checkin.html", ctx, status=422)
    try:
        signup = checkin_svc.check_in_by_card(user, activity, token, ip=client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound) and e.code == "not_found":
            raise Http404 from None
        activity.refresh_from_db()
        ctx = _checkin_ctx(request, activity, card=token[:500], **error_context(e))
        ctx["errors"] = {"card": e.message}
        return render(request, "cadre/activity_checkin.html", ctx, status=e.status)
    activity.refresh_from_db()
    member = getattr(signup.user, "member", None)
    name = (member.name if member else "") or signup.user.name or signup.user.phone_masked
    done = {"name": mask_name(name), "phone": signup.user.phone_masked, "at": signup.checked_in_at}
    return render(request, "cadre/activity_checkin.html", _checkin_ctx(request, activity, done=done))
