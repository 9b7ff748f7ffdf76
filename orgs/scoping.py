"""The one place that decides which orgs (and so which objects) a person may act on.

A cadre role on org X reaches every org whose path starts with X's path. Every page and
API operation builds its querysets from these helpers; an object outside answers 404
(NotFound), the same as a missing one, so scope never leaks existence.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from core import sql
from core.errors import Forbidden, NotFound

from .models import CadreRoleKind, Org

_ROLES_SQL = """
SELECT o.path, r.role, r.org_id FROM orgs_cadrerole r JOIN orgs_org o ON o.id = r.org_id
WHERE r.user_id = %s AND o.is_active ORDER BY o.path
"""


def cadre_roles(user) -> list[tuple[str, str, int]]:
    """(path, role, org_id) of the user's roles, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_cadre_roles_cache", None)
    if cached is None:
        # Asked on almost every request: plain SQL, no ORM compilation.
        cached = [tuple(r) for r in sql.fetchall(_ROLES_SQL, [user.pk])]
        user._cadre_roles_cache = cached
    return cached


def _paths(user, admin: bool) -> list[str]:
    paths = sorted(p for p, role, _ in cadre_roles(user) if not admin or role == CadreRoleKind.ADMIN)
    # Drop paths already covered by an ancestor's role: fewer OR terms in every query.
    kept: list[str] = []
    for p in paths:
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    return kept


def self_and_ancestor_paths(path: str) -> list[str]:
    """The paths of an org and of every org above it (materialized-path prefixes)."""
    return [path[:i] for i in range(Org.steplen, len(path) + 1, Org.steplen)]


def is_cadre(user) -> bool:
    return bool(cadre_roles(user))


def is_admin_cadre(user) -> bool:
    return bool(_paths(user, admin=True))


def path_q(user, field: str = "path", *, admin: bool = False) -> Q:
    """A filter on `field` (an org path) matching the user's subtrees; matches nothing for non-cadres."""
    paths = _paths(user, admin)
    if not paths:
        return Q(pk__in=[])
    q = Q()
    for p in paths:
        q |= Q(**{f"{field}__startswith": p})
    return q


def orgs_for(user, *, admin: bool = False) -> QuerySet[Org]:
    return Org.objects.filter(path_q(user, admin=admin))


def covers(user, org: Org, *, admin: bool = False) -> bool:
    return any(org.path.startswith(p) for p in _paths(user, admin))


def org_for_cadre(user, org_id: object, *, admin: bool = False) -> Org:
    """The org if the user's role reaches it; NotFound otherwise; Forbidden if only staff where admin is needed."""
    try:
        org = Org.objects.get(pk=int(org_id))
    except (Org.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("未找到该组织")) from None
    if not covers(user, org):
        raise NotFound(_("未找到该组织"))
    if admin and not covers(user, org, admin=True):
        raise Forbidden("admin_required", _("此操作需要该组织或上级组织的管理员权限"))
    return org


def scoped(qs: QuerySet, user, org_path_field: str, *, admin: bool = False) -> QuerySet:
    """Filter any queryset to the user's subtrees through the path of its org relation."""
    return qs.filter(path_q(user, org_path_field, admin=admin))
