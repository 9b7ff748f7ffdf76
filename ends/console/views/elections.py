"""选举 for cadres: the elections of the subtree, creating one, live turnout, closing, the results
with the elected, the run-off or further round when the results offer one, and the PDF report.

Before close the pages show turnout only (a count of voters), never a partial tally: seeing who
leads while voting goes on would change how people vote. Every rule is elections.services'.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import audit
from core.errors import DomainError, Invalid, NotFound
from elections.models import ElectionStatus, MajorityBase, Quorum, RoundKind
from elections.services import elections as svc
from elections.services import report
from members import services as members
from members.models import Member
from orgs import scoping

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate
from .points import _int_or_raw

MEMBER_RESULTS = 30


def _elections(request, org):
    return (
        svc.elections_for_cadre(request.user)
        .filter(org__path__startswith=org.path)
        .annotate(voted=Count("voters", filter=Q(voters__voted_at__isnull=False)))
        .order_by("-created_at", "-id")
    )


@cadre_required
def election_list(request):
    user = request.user
    org = current_org(request)
    status = request.GET.get("status", "")
    qs = _elections(request, org)
    if status in ElectionStatus.values:
        qs = qs.filter(status=status)
    return page(
        request,
        "console/elections.html",
        {
            "nav": "elections",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "elections": paginate(request, qs, 30),
            "status_filter": status,
            "statuses": ElectionStatus.choices,
            "is_admin": scoping.covers(user, org, admin=True),
            "now": timezone.now(),
            "query": page_query(request),
        },
    )


# --- creating -----------------------------------------------------------------------------------


def _when(raw: str, field: str) -> dt.datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid("invalid_time", _("时间格式无效"), fields={field: _("时间格式无效")}) from None
    return timezone.make_aware(value, timezone.get_current_timezone()) if timezone.is_naive(value) else value


def _id_tokens(raw: str) -> list[str]:
    """Member ids pasted one per line, or separated by commas/spaces (、，too)."""
    for sep in ",，、;；\t\r\n":
        raw = raw.replace(sep, " ")
    return [t for t in raw.split(" ") if t]


def _roll_count(org) -> int:
    return Member.objects.filter(org__path__startswith=org.path, certified_at__isnull=False).count()


def _new_page(request, org, *, errors=None, values=None, status=200):
    values = values if values is not None else {}
    return page(
        request,
        "console/elections_new.html",
        {
            "nav": "elections",
            "org": org,
            "crumbs": breadcrumbs(request.user, org),
            "errors": errors or {},
            "values": values,
            "roll_count": _roll_count(org),
            "majorities": MajorityBase.choices,
            "quorums": Quorum.choices,
        },
        status=status,
    )


def _map_fields(errors: dict) -> dict:
    """Service field names → form field names (candidates.3.name → candidates, voters → roll)."""
    out = {}
    for key, msg in errors.items():
        if key.startswith("candidates"):
            if key != "candidates":
                n = key.split(".")[1]
                msg = _("第 %(n)s 行：%(msg)s") % {"n": int(n) + 1, "msg": msg} if n.isdigit() else msg
            out.setdefault("candidates", msg)
        elif key == "voters":
            out["roll"] = msg
        else:
            out[key] = msg
    return out


@cadre_required
def election_new(request):
    user = request.user
    org = current_org(request, admin=True)
    if request.method != "POST":
        return _new_page(request, org, values={"seats": "", "majority_of": "eligible", "quorum": "two_thirds"})
    values = request.POST
    roll_kind = values.get("roll_kind", "members")
    try:
        voters: object = "members"
        if roll_kind == "delegates":
            tokens = _id_tokens(values.get("roll_ids", ""))
            if not tokens:
                raise Invalid("invalid_roll", _("请填写代表名单"), fields={"voters": _("请填写或选择代表（会员编号）")})
            voters = tokens
        election = svc.create_election(
            user,
            org,
            title=values.get("title", ""),
            seats=_int_or_raw(values.get("seats", "")),
            candidates=[line.strip() for line in values.get("candidates", "").splitlines() if line.strip()],
            voters=voters,
            majority_of=values.get("majority_of", ""),
            quorum=values.get("quorum", ""),
            opens_at=_when(values.get("opens_at", ""), "opens_at"),
            closes_at=_when(values.get("closes_at", ""), "closes_at"),
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _new_page(request, org, errors=_map_fields(error_dict(e)), values=values, status=e.status)
    return redirect("console:election", election_id=election.pk)


@cadre_required
def election_members(request):
    """htmx: members of the org's subtree matching a name or id, to add to a delegate roll."""
    org = current_org(request)
    q = request.GET.get("q", "").strip()[:50]
    results = []
    if q:
        qs = members.members_for(request.user, org).filter(certified_at__isnull=False)
        qs = qs.filter(Q(name__icontains=q) | Q(user_id=int(q))) if q.isdigit() else qs.filter(name__icontains=q)
        results = list(qs.order_by("name", "id")[:MEMBER_RESULTS])
    return render(request, "console/elections_member_pick.html", {"results": results, "q": q})


