"""What every console page shares: the cadre-only gate, the signed-in cadre's scope, and error mapping."""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import twofactor
from core.errors import DomainError, NotFound
from orgs import scoping
from orgs.models import CadreRole, Org

PAGE_SIZE = 50


def cadre_required(view):
    """Signed-out, or signed in some other way than the console's password login (an SMS code on /m/)
    → the console login; an admin cadre without the second factor → the code step; signed in without
    a cadre role → the no-role page; NotFound → 404."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated or not twofactor.signed_in_by_password(request):
            return redirect(f"{reverse('console:login')}?{urlencode({'next': request.get_full_path()})}")
        if not scoping.is_cadre(request.user):
            return render(request, "console/no_role.html", status=403)
        if twofactor.needs_second_factor(request.user) and not twofactor.is_verified(request):
            return redirect(f"{reverse('console:twofactor')}?{urlencode({'next': request.get_full_path()})}")
        try:
            return view(request, *args, **kwargs)
        except NotFound as e:
            raise Http404(e.message) from None

    return wrapper


def top_orgs(user) -> list[Org]:
    """The orgs the user's roles sit on, highest first (a cadre's starting points)."""
    ids = [org_id for _, _, org_id in sorted(scoping.cadre_roles(user))]
    orgs = {o.pk: o for o in Org.objects.filter(pk__in=ids)}
    return [orgs[i] for i in ids if i in orgs]


def current_org(request, param: str = "org", *, admin: bool = False) -> Org:
    """The org named by ?org= (must be in scope), else the cadre's first role org."""
    raw = request.GET.get(param) or request.POST.get(param)
    if raw:
        return scoping.org_for_cadre(request.user, raw, admin=admin)
    return top_orgs(request.user)[0]


def breadcrumbs(user, org: Org) -> list[Org]:
    """Ancestors of the org that the user's scope reaches, then the org itself."""
    return [o for o in [*Org.objects.get_ancestors(org), org] if scoping.covers(user, o)]


def error_dict(e: DomainError) -> dict[str, str]:
    """A service error as {field: message}; 'general' carries the general message,
    'alert' is set when no field is named."""
    errors = dict(e.fields)
    errors.setdefault("general", e.message)
    if not e.fields:
        errors["alert"] = e.message  # nothing to put beside a field: show it above the form
    return errors


def paginate(request, qs, size: int = PAGE_SIZE):
    return Paginator(qs, size).get_page(request.GET.get("page"))


def page_query(request) -> str:
    """The current query string without `page`, for pagination links."""
    q = request.GET.copy()
    q.pop("page", None)
    return q.urlencode()


def header_context(user) -> dict:
    roles = list(CadreRole.objects.filter(user=user, org__is_active=True).select_related("org").order_by("org__path"))
    return {"console_roles": roles, "console_role": roles[0] if roles else None}


def page(request, template: str, context: dict | None = None, *, status: int = 200):
    ctx = header_context(request.user)
    ctx.update(context or {})
    return render(request, template, ctx, status=status)
