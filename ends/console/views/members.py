"""Members of an org's subtree: masked list, detail with membership periods, audited reveal."""

from __future__ import annotations

from django.views.decorators.http import require_POST

from core import audit
from core.errors import Throttled
from members import services, unmask

from ..common import breadcrumbs, cadre_required, current_org, page, page_query, paginate


@cadre_required
def member_list(request):
    user = request.user
    org = current_org(request)
    direct = request.GET.get("scope") == "direct"
    q = request.GET.get("q", "").strip()
    qs = services.members_for(user, org, direct=direct)
    if q:
        qs = qs.filter(name__icontains=q)
    members = paginate(request, qs.order_by("org__path", "name", "id"))
    return page(
        request,
        "console/members.html",
        {
            "nav": "members",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "direct": direct,
            "q": q,
            "members": members,
            "query": page_query(request),
        },
    )


def _detail(request, member, revealed=None, *, reveal_error: str = "", status: int = 200):
    periods = member.periods.select_related("org").order_by("-started_at", "-id")
    return page(
        request,
        "console/member_detail.html",
        {
            "nav": "members",
            "member": member,
            "periods": periods,
            "revealed": revealed,
            "reveal_error": reveal_error,
            "crumbs": breadcrumbs(request.user, member.org),
        },
        status=status,
    )


@cadre_required
def member_detail(request, member_id: int):
    return _detail(request, services.member_for_cadre(request.user, member_id))


@cadre_required
@require_POST
def member_reveal(request, member_id: int):
    """Show the unmasked ID number and phone once, on this response only; the service audits it and
    refuses past the cadre's hourly limit (members.unmask)."""
    member = services.member_for_cadre(request.user, member_id)
    try:
        revealed = unmask.reveal(request.user, member, ip=audit.client_ip(request))
    except Throttled as e:
        response = _detail(request, member, reveal_error=e.message, status=e.status)
        response["Retry-After"] = str(e.retry_after)
        return response
    response = _detail(request, member, revealed)
    response["Cache-Control"] = "no-store"
    return response
