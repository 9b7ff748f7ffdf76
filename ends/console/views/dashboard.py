"""The console home: what the cadre's scope holds and what waits for them."""

from __future__ import annotations

from members import jobs
from members.models import Member
from members.services import join_applications_for, transfers_for
from orgs import scoping

from ..common import cadre_required, page, top_orgs


@cadre_required
def home(request):
    user = request.user
    members = scoping.scoped(Member.objects.all(), user, "org__path")
    stats = {
        "orgs": scoping.orgs_for(user).filter(is_active=True).count(),
        "members": members.count(),
        "certified": members.filter(certified_at__isnull=False).count(),
        "joins": join_applications_for(user).count(),
        "transfers": transfers_for(user).filter(scoping.path_q(user, "to_org__path")).count(),
    }
    stats["certified_pct"] = round(100 * stats["certified"] / stats["members"]) if stats["members"] else 0
    recent = jobs.jobs_for(user).select_related("actor")[:5]
    return page(
        request,
        "console/home.html",
        {"nav": "home", "stats": stats, "recent_jobs": recent, "top_orgs": top_orgs(user)},
    )
