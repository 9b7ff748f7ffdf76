"""活动 for cadres: the activities of the subtree with attendance, create and edit (cover, extra
sign-up fields, points, club-only), one activity with its sign-ups (confirmed / waitlist in order /
cancelled), the .xlsx export, messaging participants, cancelling with a reason, and the queue of
member proposals (approve, edit then approve, reject).

Every rule is activities.services'; these views parse the form, call one service, and show its
answer beside the field it names.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from activities.models import Activity, ActivityStatus, Category, Eligibility, SignupStatus
from activities.services import activities as activities_svc
from activities.services import signups as signups_svc
from clubs.models import Club, ClubStatus
from core import audit
from core.errors import DomainError, Invalid, NotFound
from ends.cadre.activities_views import attendance
from ends.member.activities_views import int_or_raw, local_input, parse_when
from orgs import scoping

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate

PICK_LIMIT = 20
EXTRA_ROWS = 3  # blank extra-field rows the form offers (a button adds more)
MESSAGE_STATUSES = (SignupStatus.CONFIRMED, SignupStatus.WAITLISTED)


# --- helpers ---------------------------------------------------------------------------------------


def _activity_for_cadre(user, pk) -> Activity:
    activity = activities_svc.activities_for_cadre(user).filter(pk=pk).select_related("org", "club").first()
    if activity is None:
        raise NotFound(_("未找到该活动"))
    return activity


def _rate(checked_in: int, confirmed: int) -> int | None:
    return round(100 * checked_in / confirmed) if confirmed else None


def _clubs(org):
    return Club.objects.filter(org__path__startswith=org.path, status=ClubStatus.ACTIVE).order_by("name")


def _extra_rows(values, fields: list[dict] | None = None) -> list[dict]:
    """The editor's rows: what was typed (after an error), else the activity's fields, plus blanks."""
    rows = []
    if values is not None and "xf_count" in values:
        count = int(values.get("xf_count")) if str(values.get("xf_count")).isdigit() else 0
        for i in range(min(count, 30)):
            rows.append(
                {
                    "key": values.get(f"xf_key_{i}", ""),
                    "label": values.get(f"xf_label_{i}", ""),
                    "required": values.get(f"xf_required_{i}") == "1",
                    "choices": values.get(f"xf_choices_{i}", ""),
                }
            )
    else:
        for f in fields or []:
            rows.append(
                {
                    "key": f.get("key", ""),
                    "label": f.get("label", ""),
                    "required": bool(f.get("required")),
                    "choices": "、".join(f.get("choices") or []),
                }
            )
    while len([r for r in rows if not r["label"]]) < 1 or len(rows) < EXTRA_ROWS:
        rows.append({"key": "", "label": "", "required": False, "choices": ""})
    return rows


def _extra_fields_from(values) -> list[dict]:
    """The editor's rows as the service's extra_fields (rows without a label or choices are left out)."""
    count = int(values.get("xf_count")) if str(values.get("xf_count", "")).isdigit() else 0
    out = []
    for i in range(min(count, 30)):
        label = (values.get(f"xf_label_{i}") or "").strip()
        choices = (values.get(f"xf_choices_{i}") or "").strip()
        if not label and not choices:
            continue
        item = {"label": label, "required": values.get(f"xf_required_{i}") == "1", "choices": choices}
        if values.get(f"xf_key_{i}"):
            item["key"] = values.get(f"xf_key_{i}").strip()
        out.append(item)
    return out


def _form_values(activity: Activity | None) -> dict:
    if activity is None:
        start = (timezone.localtime() + dt.timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
        return {
            "category": Category.OTHER,
            "eligibility": Eligibility.MEMBERS,
            "starts_at": local_input(start),
            "ends_at": local_input(start + dt.timedelta(hours=3)),
            "capacity": "50",
            "waitlist": "1",
            "points_cost": "0",
            "points_reward": "0",
        }
    return {
        "title": activity.title,
        "category": activity.category,
        "description": activity.description,
        "place": activity.place,
        "starts_at": local_input(activity.starts_at),
        "ends_at": local_input(activity.ends_at),
        "signup_opens_at": local_input(activity.signup_opens_at),
        "signup_closes_at": local_input(activity.signup_closes_at),
        "cancel_until": local_input(activity.cancel_until),
        "capacity": str(activity.capacity),
        "waitlist": "1" if activity.waitlist else "",
        "eligibility": activity.eligibility,
        "club": str(activity.club_id or ""),
        "points_cost": str(activity.points_cost),
        "points_reward": str(activity.points_reward),
    }


def _fields_from(v) -> dict:
    """The form as the service's keyword arguments (times parsed; numbers passed on for it to check)."""
    return {
        "title": v.get("title", ""),
        "category": v.get("category", ""),
        "description": v.get("description", "").strip(),
        "place": v.get("place", "").strip(),
        "starts_at": parse_when(v.get("starts_at", ""), "starts_at"),
        "ends_at": parse_when(v.get("ends_at", ""), "ends_at"),
        "signup_opens_at": parse_when(v.get("signup_opens_at", ""), "signup_opens_at", required=False),
        "signup_closes_at": parse_when(v.get("signup_closes_at", ""), "signup_closes_at", required=False),
        "cancel_until": parse_when(v.get("cancel_until", ""), "cancel_until", required=False),
        "capacity": int_or_raw(v.get("capacity", "")),
        "waitlist": v.get("waitlist") == "1",
        "eligibility": v.get("eligibility", ""),
        "extra_fields": _extra_fields_from(v),
        "points_cost": int_or_raw(v.get("points_cost", "") or "0"),
        "points_reward": int_or_raw(v.get("points_reward", "") or "0"),
    }


