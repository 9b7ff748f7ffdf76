"""投票评选 for cadres: polls and contests of the subtree — create, detail with live counts, close,
candidate photos, the anti-brushing monitor with bulk void, contest judges/criteria and the ranking.

Every rule is in votes.services (polls, monitor, contest); these views parse the form, call one
service, and show its answer beside the field it names.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db import transaction
from django.db.models import Q
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import User
from core import audit, pii
from core.errors import DomainError, Invalid, NotFound
from ends.member.votes_views import photo_response, result_rows
from members.models import Member
from orgs import scoping
from votes.models import Ballot, Eligibility, Poll, PollKind, ResultsVisibility
from votes.services import contest as contest_svc
from votes.services import monitor as monitor_svc
from votes.services import polls as polls_svc

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate
from .points import _int_or_raw

PEOPLE_RESULTS = 20
PHONE_RE = re.compile(r"^1\d{10}$")
MONITOR_HOURS = (6, 24, 72, 168)


# --- helpers ---------------------------------------------------------------------------------------


def _poll_for_cadre(user, pk) -> Poll:
    poll = polls_svc.polls_for_cadre(user).filter(pk=pk).select_related("org").first()
    if poll is None:
        raise NotFound(_("未找到该投票"))
    return poll


def _when(raw: str, field: str) -> dt.datetime | None:
    raw = (raw or "").strip()
    if not raw:
        raise Invalid("invalid_time", _("请填写时间"), fields={field: _("请填写时间")})
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("invalid_time", _("时间格式无效"), fields={field: _("时间格式无效")}) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


def _optional_when(raw: str, field: str) -> dt.datetime | None:
    return _when(raw, field) if (raw or "").strip() else None


def _local_input(value: dt.datetime | None) -> str:
    """A time as a datetime-local input's value."""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M") if value else ""


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _options_from(text: str) -> list[dict]:
    """One candidate a line; text after the first ｜ or | is its description."""
    out = []
    for line in _lines(text):
        title, _sep, description = line.replace("｜", "|").partition("|")
        out.append({"title": title.strip(), "description": description.strip()})
    return out


def _criteria_from(text: str) -> list[dict]:
    """One criterion a line: name, max score, weight (spaces or commas between; weight defaults to 1)."""
    out = []
    for n, line in enumerate(_lines(text), start=1):
        parts = [p for p in re.split(r"[\s,，]+", line) if p]
        if len(parts) < 2 or not parts[1].isdigit() or (len(parts) > 2 and not parts[2].isdigit()):
            msg = _("第 %(n)s 行应为“名称 满分 权重”，如“创新性 10 2”") % {"n": n}
            raise Invalid("invalid_criteria", msg, fields={"criteria": msg})
        out.append({"name": parts[0], "max_score": int(parts[1]), "weight": int(parts[2]) if len(parts) > 2 else 1})
    return out


def _tiers_from(text: str) -> list[dict]:
    """One prize tier a line: name and count, e.g. “一等奖 1”."""
    out = []
    for n, line in enumerate(_lines(text), start=1):
        parts = [p for p in re.split(r"[\s,，×xX*]+", line) if p]
        if len(parts) != 2 or not parts[1].isdigit():
            msg = _("第 %(n)s 行应为“奖项 名额”，如“一等奖 1”") % {"n": n}
            raise Invalid("invalid_prize_tiers", msg, fields={"prize_tiers": msg})
        out.append({"name": parts[0], "count": int(parts[1])})
    return out


def _folded(e: DomainError) -> dict[str, str]:
    """The service's errors for one form: a list item's field ("options.3.title") is shown beside
    the textarea it came from, as “第 4 行：…”."""
    errors = error_dict(e)
    for key, message in e.fields.items():
        head, _dot, rest = key.partition(".")
        if rest and head in ("options", "criteria", "prize_tiers"):
            index = rest.split(".")[0]
            line = _("第 %(n)s 行：%(msg)s") % {"n": int(index) + 1, "msg": message} if index.isdigit() else message
            errors[head] = f"{errors[head]}；{line}" if head in errors else line
    return errors


def _ids(values: list[str]) -> list[int]:
    return list(dict.fromkeys(int(v) for v in values if v.isdigit()))


def _people(ids: list[int]) -> list[dict]:
    users = User.objects.filter(pk__in=ids).select_related("member__org")
    by_id = {u.pk: u for u in users}
    return [_person(by_id[i]) for i in ids if i in by_id]