# --- one election -------------------------------------------------------------------------------


def _election(request, election_id):
    election = svc.elections_for_cadre(request.user).filter(pk=election_id).first()
    if election is None:
        raise NotFound(_("未找到该选举"))
    return svc.close_if_due(election)


def _result_rows(election, candidates) -> list[dict]:
    if not election.result:
        return []
    names = {c.pk: c.name for c in candidates}
    runoff = set(election.result.get("runoff_candidate_ids") or [])
    rows = []
    for c in election.result["candidates"]:
        pct = 100 * c["for"] / election.result["eligible"] if election.result["eligible"] else 0
        rows.append({**c, "name": names.get(c["id"], "?"), "runoff": c["id"] in runoff, "pct": round(pct, 1)})
    return rows


def _detail(request, election, *, errors=None, values=None, status=200):
    user = request.user
    candidates = svc.candidates_of(election)
    voted = svc.turnout(election)
    rounds = svc.rounds_of(election)
    offered = svc.offered_round(election)
    further_ids = set((election.result or {}).get("further_round_candidate_ids") or [])
    runoff_ids = set((election.result or {}).get("runoff_candidate_ids") or [])
    default_close = (timezone.localtime() + dt.timedelta(days=1)).replace(second=0, microsecond=0)
    return page(
        request,
        "console/elections_detail.html",
        {
            "nav": "elections",
            "org": election.org,
            "election": election,
            "crumbs": breadcrumbs(user, election.org),
            "candidates": candidates,
            "voted": voted,
            "turnout_pct": round(100 * voted / election.eligible, 1) if election.eligible else 0,
            "accepting": svc.is_accepting(election),
            "not_started": election.status == ElectionStatus.OPEN and timezone.now() < election.opens_at,
            "result": election.result,
            "rows": _result_rows(election, candidates),
            "elected_names": [c.name for c in candidates if election.result and _elected(election, c.pk)],
            "runoff_names": [c.name for c in candidates if c.pk in runoff_ids],
            "offered": offered,
            "next_round": election.next_round if hasattr(election, "next_round") else None,
            "round_candidates": [
                c for c in candidates if c.pk in (runoff_ids if offered == RoundKind.RUNOFF else further_ids)
            ],
            "rounds": rounds,
            "overall": svc.overall(rounds) if len(rounds) > 1 else None,
            "can_manage": scoping.covers(user, election.org, admin=True),
            "errors": errors or {},
            "values": values or {},
            "default_close": default_close.strftime("%Y-%m-%dT%H:%M"),
        },
        status=status,
    )


def _elected(election, candidate_id: int) -> bool:
    return any(c["id"] == candidate_id and c["elected"] for c in election.result["candidates"])


@cadre_required
def election_detail(request, election_id: int):
    return _detail(request, _election(request, election_id))


@cadre_required
def election_turnout(request, election_id: int):
    """htmx: the live turnout while voting goes on (a count only)."""
    election = _election(request, election_id)
    voted = svc.turnout(election)
    ctx = {
        "election": election,
        "voted": voted,
        "turnout_pct": round(100 * voted / election.eligible, 1) if election.eligible else 0,
    }
    resp = render(request, "console/elections_turnout.html", ctx)
    if election.status != ElectionStatus.OPEN:
        resp["HX-Refresh"] = "true"  # it closed meanwhile: reload to show the results
    return resp


@cadre_required
@require_POST
def election_close(request, election_id: int):
    election = _election(request, election_id)
    try:
        svc.close_election(request.user, election.pk, ip=audit.client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        election.refresh_from_db()
        return _detail(request, election, errors={"close": e.message}, status=e.status)
    return redirect(f"{reverse('console:election', args=[election.pk])}?done=close")


@cadre_required
@require_POST
def election_next_round(request, election_id: int):
    election = _election(request, election_id)
    values = request.POST
    try:
        child = svc.start_next_round(
            request.user,
            election.pk,
            kind=values.get("kind", ""),
            opens_at=_when(values.get("opens_at", ""), "opens_at"),
            closes_at=_when(values.get("closes_at", ""), "closes_at"),
            candidate_ids=values.getlist("candidate_ids") or None,
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        errors = {"round_" + k if k != "general" else "round": v for k, v in error_dict(e).items()}
        return _detail(request, election, errors=errors, values=values, status=e.status)
    return redirect(f"{reverse('console:election', args=[child.pk])}?done=round")


@cadre_required
def election_report(request, election_id: int):
    """The results report as a PDF download."""
    election = _election(request, election_id)
    try:
        pdf = report.results_pdf(election)
    except DomainError as e:
        return _detail(request, election, errors={"report": e.message}, status=e.status)
    resp = HttpResponse(pdf, content_type="application/pdf")
    resp["Content-Disposition"] = f'attachment; filename="election-{election.pk}-results.pdf"'
    return resp
