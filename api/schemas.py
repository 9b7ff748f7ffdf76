from __future__ import annotations

from ninja import Schema


class TokenIn(Schema):
    phone: str
    password: str


class TokenOut(Schema):
    token: str
    expires_at: str


class OrgRef(Schema):
    id: int
    name: str


class RoleOut(Schema):
    org_id: int
    role: str


class MeOut(Schema):
    id: int
    name: str
    phone_masked: str
    certified: bool
    org: OrgRef | None
    roles: list[RoleOut]
    points_balance: int


class OrgOut(Schema):
    id: int
    name: str
    kind: str
    parent_id: int | None
    is_active: bool


class OrgList(Schema):
    items: list[OrgOut]
    count: int


class OrgIn(Schema):
    parent_id: int
    name: str
    kind: str


class MemberOut(Schema):
    id: int
    name: str
    phone_masked: str
    id_number_masked: str
    certified: bool
    org_id: int


class MemberList(Schema):
    items: list[MemberOut]
    count: int


class HealthOut(Schema):
    status: str
