"""Members of an org's subtree: masked list, detail with membership periods, audited reveal."""

from __future__ import annotations

from django.views.decorators.http import require_POST

from core import audit
from members import services

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


def _detail(request, member, revealed=None):
    periods = member.periods.select_related("org").order_by("-started_at", "-id")
    return page(
        request,
        "console/member_detail.html",
        {
            "nav": "members",
            "member": member,
            "periods": periods,
            "revealed": revealed,
            "crumbs": breadcrumbs(request.user, member.org),
        },
    )


@cadre_required
def member_detail(request, member_id: int):
    return _detail(request, services.member_for_cadre(request.user, member_id))


@cadre_required
@require_POST
def member_reveal(request, member_id: int):
    """Show the unmasked ID number and phone once, on this response only; the service audits it."""
    member = services.member_for_cadre(request.user, member_id)
    revealed = services.reveal_pii(request.user, member, ip=audit.client_ip(request))
    response = _detail(request, member, revealed)
    response["Cache-Control"] = "no-store"
    return response