def _club_from(v, org) -> Club | None:
    raw = v.get("club", "")
    if not raw:
        if v.get("eligibility") == Eligibility.CLUB:
            raise Invalid("club_required", _("请选择兴趣联盟"), fields={"club": _("请选择兴趣联盟")})
        return None
    club = _clubs(org).filter(pk=int(raw) if raw.isdigit() else 0).first()
    if club is None:
        raise Invalid("invalid_club", _("请选择本组织范围内的兴趣联盟"), fields={"club": _("无效")})
    return club


# --- the list --------------------------------------------------------------------------------------


@cadre_required
def activity_list(request):
    user = request.user
    org = current_org(request)
    status = request.GET.get("status", "")
    if status not in ActivityStatus.values:
        status = ""
    qs = (
        activities_svc.activities_for_cadre(user, status=status or None)
        .filter(org__path__startswith=org.path)
        .select_related("org", "club")
        .order_by("-starts_at", "-id")
    )
    pager = paginate(request, qs, 30)
    now = timezone.now()
    rows = [
        {
            "a": a,
            "rate": _rate(a.checked_in_count, a.confirmed_count) if a.starts_at <= now else None,
            "ended": a.ends_at <= now,
            "ongoing": a.starts_at <= now < a.ends_at,
        }
        for a in pager.object_list
    ]
    return page(
        request,
        "console/activity_list.html",
        {
            "nav": "activities",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "pager": pager,
            "rows": rows,
            "status": status,
            "statuses": ActivityStatus.choices,
            "pending": activities_svc.proposals_for_cadre(user).filter(org__path__startswith=org.path).count(),
            "is_admin": scoping.covers(user, org, admin=True),
            "query": page_query(request),
        },
    )


@cadre_required
def org_pick(request):
    """htmx: orgs in scope by name or id, linking to the activity list or the new-activity form of that org."""
    q = (request.GET.get("q") or "").strip()[:50]
    target = request.GET.get("target") if request.GET.get("target") == "console:activity_new" else "console:activities"
    results = []
    if q:
        cond = Q(name__icontains=q) | (Q(pk=int(q)) if q.isdigit() else Q())
        qs = scoping.orgs_for(request.user).filter(is_active=True).filter(cond)
        results = list(qs.select_related("parent").order_by("depth", "path")[:PICK_LIMIT])
    return page(
        request, "console/partials/org_pick.html", {"q": q, "results": results, "target": target, "mode": "link"}
    )


