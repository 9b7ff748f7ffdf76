"""Member end activities (/m/activities/): the list with filters, one activity with sign-up and my
status, cancelling, proposing an activity, and the check-in page the organizer's rotating QR opens.

Every rule (who may see or join, seats, the waitlist, windows, points, check-in codes) lives in
activities.services; these views gather the form, call one service, and show its answer beside the
field it names. The small form parsers here (times, extra answers) are shared with the cadre and
console pages.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from activities.models import Activity, ActivityStatus, Category, Signup, SignupStatus
from activities.services import activities as activities_svc
from activities.services import checkin as checkin_svc
from activities.services import signups as signups_svc
from clubs.models import ClubMembership, ClubStatus, MembershipStatus
from core.audit import client_ip
from core.errors import DomainError, Invalid, NotFound
from members.services import standing_of
from points.models import Entry
from points.services import ledger

from .web import error_context

PER_PAGE = 20
SCOPES = ("all", "org", "clubs", "mine")
WHENS = ("today", "week", "month")


# --- form parsing shared with the cadre and console pages -----------------------------------------


def parse_when(raw: str, field: str, *, required: bool = True) -> dt.datetime | None:
    """A datetime-local input as an aware datetime; Invalid naming the field when it is not one."""
    raw = (raw or "").strip()
    if not raw:
        if required:
            raise Invalid("invalid_time", _("请填写时间"), fields={field: _("请填写时间")})
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("invalid_time", _("时间格式无效"), fields={field: _("时间格式无效")}) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


def local_input(value: dt.datetime | None) -> str:
    """A time as a datetime-local input's value."""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M") if value else ""


