"""兴趣联盟 for cadres: the clubs of the subtree, proposals to approve or reject with a reason, a club's page."""

from __future__ import annotations

from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from clubs.models import ClubStatus, MembershipStatus
from clubs.services import clubs as svc
from core import audit
from core.errors import DomainError

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate

TABS = ("active", "proposed", "rejected", "closed", "all")


def _list_page(request, org, *, errors=None, failed_pk=None, values=None, status=200):
    user = request.user
    tab = request.GET.get("status", "active")
    if tab not in TABS:
        tab = "active"
    in_org = svc.clubs_for_cadre(user).filter(org__path__startswith=org.path)
    counts = dict(in_org.values("status").annotate(n=Count("id")).values_list("status", "n"))
    listed = in_org if tab == "all" else in_org.filter(status=tab)
    listed = listed.annotate(
        pending_joins=Count("memberships", filter=Q(memberships__status=MembershipStatus.PENDING))
    ).order_by("-members_count", "id")
    proposals = list(svc.pending_proposals(user).filter(org__path__startswith=org.path)[:100])
    return page(
        request,
        "console/club_list.html",
        {
            "nav": "clubs",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "tab": tab,
            "tabs": [(t, counts.get(t, 0) if t != "all" else sum(counts.values())) for t in TABS],
            "clubs": paginate(request, listed, 30),
            "proposals": proposals,
            "errors": errors or {},
            "failed_pk": failed_pk,
            "values": values or {},
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def club_list(request):
    return _list_page(request, current_org(request))


@cadre_required
@require_POST
def club_decide(request, club_id: int):
    org = current_org(request)
    approve = request.POST.get("decision") == "approve"
    try:
        club = svc.decide(
            request.user, club_id, approve=approve, reason=request.POST.get("reason", ""), ip=audit.client_ip(request)
        )
    except DomainError as e:
        return _list_page(request, org, errors=error_dict(e), failed_pk=club_id, values=request.POST, status=e.status)
    query = urlencode({"org": org.pk, "done": "approved" if approve else "rejected", "name": club.name})
    return redirect(f"{reverse('console:clubs')}?{query}")


@cadre_required
def club_detail(request, club_id: int):
    club = svc.club_for_cadre(request.user, club_id)
    members = [{"ms": m, "name": svc.display_name(m.user)} for m in svc.members(club)[:1000]]
    return page(
        request,
        "console/club_detail.html",
        {
            "nav": "clubs",
            "club": club,
            "org": club.org,
            "crumbs": breadcrumbs(request.user, club.org),
            "members": members,
            "pending_joins": svc.join_requests(club).count(),
            "posts": list(club.posts.select_related("author")[:20]),
            "activities": list(svc.upcoming_activities(club)) if club.status == ClubStatus.ACTIVE else [],
            "errors": {},
        },
    )