def _person(u: User) -> dict:
    try:
        member = u.member
    except Member.DoesNotExist:
        member = None
    return {
        "id": u.pk,
        "name": (member.name if member else "") or u.name or _("（未填姓名）"),
        "phone": u.phone_masked,
        "org": member.org.name if member else "",
    }


# --- list and create -------------------------------------------------------------------------------


def _list_page(request, org, *, status=200):
    user = request.user
    now = timezone.now()
    qs = polls_svc.polls_for_cadre(user).filter(org__path__startswith=org.path).select_related("org")
    kind = request.GET.get("kind", "")
    if kind in PollKind.values:
        qs = qs.filter(kind=kind)
    pager = paginate(request, qs.order_by("-opens_at", "-id"), 30)
    rows = [{"poll": p, "status": polls_svc.status_of(p, now)} for p in pager.object_list]
    return page(
        request,
        "console/poll_list.html",
        {
            "nav": "polls",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "polls": pager,
            "rows": rows,
            "kind": kind,
            "kinds": PollKind.choices,
            "is_admin": scoping.covers(user, org, admin=True),
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def poll_list(request):
    return _list_page(request, current_org(request))


def _form_defaults(kind: str) -> dict:
    now = timezone.localtime()
    start = (now + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return {
        "kind": kind,
        "max_choices": "1",
        "mode": "once",
        "ballots_per_day": "1",
        "eligibility": Eligibility.MEMBERS,
        "results": ResultsVisibility.LIVE,
        "opens_at": _local_input(start),
        "closes_at": _local_input(start + dt.timedelta(days=7)),
        "vote_weight": "60",
        "criteria": _("创新性 10 1\n实用性 10 1\n展示效果 10 1") if kind == PollKind.CONTEST else "",
        "prize_tiers": _("一等奖 1\n二等奖 2\n三等奖 3") if kind == PollKind.CONTEST else "",
    }


def _new_page(request, org, *, values=None, errors=None, judges=None, status=200):
    kind = (values or {}).get("kind") or request.GET.get("kind") or PollKind.POLL
    if kind not in PollKind.values:
        kind = PollKind.POLL
    return page(
        request,
        "console/poll_new.html",
        {
            "nav": "polls",
            "org": org,
            "crumbs": breadcrumbs(request.user, org),
            "values": values if values is not None else _form_defaults(kind),
            "kind": kind,
            "errors": errors or {},
            "judges": judges or [],
            "eligibilities": Eligibility.choices,
            "visibilities": ResultsVisibility.choices,
        },
        status=status,
    )


@cadre_required
def poll_new(request):
    """GET: the form; POST: create the poll (and a contest's criteria and judges) in one transaction."""
    org = current_org(request)  # in scope, else 404; whether the cadre may create here is create_poll's rule
    if request.method != "POST":
        return _new_page(request, org)
    v = request.POST
    kind = v.get("kind") if v.get("kind") in PollKind.values else PollKind.POLL
    judge_ids = _ids(v.getlist("judge_ids"))
    try:
        opens_at = _when(v.get("opens_at", ""), "opens_at")
        closes_at = _when(v.get("closes_at", ""), "closes_at")
        per_day = _int_or_raw(v.get("ballots_per_day", "")) if v.get("mode") == "daily" else None
        contest = kind == PollKind.CONTEST
        criteria = _criteria_from(v.get("criteria", "")) if contest else []
        tiers = _tiers_from(v.get("prize_tiers", "")) if contest else None
        with transaction.atomic():
            poll = polls_svc.create_poll(
                request.user,
                org,
                title=v.get("title", ""),
                options=_options_from(v.get("options", "")),
                max_choices=_int_or_raw(v.get("max_choices", "")),
                opens_at=opens_at,
                closes_at=closes_at,
                ballots_per_day=per_day,
                eligibility=v.get("eligibility", ""),
                results=v.get("results", ""),
                kind=kind,
                description=v.get("description", "").strip(),
                block_new_accounts=v.get("block_new_accounts") == "1",
                vote_weight=_int_or_raw(v.get("vote_weight", "100")) if contest else 100,
                prize_tiers=tiers,
                ip=audit.client_ip(request),
            )
            if contest:
                contest_svc.set_criteria(request.user, poll, criteria)
                contest_svc.set_judges(request.user, poll, judge_ids)
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _new_page(request, org, values=v, errors=_folded(e), judges=_people(judge_ids), status=e.status)
    return redirect(reverse("console:poll", args=[poll.pk]) + "?done=created")


@cadre_required
def org_pick(request):
    """htmx: orgs in scope by name or id, linking to the poll list or the new-poll form of that org."""
    q = (request.GET.get("q") or "").strip()[:50]
    target = (
        request.GET.get("target")
        if request.GET.get("target") in ("console:polls", "console:poll_new")
        else "console:polls"
    )
    results = []
    if q:
        cond = Q(name__icontains=q) | (Q(pk=int(q)) if q.isdigit() else Q())
        qs = scoping.orgs_for(request.user).filter(is_active=True).filter(cond)
        results = list(qs.select_related("parent").order_by("depth", "path")[:PEOPLE_RESULTS])
    return page(
        request, "console/partials/org_pick.html", {"q": q, "results": results, "target": target, "mode": "link"}
    )


@cadre_required
def people_search(request):
    """htmx: accounts to pick as judges, by name or full phone — exactly those who may judge a
    contest of the poll's org (?poll=, in scope) or of the org a new contest is for (?org=, in
    scope): contest_svc.judge_pool, the rule set_judges applies; phones masked."""
    q = (request.GET.get("q") or "").strip()[:30]
    poll_id = request.GET.get("poll")
    if poll_id is not None:
        ok = poll_id.isdigit() and len(poll_id) < 19
        org = _poll_for_cadre(request.user, int(poll_id) if ok else 0).org  # not in scope: 404
    else:
        org = current_org(request)
    results: list[dict] = []
    if q:
        users = contest_svc.judge_pool(org)
        if PHONE_RE.match(q):
            users = users.filter(phone_hash=pii.phone_index(q))
        else:
            users = users.filter(Q(name__icontains=q) | Q(member__name__icontains=q))
        results = [_person(u) for u in users.select_related("member__org").order_by("name", "id")[:PEOPLE_RESULTS]]
    return page(request, "console/poll_people.html", {"q": q, "results": results})


# --- one poll --------------------------------------------------------------------------------------


def _detail_page(request, poll, *, errors=None, form="", values=None, status=200):
    user = request.user
    options = list(poll.options.all())
    tally = polls_svc.results(poll)
    ctx = {
        "nav": "polls",
        "poll": poll,
        "org": poll.org,
        "crumbs": breadcrumbs(user, poll.org),
        "status": polls_svc.status_of(poll),
        "rows": result_rows(poll, options, tally),
        "total": tally.get("total_ballots", 0),
        "voided": Ballot.objects.filter(poll=poll, void__isnull=False).count(),
        "can_manage": scoping.covers(user, poll.org, admin=True),
        "errors": errors or {},
        "form": form,
        "values": values or {},
        "done": request.GET.get("done", ""),
    }
    if poll.kind == PollKind.CONTEST:
        ctx["criteria"] = list(poll.criteria.all())
        ctx["judges"] = _people(list(poll.judges.values_list("user_id", flat=True)))
        ctx["criteria_text"] = (
            (values or {}).get("criteria")
            if form == "criteria"
            else "\n".join(f"{c.name} {c.max_score} {c.weight}" for c in ctx["criteria"])
        )
    return page(request, "console/poll_detail.html", ctx, status=status)


@cadre_required
def poll_detail(request, pk: int):
    return _detail_page(request, _poll_for_cadre(request.user, pk))


@cadre_required
@require_POST
def poll_close(request, pk: int):
    poll = _poll_for_cadre(request.user, pk)
    try:
        polls_svc.close_poll(request.user, poll, ip=audit.client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _detail_page(request, poll, errors=error_dict(e), form="close", status=e.status)
    return redirect(reverse("console:poll", args=[poll.pk]) + "?done=closed")


@cadre_required
def option_photo(request, pk: int, option_id: int):
    """GET: the candidate's photo; POST: upload a new one (re-encoded by the service)."""
    poll = _poll_for_cadre(request.user, pk)
    option = poll.options.filter(pk=option_id).first()
    if option is None:
        raise NotFound()
    if request.method != "POST":
        return photo_response(option)
    upload = request.FILES.get("photo")
    try:
        if upload is None:
            raise Invalid("photo_required", _("请选择照片"), fields={"photo": _("请选择照片")})
        polls_svc.set_option_photo(request.user, option, upload)
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        errors = error_dict(e)
        errors["option_id"] = option.pk
        errors.setdefault("photo", e.message)
        return _detail_page(request, poll, errors=errors, form="photo", status=e.status)
    return redirect(reverse("console:poll", args=[poll.pk]) + f"?done=photo#option-{option.pk}")


@cadre_required
@require_POST
def contest_criteria(request, pk: int):
    poll = _poll_for_cadre(request.user, pk)
    try:
        items = _criteria_from(request.POST.get("criteria", ""))
        existing = dict(poll.criteria.values_list("name", "pk"))
        for item in items:  # a criterion kept by name keeps its id, and so the scores already given
            if item["name"] in existing:
                item["id"] = existing[item["name"]]
        contest_svc.set_criteria(request.user, poll, items)
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _detail_page(request, poll, errors=_folded(e), form="criteria", values=request.POST, status=e.status)
    return redirect(reverse("console:poll", args=[poll.pk]) + "?done=criteria#contest")


@cadre_required
@require_POST
def contest_judges(request, pk: int):
    poll = _poll_for_cadre(request.user, pk)
    try:
        contest_svc.set_judges(request.user, poll, _ids(request.POST.getlist("judge_ids")))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _detail_page(request, poll, errors=error_dict(e), form="judges", status=e.status)
    return redirect(reverse("console:poll", args=[poll.pk]) + "?done=judges#contest")


# --- monitor ---------------------------------------------------------------------------------------


def _hours(request) -> int | None:
    raw = request.GET.get("hours") or request.POST.get("hours") or ""
    return int(raw) if raw.isdigit() and int(raw) in MONITOR_HOURS else None


def _void_criteria(v) -> dict:
    """The void form's selection, as the service's keyword arguments (times parsed; blanks dropped)."""
    ballot_ids = _ids(re.split(r"[\s,，]+", v.get("ballot_ids", "")))
    return {
        "ip_prefix": (v.get("ip_prefix") or "").strip() or None,
        "device": (v.get("device") or "").strip() or None,
        "new_accounts_only": v.get("new_accounts_only") == "1",
        "start": _optional_when(v.get("start", ""), "start"),
        "end": _optional_when(v.get("end", ""), "end"),
        "ballot_ids": ballot_ids or None,
    }


def _monitor_page(request, poll, *, errors=None, values=None, preview=None, status=200):
    hours = _hours(request)
    data = monitor_svc.monitor(poll, hours=hours)
    titles = {o.pk: o.title for o in poll.options.all()}
    series = data["series"]
    labels = [timezone.localtime(dt.datetime.fromisoformat(b)).strftime("%m-%d %H:%M") for b in series["buckets"]]
    bursts = []
    for b in data["bursts"]:
        start = dt.datetime.fromisoformat(b["bucket"])
        end = start + dt.timedelta(minutes=10)
        label = timezone.localtime(start).strftime("%m-%d %H:%M")
        bursts.append(
            {
                **b,
                "start": start,
                "end": end,
                "label": label,
                "option": titles.get(b["top_option_id"], ""),
                "start_input": _local_input(start),
                "end_input": _local_input(end),
            }
        )
    chart = {
        "x": labels,
        "series": [{"name": o["title"], "data": o["votes"]} for o in series["options"]],
        "bursts": [b["label"] for b in bursts if b["label"] in labels],
    }
    voided = sum(v["ballots"] for v in data["voids"])
    summary = {
        "total": data["total_ballots"],
        "voided": voided,
        "new_accounts": data["new_account_ballots"],
        "new_share": round(100 * data["new_account_share"], 1),
    }
    is_open = polls_svc.status_of(poll) != "closed"
    return page(
        request,
        "console/poll_monitor.html",
        {
            "nav": "polls",
            "poll": poll,
            "org": poll.org,
            "crumbs": breadcrumbs(request.user, poll.org),
            "status": polls_svc.status_of(poll),
            "chart": chart,
            "bursts": bursts,
            "summary": summary,
            "clusters": data["clusters"]["prefixes"],
            "devices": data["clusters"]["devices"],
            "attempts": data["attempts"],
            "median": data["median_per_bucket"],
            "batches": [
                {
                    **v,
                    "created_at": dt.datetime.fromisoformat(v["created_at"]),
                    "criteria_text": _criteria_text(v["criteria"]),
                }
                for v in data["voids"]
            ],
            "hours": hours,
            "hour_choices": MONITOR_HOURS,
            "errors": errors or {},
            "values": values or {},
            "preview": preview,
            # Voiding is for admin cadres while the poll is not closed (a closed poll's tally is sealed).
            "can_void": is_open and scoping.covers(request.user, poll.org, admin=True),
            "done": request.GET.get("done", ""),
        },
        status=status,
    )


def _criteria_text(criteria: dict) -> str:
    """A void batch's selection in words."""
    parts = []
    for key, value in criteria.items():
        if key == "ip_prefix":
            parts.append(_("网段 %(v)s") % {"v": value})
        elif key == "device":
            parts.append(_("设备 %(v)s") % {"v": str(value)[:12]})
        elif key in ("start", "end"):
            when = timezone.localtime(dt.datetime.fromisoformat(value)).strftime("%m-%d %H:%M")
            parts.append((_("自 %(t)s") if key == "start" else _("至 %(t)s")) % {"t": when})
        elif key == "new_accounts_only":
            parts.append(_("仅新注册账号"))
        elif key == "ballot_ids":
            parts.append(_("指定选票 %(n)s 张") % {"n": value})
    return "；".join(parts)


class _DryRun(Exception):
    def __init__(self, batch):
        self.batch = batch


def _count_voidable(actor, poll, kwargs: dict) -> int:
    """How many ballots the selection would void: the real void_ballots, rolled back. The service is
    the one place that decides which ballots a selection takes; counting them any other way here
    could show a number that the confirmation then does not void."""
    try:
        with transaction.atomic():
            batch = monitor_svc.void_ballots(actor, poll, **kwargs)
            raise _DryRun(batch)
    except _DryRun as done:
        return done.batch.ballots
    except DomainError as e:
        if e.code == "nothing_to_void":
            return 0
        raise


@cadre_required
def poll_monitor(request, pk: int):
    return _monitor_page(request, _poll_for_cadre(request.user, pk))


@cadre_required
@require_POST
def poll_void(request, pk: int):
    """Two steps: “preview” shows how many ballots the selection voids; “confirm” voids them."""
    poll = _poll_for_cadre(request.user, pk)
    v = request.POST
    try:
        kwargs = _void_criteria(v)
        if v.get("step") != "confirm":
            preview = _count_voidable(request.user, poll, {"reason": v.get("reason", ""), **kwargs})
            return _monitor_page(request, poll, values=v, preview=preview)
        batch = monitor_svc.void_ballots(
            request.user, poll, reason=v.get("reason", ""), ip=audit.client_ip(request), **kwargs
        )
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _monitor_page(request, poll, errors=error_dict(e), values=v, status=e.status)
    return redirect(reverse("console:poll_monitor", args=[poll.pk]) + f"?done=void&n={batch.ballots}")


# --- contest ranking -------------------------------------------------------------------------------


def _ranking_page(request, poll, *, errors=None, status=200):
    errors = errors or {}
    rows = contest_svc.ranking(poll)
    for r in rows:  # shown on a 100-point scale; the service's values are fractions of 1
        r["vote_pts"] = round(100 * r["vote_norm"], 2)
        r["judge_pts"] = round(100 * r["judge_norm"], 2)
        r["final_pts"] = round(100 * r["final"], 2)
        r["error"] = errors.get(str(r["option_id"]), "")
    return page(
        request,
        "console/poll_ranking.html",
        {
            "nav": "polls",
            "poll": poll,
            "org": poll.org,
            "crumbs": breadcrumbs(request.user, poll.org),
            "status": polls_svc.status_of(poll),
            "rows": rows,
            "ties": [r for r in rows if r["tie_at_cut"]],
            "tier_names": [t["name"] for t in poll.prize_tiers or []],
            "judge_weight": 100 - poll.vote_weight,
            "progress": contest_svc.judge_progress(poll),
            "awards": list(poll.awards.select_related("option").order_by("rank", "id")),
            "can_manage": scoping.covers(request.user, poll.org, admin=True),
            "errors": errors,
            "done": request.GET.get("done", ""),
        },
        status=status,
    )


@cadre_required
def poll_ranking(request, pk: int):
    poll = _poll_for_cadre(request.user, pk)
    if poll.kind != PollKind.CONTEST:
        raise NotFound()
    return _ranking_page(request, poll)


@cadre_required
@require_POST
def poll_publish(request, pk: int):
    poll = _poll_for_cadre(request.user, pk)
    if poll.kind != PollKind.CONTEST:
        raise NotFound()
    resolutions = {}  # {option id: tier name, or "" for no prize} for the candidates tied at a cut
    for key, value in request.POST.items():
        if key.startswith("resolve_") and key[8:].isdigit() and value.strip():
            resolutions[int(key[8:])] = "" if value.strip() == "-" else value.strip()
    try:
        contest_svc.publish_awards(request.user, poll, resolutions or None)
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _ranking_page(request, poll, errors=error_dict(e), status=e.status)
    return redirect(reverse("console:poll_ranking", args=[poll.pk]) + "?done=published")
