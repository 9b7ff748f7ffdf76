"""Pending join applications, certification reviews and transfers: approve, or reject with a reason."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from core import audit
from core.errors import DomainError, NotFound
from members import certification, services
from orgs import scoping

from ..common import cadre_required, page


def _requests_page(request, *, errors=None, status=200):
    user = request.user
    joins = services.join_applications_for(user).order_by("created_at", "id")[:200]
    transfers = (
        services.transfers_for(user).select_related("member", "from_org", "to_org").order_by("created_at", "id")[:200]
    )
    reviews = certification.reviews_for(user).order_by("created_at", "id")[:200]
    for t in transfers:
        t.can_decide = scoping.covers(user, t.to_org)
    return page(
        request,
        "console/requests.html",
        {"nav": "requests", "joins": joins, "reviews": reviews, "transfers": transfers, "errors": errors or {}},
        status=status,
    )


@cadre_required
def request_list(request):
    return _requests_page(request)


@cadre_required
@require_POST
def request_decide(request, kind: str, pk: int):
    decide = {
        "join": services.decide_join,
        "certification": certification.decide_review,
        "transfer": services.decide_transfer,
    }.get(kind)
    if decide is None:
        raise Http404()
    user = request.user
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "")
    try:
        decide(user, pk, approve, reason, ip=audit.client_ip(request))
    except NotFound:
        raise
    except DomainError as e:
        return _requests_page(request, errors={"kind": kind, "pk": pk, "message": e.message}, status=e.status)
    return redirect("console:requests")
