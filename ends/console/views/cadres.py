"""Cadre roles in scope: list, appoint an existing user by phone, revoke."""

from __future__ import annotations

from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import User
from core import audit, phones, pii
from core.errors import DomainError, Invalid, NotFound
from orgs import scoping, services
from orgs.models import CadreRole, CadreRoleKind

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate


def _cadres_page(request, org, *, errors=None, values=None, status=200):
    user = request.user
    qs = (
        CadreRole.objects.filter(org__path__startswith=org.path)
        .select_related("user", "org", "appointed_by")
        .order_by("org__path", "-role", "id")
    )
    return page(
        request,
        "console/cadres.html",
        {
            "nav": "cadres",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "cadres": paginate(request, qs),
            "roles": CadreRoleKind.choices,
            "is_admin": scoping.covers(user, org, admin=True),
            "errors": errors or {},
            "values": values or {},
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def cadre_list(request):
    return _cadres_page(request, current_org(request))


def _user_by_phone(raw: str) -> User:
    try:
        phone = phones.validate(raw)
    except phones.PhoneError as e:
        raise Invalid(e.code, e.message, fields={"phone": e.message}) from None
    found = User.objects.filter(phone_hash=pii.phone_index(phone), is_active=True).first()
    if found is None:
        msg = _("没有使用该手机号的用户，请先让对方注册登录")
        raise Invalid("user_not_found", msg, fields={"phone": msg})
    return found


@cadre_required
@require_POST
def cadre_appoint(request):
    user = request.user
    org = current_org(request)
    values = request.POST
    try:
        target = _user_by_phone(values.get("phone", ""))
        services.appoint_cadre(
            user,
            org,
            target,
            values.get("role", ""),
            title=values.get("title", "").strip(),
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        return _cadres_page(request, org, errors=error_dict(e), values=values, status=e.status)
    return redirect(f"{reverse('console:cadres')}?org={org.pk}")


@cadre_required
@require_POST
def cadre_revoke(request, cadre_id: int):
    user = request.user
    cadre = scoping.scoped(CadreRole.objects.select_related("org", "user"), user, "org__path").filter(pk=cadre_id)
    cadre = cadre.first()
    if cadre is None:
        raise NotFound(_("未找到该干部"))
    org = current_org(request)
    try:
        services.revoke_cadre(user, cadre, ip=audit.client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _cadres_page(request, org, errors={"revoke": e.message, "revoke_id": cadre.pk}, status=e.status)
    return redirect(f"{reverse('console:cadres')}?org={org.pk}")
