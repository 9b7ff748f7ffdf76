"""The org tree: browse the cadre's subtree, add, rename, move, deactivate and restore orgs."""

from __future__ import annotations

import functools
import operator

from django.db.models import Count, Q
from django.db.models.functions import Substr
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from core import audit
from core.errors import DomainError
from members.models import Member
from orgs import scoping, services
from orgs.models import Org, OrgKind

from ..common import breadcrumbs, cadre_required, error_dict, page, page_query, paginate, top_orgs

PICK_LIMIT = 20
ORG_ACTIONS = {"add", "rename", "move", "deactivate", "activate"}
PICK_TARGETS = {
    "console:org",
    "console:members",
    "console:imports",
    "console:cadres",
    "console:points",
    "console:points_grant",
    "console:points_rules",
    "console:points_earnings",
    "console:mall",
}


def _children_with_counts(request, org: Org):
    """One page of the org's children, each with its subtree member count and child count."""
    pager = paginate(request, Org.objects.filter(parent=org).order_by("path"))
    children = list(pager.object_list)
    if not children:
        return pager
    width = len(children[0].path)
    counts = dict(
        Member.objects.filter(functools.reduce(operator.or_, (Q(org__path__startswith=c.path) for c in children)))
        .annotate(prefix=Substr("org__path", 1, width))
        .values("prefix")
        .annotate(n=Count("id"))
        .values_list("prefix", "n")
    )
    for c in children:
        c.member_count = counts.get(c.path, 0)
        c.child_count = c.numchild  # kept by treebeard; a GROUP BY here would group by the tree's path ordering
    pager.object_list = children
    return pager


def _org_page(request, org: Org, *, errors: dict | None = None, form: str = "", values=None, status=200):
    user = request.user
    ctx = {
        "nav": "orgs",
        "org": org,
        "crumbs": breadcrumbs(user, org),
        "children": _children_with_counts(request, org),
        "query": page_query(request),
        "direct_members": Member.objects.filter(org=org).count(),
        "subtree_members": Member.objects.filter(org__path__startswith=org.path).count(),
        "is_admin": scoping.covers(user, org, admin=True),
        "kinds": OrgKind.choices,
        "errors": errors or {},
        "form": form,
        "values": values or {},
        "top_orgs": top_orgs(user),
    }
    return page(request, "console/orgs.html", ctx, status=status)


@cadre_required
def org_root(request):
    return redirect("console:org", org_id=top_orgs(request.user)[0].pk)


@cadre_required
def org_detail(request, org_id: int):
    org = scoping.org_for_cadre(request.user, org_id)
    return _org_page(request, org)


@cadre_required
@require_POST
def org_action(request, org_id: int, action: str):
    """One POST endpoint per tree operation; the service decides what is allowed."""
    if action not in ORG_ACTIONS:
        raise Http404()
    user, ip = request.user, audit.client_ip(request)
    org = scoping.org_for_cadre(user, org_id)
    values = request.POST
    try:
        if action == "add":
            child = services.create_org(user, org, values.get("name", ""), values.get("kind", ""), ip=ip)
            return redirect("console:org", org_id=child.pk)
        if action == "rename":
            services.rename_org(user, org, values.get("name", ""), ip=ip)
        elif action == "move":
            new_parent = scoping.org_for_cadre(user, values.get("parent_id") or "x")
            services.move_org(user, org, new_parent, ip=ip)
        elif action == "deactivate":
            services.set_org_active(user, org, False, ip=ip)
        elif action == "activate":
            services.set_org_active(user, org, True, ip=ip)
    except DomainError as e:
        errors = error_dict(e)
        if action == "move" and e.status == 404:
            errors = {"parent_id": e.message, "general": e.message}
        org.refresh_from_db()
        return _org_page(request, org, errors=errors, form=action, values=values, status=e.status)
    return redirect("console:org", org_id=org.pk)


@cadre_required
def org_pick(request):
    """htmx: orgs in scope matching ?q= (by name or id), for the move form and the org switcher."""
    user = request.user
    q = request.GET.get("q", "").strip()
    mode = request.GET.get("mode", "link")
    target = request.GET.get("target", "")
    if target not in PICK_TARGETS:
        target = "console:org"
    qs = scoping.orgs_for(user, admin=mode == "parent").filter(is_active=True)
    within = request.GET.get("within")
    if mode == "descendant" and within:
        giver = scoping.org_for_cadre(user, within)
        qs = qs.filter(path__startswith=giver.path).exclude(pk=giver.pk)
    exclude = request.GET.get("exclude")
    if exclude:
        moving = scoping.org_for_cadre(user, exclude)
        qs = qs.exclude(path__startswith=moving.path)
    results = []
    if q:
        cond = Q(name__icontains=q)
        if q.isdigit():
            cond |= Q(pk=int(q))
        results = list(qs.filter(cond).select_related("parent").order_by("depth", "path")[:PICK_LIMIT])
    return page(
        request,
        "console/partials/org_pick.html",
        {"results": results, "q": q, "mode": mode, "target": target},
    )
