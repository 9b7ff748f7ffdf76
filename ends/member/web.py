"""Small page plumbing shared by the mobile ends: domain errors to template errors, safe redirects, org search."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from core.errors import DomainError, Throttled
from orgs.models import Org

ORG_RESULTS = 20


def error_context(e: DomainError) -> dict:
    """{"errors": {field: message}, "error": message-not-shown-beside-a-field} for a template."""
    message = e.message
    if isinstance(e, Throttled) and str(e.retry_after) not in message:
        message = message + _("（%(seconds)s秒后可再试）") % {"seconds": e.retry_after}
    return {"errors": dict(e.fields), "error": "" if e.fields else message, "error_code": e.code}


def throttle_message(e: Throttled) -> str:
    return error_context(e)["error"]


def safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def search_orgs(query: str, *, exclude_id: int | None = None) -> QuerySet[Org]:
    """Active unions a person can belong to, by name; grassroots unions (leaves of the tree) without a query."""
    qs = Org.objects.filter(is_active=True).select_related("parent")
    query = (query or "").strip()[:50]
    qs = qs.filter(name__icontains=query) if query else qs.filter(numchild=0)
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    return qs.order_by("depth", "path")[:ORG_RESULTS]


def active_org(org_id: object) -> Org | None:
    try:
        return Org.objects.filter(is_active=True).get(pk=int(org_id))
    except (Org.DoesNotExist, TypeError, ValueError):
        return None