# --- create and edit -------------------------------------------------------------------------------


def _form_page(request, org, *, activity=None, values=None, errors=None, review=False, status=200):
    v = values if values is not None else _form_values(activity)
    return page(
        request,
        "console/activity_form.html",
        {
            "nav": "activities",
            "org": org,
            "crumbs": breadcrumbs(request.user, org),
            "a": activity,
            "review": review,
            "values": v,
            "errors": errors or {},
            "extra_rows": _extra_rows(values, activity.extra_fields if activity else None),
            "categories": Category.choices,
            "eligibilities": Eligibility.choices,
            "clubs": _clubs(org)[:200],
        },
        status=status,
    )


@cadre_required
def activity_new(request):
    user = request.user
    org = current_org(request)  # publishing needs an admin role: the service says so beside the form
    if request.method != "POST":
        return _form_page(request, org)
    v = request.POST
    try:
        fields = _fields_from(v)
        club = _club_from(v, org)
        with transaction.atomic():
            activity = activities_svc.create_activity(user, org, club=club, ip=audit.client_ip(request), **fields)
            if request.FILES.get("cover"):
                activities_svc.set_cover(user, activity, request.FILES["cover"])
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _form_page(request, org, values=v, errors=_with_cover(e), status=e.status)
    return redirect(reverse("console:activity", args=[activity.pk]) + "?done=created")


def _with_cover(e: DomainError) -> dict:
    errors = error_dict(e)
    if e.code in ("invalid_image", "image_too_large", "unsupported_image_type") and "cover" not in errors:
        errors["cover"] = e.message
        errors.pop("alert", None)
    return errors


@cadre_required
def activity_edit(request, pk: int):
    """Edit a published activity; for a member's proposal, the edits are approved with it."""
    user = request.user
    activity = _activity_for_cadre(user, pk)
    review = activity.status == ActivityStatus.PROPOSED
    if request.method != "POST":
        return _form_page(request, activity.org, activity=activity, review=review)
    v = request.POST
    before = _form_values(activity)
    try:
        fields = _fields_from(v)
        # Only what changed goes to the service: some fields lock once people have signed up.
        changed = {k: val for k, val in fields.items() if _changed(k, v, before, activity)}
        with transaction.atomic():
            if review:
                activities_svc.decide_proposal(
                    user, activity, approve=True, edits=changed or None, ip=audit.client_ip(request)
                )
            elif changed:
                activities_svc.update_activity(user, activity, **changed)
            if request.FILES.get("cover"):
                activities_svc.set_cover(user, activity, request.FILES["cover"])
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        activity.refresh_from_db()
        return _form_page(
            request, activity.org, activity=activity, values=v, errors=_with_cover(e), review=review, status=e.status
        )
    done = "approved" if review else "saved"
    return redirect(reverse("console:activity", args=[activity.pk]) + "?done=" + done)


def _changed(name: str, v, before: dict, activity: Activity) -> bool:
    if name == "extra_fields":
        current = []
        for f in activity.extra_fields or []:
            item = {"label": f.get("label", ""), "required": bool(f.get("required"))}
            item["choices"] = "、".join(f.get("choices") or [])
            if f.get("key"):
                item["key"] = f["key"]
            current.append(item)
        return _extra_fields_from(v) != current
    if name == "waitlist":
        return (v.get("waitlist") == "1") != activity.waitlist
    return str(v.get(name, "")).strip() != str(before.get(name, "")).strip()


# --- one activity ----------------------------------------------------------------------------------


