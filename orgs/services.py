"""Writes to the org tree and cadre roles. Every function checks scope and writes the audit row."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Forbidden, Invalid, NotFound

from . import scoping
from .models import CadreRole, CadreRoleKind, Org, OrgKind


class OrgErrors:
    NAME_TAKEN = "name_taken"
    INVALID_NAME = "invalid_name"
    INVALID_KIND = "invalid_kind"
    MOVE_INTO_OWN_SUBTREE = "move_into_own_subtree"
    ORG_NOT_EMPTY = "org_not_empty"
    OWN_SCOPE_ROOT = "own_scope_root"


def _clean_name(name: object) -> str:
    value = str(name or "").strip()
    if not value:
        raise Invalid(OrgErrors.INVALID_NAME, _("请填写组织名称"), fields={"name": _("不能为空")})
    if len(value) > 100:
        raise Invalid(OrgErrors.INVALID_NAME, _("组织名称不能超过100个字"), fields={"name": _("不能超过100个字")})
    return value


def _clean_kind(kind: object) -> str:
    if kind not in OrgKind.values:
        raise Invalid(
            OrgErrors.INVALID_KIND,
            _("组织类型无效"),
            fields={"kind": _("应为 %(choices)s") % {"choices": "、".join(OrgKind.values)}},
        )
    return str(kind)


def create_root(name: str, kind: str = OrgKind.FEDERATION) -> Org:
    """The top of a deployment (a command's job, not a user's)."""
    return Org.objects.add_root({"name": _clean_name(name), "kind": _clean_kind(kind)})


@transaction.atomic
def create_org(actor, parent: Org, name: object, kind: object, *, ip: str | None = None) -> Org:
    if not scoping.covers(actor, parent, admin=True):
        raise Forbidden("admin_required", _("只有上级组织的管理员可以新建下级组织"))
    name, kind = _clean_name(name), _clean_kind(kind)
    parent = Org.objects.select_for_update().get(pk=parent.pk)
    if Org.objects.filter(parent=parent, name=name).exists():
        raise DomainError(
            OrgErrors.NAME_TAKEN, _("同一上级下已有同名组织"), fields={"name": _("同一上级下已有同名组织")}
        )
    try:
        with transaction.atomic():
            org = Org.objects.add_child(parent, {"name": name, "kind": kind, "parent": parent})
    except IntegrityError:
        raise DomainError(
            OrgErrors.NAME_TAKEN, _("同一上级下已有同名组织"), fields={"name": _("同一上级下已有同名组织")}
        ) from None
    audit.record(actor, "org.create", org=org, target=org, summary=name, ip=ip)
    return org


@transaction.atomic
def rename_org(actor, org: Org, name: object, *, ip: str | None = None) -> Org:
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以修改名称"))
    name = _clean_name(name)
    if org.parent_id and Org.objects.filter(parent_id=org.parent_id, name=name).exclude(pk=org.pk).exists():
        raise DomainError(
            OrgErrors.NAME_TAKEN, _("同一上级下已有同名组织"), fields={"name": _("同一上级下已有同名组织")}
        )
    old = org.name
    org.name = name
    org.save(update_fields=["name"])
    audit.record(actor, "org.rename", org=org, target=org, summary=f"{old} → {name}", ip=ip)
    return org


@transaction.atomic
def move_org(actor, org: Org, new_parent: Org, *, ip: str | None = None) -> Org:
    """Move an org with its whole subtree under another parent; the actor must administer both ends."""
    if org.parent_id is None:
        raise DomainError(OrgErrors.OWN_SCOPE_ROOT, _("不能移动顶级组织"))
    old_parent = org.parent
    if not (scoping.covers(actor, old_parent, admin=True) and scoping.covers(actor, new_parent, admin=True)):
        raise Forbidden("admin_required", _("移动组织需要原上级和新上级的管理员权限"))
    if new_parent.path.startswith(org.path):
        raise DomainError(
            OrgErrors.MOVE_INTO_OWN_SUBTREE,
            _("不能把组织移到它自己或它的下级之下"),
            fields={"parent_id": _("不能是本组织或其下级")},
        )
    if new_parent.pk == org.parent_id:
        return org
    if Org.objects.filter(parent=new_parent, name=org.name).exists():
        raise DomainError(
            OrgErrors.NAME_TAKEN, _("新上级下已有同名组织"), fields={"parent_id": _("新上级下已有同名组织")}
        )
    Org.objects.move(org, new_parent, "last-child")
    org = Org.objects.get(pk=org.pk)
    org.parent = new_parent
    org.save(update_fields=["parent"])
    audit.record(
        actor,
        "org.move",
        org=org,
        target=org,
        summary=f"{old_parent.name} → {new_parent.name}",
        data={"from": old_parent.pk, "to": new_parent.pk},
        ip=ip,
    )
    return org


@transaction.atomic
def set_org_active(actor, org: Org, active: bool, *, ip: str | None = None) -> Org:
    """Deactivate (or restore) an org. Refused while it still has active sub-orgs or members, so nobody is orphaned."""
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以停用组织"))
    if not active:
        if org.parent_id is None:
            raise DomainError(OrgErrors.OWN_SCOPE_ROOT, _("不能停用顶级组织"))
        from members.models import Member

        if Org.objects.filter(parent=org, is_active=True).exists():
            raise DomainError(OrgErrors.ORG_NOT_EMPTY, _("该组织还有在用的下级组织，请先移走或停用下级组织"))
        if Member.objects.filter(org=org).exists():
            raise DomainError(OrgErrors.ORG_NOT_EMPTY, _("该组织还有会员，请先办理会员转接"))
    elif org.parent_id and not org.parent.is_active:
        raise DomainError("parent_inactive", _("上级组织已停用，请先恢复上级组织"))
    org.is_active = active
    org.save(update_fields=["is_active"])
    audit.record(actor, "org.activate" if active else "org.deactivate", org=org, target=org, summary=org.name, ip=ip)
    return org


@transaction.atomic
def appoint_cadre(actor, org: Org, user, role: str, *, title: str = "", ip: str | None = None) -> CadreRole:
    if role not in CadreRoleKind.values:
        raise Invalid("invalid_role", _("角色无效"), fields={"role": _("应为 admin 或 staff")})
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以任命干部"))
    cadre, created = CadreRole.objects.update_or_create(
        user=user, org=org, defaults={"role": role, "title": title[:50], "appointed_by": actor}
    )
    audit.record(actor, "cadre.appoint", org=org, target=cadre, summary=f"{user.name} · {org.name} · {role}", ip=ip)
    return cadre


@transaction.atomic
def revoke_cadre(actor, cadre: CadreRole, *, ip: str | None = None) -> None:
    if not scoping.covers(actor, cadre.org, admin=True):
        raise NotFound()
    if cadre.user_id == getattr(actor, "pk", None) and cadre.role == CadreRoleKind.ADMIN:
        raise DomainError("cannot_revoke_self", _("不能撤销自己的管理员角色，请由上级管理员办理"))
    audit.record(
        actor, "cadre.revoke", org=cadre.org, target=cadre, summary=f"{cadre.user.name} · {cadre.org.name}", ip=ip
    )
    cadre.delete()