def int_or_raw(raw: object) -> object:
    """A typed number as int; anything else passes through so the service names the field."""
    text = str(raw if raw is not None else "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else text


def answers_from(activity: Activity, data) -> dict[str, str]:
    """The activity's extra sign-up fields as typed (field names x_<key>); checking them is the service's job."""
    return {
        str(f.get("key")): (data.get(f"x_{f.get('key')}") or "").strip()
        for f in (activity.extra_fields or [])
        if f.get("key")
    }


def form_fields(activity: Activity, answers: dict | None = None, errors: dict | None = None) -> list[dict]:
    """The extra fields to draw: input name, what was typed, the message beside it."""
    answers, errors = answers or {}, errors or {}
    return [
        {
            "key": str(f.get("key")),
            "label": f.get("label") or f.get("key"),
            "required": bool(f.get("required")),
            "choices": [str(c) for c in (f.get("choices") or [])],
            "name": f"x_{f.get('key')}",
            "value": answers.get(str(f.get("key")), ""),
            "error": errors.get(str(f.get("key")), ""),
        }
        for f in (activity.extra_fields or [])
        if f.get("key")
    ]


def answer_errors(activity: Activity, fields: dict) -> dict[str, str]:
    """A 422's fields keyed by extra-field key (the service may name them key, answers.key or x_key)."""
    keys = {str(f.get("key")) for f in (activity.extra_fields or [])}
    out = {}
    for name, message in (fields or {}).items():
        for prefix in ("answers.", "answers__", "x_", ""):
            if name.startswith(prefix) and name[len(prefix) :] in keys:
                out[name[len(prefix) :]] = message
                break
    return out


# --- shared pieces -------------------------------------------------------------------------------


def _activity_or_404(user, pk) -> Activity:
    try:
        return activities_svc.activity_for_user(user, pk)
    except NotFound:
        raise Http404 from None


def seats_left(a: Activity) -> int:
    return max(0, a.capacity - a.confirmed_count)


def phase(a: Activity, now: dt.datetime) -> str:
    """Where the activity stands in time, for labels: the service still decides every action."""
    if a.status != ActivityStatus.PUBLISHED:
        return a.status
    if now >= a.ends_at:
        return "ended"
    if now >= a.starts_at:
        return "ongoing"
    if now < a.signup_opens_at:
        return "not_open"
    if now >= a.signup_closes_at:
        return "closed"
    return "open"


def _my_signups(user, activities) -> dict[int, Signup]:
    ids = [a.pk for a in activities]
    if not ids:
        return {}
    qs = Signup.objects.filter(user=user, activity_id__in=ids).exclude(status=SignupStatus.CANCELLED)
    return {s.activity_id: s for s in qs}


# --- the list ------------------------------------------------------------------------------------


def _date_range(when: str, day: str) -> tuple[dt.date | None, dt.date | None]:
    today = timezone.localdate()
    if day:
        try:
            d = dt.date.fromisoformat(day)
        except ValueError:
            return None, None
        return d, d
    if when == "today":
        return today, today
    if when == "week":
        return today, today + dt.timedelta(days=6 - today.weekday())
    if when == "month":
        nxt = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return today, nxt - dt.timedelta(days=1)
    return None, None


@login_required
def activity_list(request):
    user = request.user
    scope = request.GET.get("scope") if request.GET.get("scope") in SCOPES else "all"
    category = request.GET.get("category") if request.GET.get("category") in Category.values else ""
    when = request.GET.get("when") if request.GET.get("when") in WHENS else ""
    day = (request.GET.get("date") or "").strip()[:10]
    date_from, date_to = _date_range(when, day)
    if day and date_from is None:
        day = ""
    qs = activities_svc.activities_for_user(
        user, category=category or None, date_from=date_from, date_to=date_to, scope=scope
    )
    page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
    mine = _my_signups(user, page.object_list)
    now = timezone.now()
    rows = [
        {"a": a, "seats_left": seats_left(a), "phase": phase(a, now), "mine": mine.get(a.pk)} for a in page.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    ctx = {
        "page": page,
        "rows": rows,
        "scope": scope,
        "category": category,
        "when": when,
        "day": day,
        "categories": Category.choices,
        "filtered": bool(category or when or day),
        "query": query.urlencode(),
        "certified": standing_of(user).certified,
    }
    return render(request, "member/activity_list.html", ctx)


# --- one activity --------------------------------------------------------------------------------


def _detail_ctx(request, activity: Activity) -> dict:
    user = request.user
    now = timezone.now()
    mine = signups_svc.my_signup(user, activity)
    if mine is not None and mine.status == SignupStatus.CANCELLED:
        mine = None
    return {
        "a": activity,
        "now": now,
        "phase": phase(activity, now),
        "seats_left": seats_left(activity),
        "mine": mine,
        "position": signups_svc.waitlist_position(mine) if mine and mine.status == SignupStatus.WAITLISTED else None,
        # Whether to offer the button; cancel_signup has the last word (cancel_closed).
        "can_cancel": mine is not None
        and not mine.checked_in_at
        and now < (activity.cancel_until if mine.status == SignupStatus.CONFIRMED else activity.starts_at),
        "blocker": signups_svc.signup_blocker(user, activity) if mine is None else None,
        "fields": form_fields(activity),
        "my_answers": [
            {"label": f.get("label", ""), "value": mine.answers.get(str(f.get("key")), "")}
            for f in activity.extra_fields or []
            if mine is not None and mine.answers
        ],
        "balance": ledger.balance_of(user) if activity.points_cost else None,
        "is_organizer": activity.organizer_id == user.pk,
        "errors": {},
        "error": "",
        "error_code": "",
    }


@login_required
def activity_detail(request, pk: int):
    activity = _activity_or_404(request.user, pk)
    return render(request, "member/activity_detail.html", _detail_ctx(request, activity))


@login_required
@require_POST
def activity_signup(request, pk: int):
    user = request.user
    activity = _activity_or_404(user, pk)
    answers = answers_from(activity, request.POST)
    try:
        signup = signups_svc.sign_up(user, activity.pk, answers, ip=client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise Http404 from None
        activity.refresh_from_db()
        ctx = _detail_ctx(request, activity)
        ctx.update(error_context(e))
        ctx["errors"] = answer_errors(activity, e.fields)
        if e.fields and not ctx["errors"]:  # fields we cannot place beside an input: say it above the button
            ctx["error"] = e.message
        ctx["fields"] = form_fields(activity, answers, ctx["errors"])
        return render(request, "member/activity_detail.html", ctx, status=e.status)
    if signup.status == SignupStatus.WAITLISTED:
        position = getattr(signup, "position", None) or signups_svc.waitlist_position(signup)
        messages.success(request, _("名额已满，您已进入候补，当前第 %(n)s 位") % {"n": position})
    elif activity.points_cost:
        messages.success(request, _("报名成功，已扣除 %(n)s 积分") % {"n": activity.points_cost})
    else:
        messages.success(request, _("报名成功"))
    return redirect("member:activity", pk=activity.pk)


@login_required
@require_POST
def activity_cancel(request, pk: int):
    user = request.user
    activity = _activity_or_404(user, pk)
    try:
        signups_svc.cancel_signup(user, activity.pk)
    except DomainError as e:
        if isinstance(e, NotFound):
            raise Http404 from None
        activity.refresh_from_db()
        ctx = {**_detail_ctx(request, activity), **error_context(e), "cancel_error": e.message}
        return render(request, "member/activity_detail.html", ctx, status=e.status)
    if activity.points_cost:
        messages.success(request, _("已取消报名，%(n)s 积分已退回") % {"n": activity.points_cost})
    else:
        messages.success(request, _("已取消报名"))
    return redirect("member:activity", pk=activity.pk)


# --- proposing an activity -----------------------------------------------------------------------


def _my_clubs(user):
    return (
        ClubMembership.objects.filter(user=user, status=MembershipStatus.ACTIVE, club__status=ClubStatus.ACTIVE)
        .select_related("club")
        .order_by("club__name")
    )


def _my_proposals(user):
    return (
        Activity.objects.filter(created_by=user, member_initiated=True)
        .select_related("org", "club")
        .order_by("-created_at", "-id")[:20]
    )


def _propose_defaults() -> dict:
    start = (timezone.localtime() + dt.timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
    return {
        "starts_at": local_input(start),
        "ends_at": local_input(start + dt.timedelta(hours=3)),
        "capacity": "20",
        "waitlist": "1",
        "category": Category.OTHER,
    }


@login_required
def activity_propose(request):
    """发起活动: a certified member's proposal, which a cadre of their union approves or rejects."""
    user = request.user
    standing = standing_of(user)
    ctx = {
        "certified": standing.certified,
        "categories": Category.choices,
        "clubs": [m.club for m in _my_clubs(user)],
        "proposals": _my_proposals(user),
        "values": _propose_defaults(),
        "errors": {},
        "error": "",
    }
    if request.method != "POST":
        return render(request, "member/activity_propose.html", ctx)
    v = request.POST
    ctx["values"] = v
    try:
        if not standing.certified or standing.org_id is None:
            raise DomainError("not_certified", _("完成实名认证的会员才能发起活动"), status=403)
        club = next((c for c in ctx["clubs"] if str(c.pk) == v.get("club", "")), None)
        activity = activities_svc.create_activity(
            user,
            user.member.org,
            title=v.get("title", ""),
            starts_at=parse_when(v.get("starts_at", ""), "starts_at"),
            ends_at=parse_when(v.get("ends_at", ""), "ends_at"),
            capacity=int_or_raw(v.get("capacity", "")),
            waitlist=v.get("waitlist") == "1",
            eligibility="club" if club else "members",
            category=v.get("category", ""),
            description=v.get("description", "").strip(),
            place=v.get("place", "").strip(),
            club=club,
            ip=client_ip(request),
        )
    except DomainError as e:
        ctx.update(error_context(e))
        return render(request, "member/activity_propose.html", ctx, status=e.status)
    if activity.status == ActivityStatus.PROPOSED:
        messages.success(request, _("活动已提交，工会审核通过后发布"))
    else:
        messages.success(request, _("活动已发布"))
    return redirect(reverse("member:activity_propose") + "?" + urlencode({"new": activity.pk}))


# --- the check-in page the organizer's QR opens --------------------------------------------------


def _earned(signup: Signup) -> int:
    """The points the check-in paid the member (0 when none were paid, e.g. the budget ran dry)."""
    if not signup.reward_id:
        return 0
    return sum(e.amount for e in Entry.objects.filter(movement_id=signup.reward_id) if e.amount > 0)


@login_required
def activity_checkin(request, pk: int):
    """Opened by scanning the rotating QR (signing in first if needed): checks in at once and says
    how it went: points earned, or exactly why not (expired code, not confirmed, already, not now)."""
    user = request.user
    code = (request.GET.get("c") or request.POST.get("c") or "").strip()[:64]
    try:
        activity = activities_svc.activity_for_user(user, pk)
    except NotFound:
        activity = None
    ctx = {"a": activity, "code": code, "signup": None, "earned": 0, "error": "", "error_code": ""}
    status = 200
    if activity is None:
        ctx.update(error="", error_code="not_found")
        status = 404
    elif not code:
        ctx.update(error=_("二维码内容不完整，请重新扫描现场的签到二维码"), error_code="no_code")
        status = 422
    else:
        try:
            ctx["signup"] = checkin_svc.check_in_by_code(user, activity.pk, code)
            ctx["earned"] = _earned(ctx["signup"])
        except DomainError as e:
            ctx.update(error=e.message, error_code=e.code)
            status = e.status
            ctx["signup"] = signups_svc.my_signup(user, activity)
    return render(request, "member/activity_checkin.html", ctx, status=status)