def _detail_page(request, activity, *, errors=None, form="", values=None, status=200):
    user = request.user
    tab = request.GET.get("tab", SignupStatus.CONFIRMED)
    if tab not in SignupStatus.values:
        tab = SignupStatus.CONFIRMED
    signups = paginate(request, signups_svc.signups_of(user, activity, status=tab), 50)
    rows = []
    for s in signups.object_list:
        member = getattr(s.user, "member", None)
        rows.append(
            {
                "s": s,
                "name": (member.name if member else "") or s.user.name or "—",
                "org": member.org.name if member else "",
                "position": signups_svc.waitlist_position(s) if s.status == SignupStatus.WAITLISTED else None,
                "answers": [
                    {"label": label, "value": value} for label, value in signups_svc.answers_for_display(activity, s)
                ],
            }
        )
    att = attendance(activity)
    return page(
        request,
        "console/activity_detail.html",
        {
            "nav": "activities",
            "a": activity,
            "org": activity.org,
            "crumbs": breadcrumbs(user, activity.org),
            "att": att,
            "started": activity.starts_at <= timezone.now(),
            "tab": tab,
            "tabs": SignupStatus.choices,
            "signups": signups,
            "rows": rows,
            "can_manage": activities_svc.can_edit(user, activity),
            "live": activity.status == ActivityStatus.PUBLISHED,
            "message_statuses": [(s, label) for s, label in SignupStatus.choices if s in MESSAGE_STATUSES],
            "errors": errors or {},
            "form": form,
            "values": values or {},
            "done": request.GET.get("done", ""),
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def activity_detail(request, pk: int):
    return _detail_page(request, _activity_for_cadre(request.user, pk))


@cadre_required
def activity_export(request, pk: int):
    activity = _activity_for_cadre(request.user, pk)
    try:
        data = signups_svc.export_signups_xlsx(request.user, activity, ip=audit.client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _detail_page(request, activity, errors=error_dict(e), form="export", status=e.status)
    resp = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    name = f"activity-{activity.pk}-signups.xlsx"
    resp["Content-Disposition"] = f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
    return resp


@cadre_required
@require_POST
def activity_message(request, pk: int):
    activity = _activity_for_cadre(request.user, pk)
    v = request.POST
    statuses = tuple(v.getlist("statuses"))
    try:
        n = signups_svc.message_participants(
            request.user,
            activity,
            title=v.get("title", ""),
            body=v.get("body", ""),
            statuses=statuses,
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _detail_page(request, activity, errors=error_dict(e), form="message", values=v, status=e.status)
    return redirect(reverse("console:activity", args=[activity.pk]) + "?" + urlencode({"done": "message", "n": n}))


@cadre_required
@require_POST
def activity_cancel(request, pk: int):
    activity = _activity_for_cadre(request.user, pk)
    v = request.POST
    try:
        activities_svc.cancel_activity(
            request.user, activity, reason=v.get("reason", "").strip(), ip=audit.client_ip(request)
        )
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        errors = error_dict(e)
        if "reason" not in errors and e.code == "reason_required":
            errors["reason"] = e.message
        return _detail_page(request, activity, errors=errors, form="cancel", values=v, status=e.status)
    return redirect(reverse("console:activity", args=[activity.pk]) + "?done=cancelled")


# --- member proposals ------------------------------------------------------------------------------


def _proposals_page(request, *, errors=None, form_for=None, values=None, status=200):
    user = request.user
    qs = activities_svc.proposals_for_cadre(user).select_related("org", "club", "organizer").order_by("created_at")
    return page(
        request,
        "console/activity_proposals.html",
        {
            "nav": "activities",
            "pager": paginate(request, qs, 30),
            "errors": errors or {},
            "form_for": form_for,
            "values": values or {},
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def proposal_list(request):
    return _proposals_page(request)


@cadre_required
@require_POST
def proposal_decide(request, pk: int):
    user = request.user
    activity = activities_svc.proposals_for_cadre(user).filter(pk=pk).first()
    if activity is None:
        raise NotFound(_("未找到该活动申请"))
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "").strip()
    try:
        activities_svc.decide_proposal(user, activity, approve=approve, reason=reason, ip=audit.client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        errors = error_dict(e)
        errors.setdefault("reason", e.message)
        return _proposals_page(request, errors=errors, form_for=activity.pk, values=request.POST, status=e.status)
    done = "approved" if approve else "rejected"
    return redirect(reverse("console:activity_proposals") + "?" + urlencode({"done": done, "title": activity.title}))
