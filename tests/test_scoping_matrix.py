"""Who may do what where: role × operation × inside/outside the role's subtree.

A cadre's role on org X reaches X's whole subtree and nothing else; outside answers 404 (the
same as missing), a staff cadre where an admin is needed answers 403.
"""

from __future__ import annotations

import pytest

from conftest import make_cadre, make_member, make_user
from core.errors import DomainError, Forbidden, NotFound
from members import services as members
from members.models import ImportJob, Member
from orgs import scoping
from orgs import services as orgs
from orgs.models import CadreRole, Org
from tests.helpers import good_rows, roster


@pytest.fixture
def world(district):
    d = district
    d.m_street_a = make_member(d.street_a, "街道会员")
    d.m_a1 = make_member(d.union_a1, "甲一会员")
    d.m_a1_b = make_member(d.union_a1, "甲一会员二")
    d.m_a2 = make_member(d.union_a2, "甲二会员")
    d.m_b1 = make_member(d.union_b1, "乙一会员")
    d.member = d.m_a1.user  # a plain member: no cadre role
    d.follower = make_user("关注者")
    return d


def who(d, role: str):
    return {
        "district_admin": d.district_admin,
        "admin_a": d.admin_a,
        "staff_a": d.staff_a,
        "admin_b": d.admin_b,
        "admin_a1": d.admin_a1,
        "member": d.member,
        "follower": d.follower,
    }[role]


def where(d, org: str):
    return getattr(d, org)


# --- GET /orgs/{id}/members ----------------------------------------------------------------------

MEMBER_LIST = [
    ("district_admin", "root", 200),
    ("district_admin", "union_b1", 200),
    ("admin_a", "street_a", 200),
    ("admin_a", "union_a1", 200),
    ("admin_a", "street_b", 404),
    ("admin_a", "union_b1", 404),
    ("admin_a", "root", 404),
    ("staff_a", "street_a", 200),
    ("staff_a", "union_a2", 200),
    ("staff_a", "union_b1", 404),
    ("admin_b", "union_b1", 200),
    ("admin_b", "union_a1", 404),
    ("admin_a1", "union_a1", 200),
    ("admin_a1", "street_a", 404),  # an ancestor is outside the role's subtree
    ("admin_a1", "union_a2", 404),  # so is a sibling
    ("member", "union_a1", 404),  # a plain member of that very union
    ("member", "street_a", 404),
    ("follower", "union_a1", 404),
    ("follower", "root", 404),
]


@pytest.mark.parametrize(("role", "org", "status"), MEMBER_LIST)
def test_member_list_is_visible_only_inside_the_roles_subtree(world, api, role, org, status):
    r = api(who(world, role)).get(f"/api/v1/orgs/{where(world, org).pk}/members")
    assert r.status_code == status, r.content
    if status == 404:
        assert r.json()["error"]["code"] == "not_found"
        assert "items" not in r.json()
    else:
        body = r.json()
        target = where(world, org)
        expected = Member.objects.filter(org__path__startswith=target.path).count()
        assert body["count"] == expected
        assert {i["org_id"] for i in body["items"]} <= set(
            Org.objects.filter(path__startswith=target.path).values_list("pk", flat=True)
        )


def test_a_missing_org_and_an_out_of_scope_org_look_the_same(world, api):
    outside = api(world.admin_a).get(f"/api/v1/orgs/{world.union_b1.pk}/members")
    missing = api(world.admin_a).get("/api/v1/orgs/999999/members")
    assert outside.status_code == missing.status_code == 404
    assert outside.json() == missing.json()


def test_direct_lists_only_the_orgs_own_members_and_default_lists_the_subtree(world, api):
    a = api(world.admin_a)
    subtree = a.get(f"/api/v1/orgs/{world.street_a.pk}/members").json()
    direct = a.get(f"/api/v1/orgs/{world.street_a.pk}/members?direct=1").json()
    assert subtree["count"] == 4  # street member + two in A1 + one in A2
    assert direct["count"] == 1
    assert [i["id"] for i in direct["items"]] == [world.m_street_a.user_id]
    assert {i["org_id"] for i in subtree["items"]} == {world.street_a.pk, world.union_a1.pk, world.union_a2.pk}
    a1 = a.get(f"/api/v1/orgs/{world.union_a1.pk}/members?direct=1").json()
    assert a1["count"] == 2
    root = api(world.district_admin).get(f"/api/v1/orgs/{world.root.pk}/members").json()
    assert root["count"] == 5
    assert api(world.district_admin).get(f"/api/v1/orgs/{world.root.pk}/members?direct=1").json()["count"] == 0


def test_member_list_items_carry_masked_pii_only(world, api):
    body = api(world.admin_a1).get(f"/api/v1/orgs/{world.union_a1.pk}/members").json()
    items = {i["id"]: i for i in body["items"]}
    item = items[world.m_a1.user_id]
    assert set(item) == {"id", "name", "phone_masked", "id_number_masked", "certified", "org_id"}
    full_id, full_phone = world.m_a1._id_number, world.m_a1.user.phone
    assert item["id_number_masked"] == full_id[:3] + "*" * 11 + full_id[-4:]
    assert item["phone_masked"] == full_phone[:3] + "****" + full_phone[-4:]
    assert full_id not in str(body) and full_phone not in str(body)


def test_a_role_on_an_inactive_org_reaches_nothing(world, api):
    spare = Org.objects.add_child(world.union_a2, {"name": "停用工会", "kind": "enterprise", "parent": world.union_a2})
    cadre = make_cadre(spare, "admin")
    assert api(cadre).get(f"/api/v1/orgs/{spare.pk}/members").status_code == 200
    Org.objects.filter(pk=spare.pk).update(is_active=False)
    cadre = type(cadre).objects.get(pk=cadre.pk)  # the role cache lives on the user object
    assert api(cadre).get(f"/api/v1/orgs/{spare.pk}/members").status_code == 404


# --- POST /orgs ----------------------------------------------------------------------------------

CREATE_ORG = [
    ("district_admin", "root", 201),
    ("district_admin", "union_b1", 201),
    ("admin_a", "street_a", 201),
    ("admin_a", "union_a1", 201),
    ("admin_a1", "union_a1", 201),
    ("staff_a", "street_a", 403),
    ("staff_a", "union_a1", 403),
    ("staff_a", "union_b1", 404),
    ("admin_a", "street_b", 404),
    ("admin_a", "root", 404),
    ("admin_b", "union_a1", 404),
    ("admin_a1", "street_a", 404),
    ("member", "union_a1", 404),
    ("follower", "root", 404),
]


@pytest.mark.parametrize(("role", "org", "status"), CREATE_ORG)
def test_creating_a_sub_org_needs_an_admin_role_over_the_parent(world, api, role, org, status):
    parent = where(world, org)
    before = Org.objects.count()
    r = api(who(world, role)).post("/api/v1/orgs", {"parent_id": parent.pk, "name": "新建工会", "kind": "enterprise"})
    assert r.status_code == status, r.content
    if status == 201:
        body = r.json()
        assert body["parent_id"] == parent.pk and body["name"] == "新建工会" and body["kind"] == "enterprise"
        created = Org.objects.get(pk=body["id"])
        assert created.path.startswith(parent.path) and created.depth == parent.depth + 1
        assert Org.objects.count() == before + 1
    else:
        assert r.json()["error"]["code"] == ("admin_required" if status == 403 else "not_found")
        assert Org.objects.count() == before


def test_creating_an_org_with_a_sibling_name_taken_is_409(world, api):
    r = api(world.admin_a).post(
        "/api/v1/orgs", {"parent_id": world.street_a.pk, "name": world.union_a1.name, "kind": "enterprise"}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "name_taken"


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"name": "  ", "kind": "enterprise"}, "invalid_name", "name"),
        ({"name": "x", "kind": "castle"}, "invalid_kind", "kind"),
    ],
)
def test_creating_an_org_with_bad_values_is_422(world, api, payload, code, field):
    r = api(world.admin_a).post("/api/v1/orgs", {"parent_id": world.street_a.pk, **payload})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == code
    assert field in r.json()["error"]["fields"]


# --- POST /orgs/{id}/members/import --------------------------------------------------------------

IMPORT = [
    ("district_admin", "union_b1", 200),
    ("admin_a", "union_a1", 200),
    ("admin_a", "street_a", 200),
    ("admin_a1", "union_a1", 200),
    ("staff_a", "union_a1", 403),
    ("staff_a", "street_a", 403),
    ("admin_a", "union_b1", 404),
    ("admin_b", "union_a2", 404),
    ("admin_a1", "street_a", 404),
    ("member", "union_a1", 404),
    ("follower", "union_a1", 404),
]


@pytest.mark.parametrize(("role", "org", "status"), IMPORT)
def test_importing_a_roster_needs_an_admin_role_over_the_org(world, api, role, org, status):
    target = where(world, org)
    before = Member.objects.count()
    r = api(who(world, role)).upload(f"/api/v1/orgs/{target.pk}/members/import", roster(good_rows(2)))
    assert r.status_code == status, r.content
    if status == 200:
        assert r.json()["created"] == 2
        assert Member.objects.filter(org=target).count() >= 2
    else:
        assert r.json()["error"]["code"] == ("admin_required" if status == 403 else "not_found")
        assert Member.objects.count() == before
        assert not ImportJob.objects.exists()


# --- GET /imports/{id} ---------------------------------------------------------------------------


def test_an_import_job_is_visible_inside_its_orgs_subtree_only(world, api, settings):
    r = api(world.admin_b).upload(f"/api/v1/orgs/{world.union_b1.pk}/members/import", roster(good_rows(1)))
    assert r.status_code == 200
    job = ImportJob.objects.get(org=world.union_b1)
    assert api(world.admin_b).get(f"/api/v1/imports/{job.pk}").status_code == 200
    assert api(world.district_admin).get(f"/api/v1/imports/{job.pk}").status_code == 200
    for outsider in (world.admin_a, world.staff_a, world.admin_a1, world.member, world.follower):
        r = api(outsider).get(f"/api/v1/imports/{job.pk}")
        assert r.status_code == 404, outsider.name
        assert r.json()["error"]["code"] == "not_found"
    assert api(world.admin_b).get("/api/v1/imports/999999").status_code == 404


# --- services: rename, move, deactivate, appoint ---------------------------------------------------


def test_rename_inside_the_subtree_works_and_outside_is_refused(world):
    orgs.rename_org(world.admin_a, world.union_a1, "甲一新名")
    assert Org.objects.get(pk=world.union_a1.pk).name == "甲一新名"
    for actor in (world.admin_a, world.staff_a, world.admin_a1):
        with pytest.raises(Forbidden):
            orgs.rename_org(actor, world.union_b1, "改不了")
    with pytest.raises(Forbidden):
        orgs.rename_org(world.staff_a, world.union_a1, "干事改不了")
    assert Org.objects.get(pk=world.union_b1.pk).name == "乙一公司工会"


def test_rename_to_a_sibling_name_is_refused(world):
    with pytest.raises(DomainError) as e:
        orgs.rename_org(world.admin_a, world.union_a1, world.union_a2.name)
    assert e.value.code == "name_taken"


def test_move_needs_admin_over_both_ends_and_keeps_the_subtree(world):
    child = Org.objects.add_child(world.union_a1, {"name": "甲一分会", "kind": "enterprise", "parent": world.union_a1})
    union_a1 = Org.objects.get(pk=world.union_a1.pk)
    # admin_a administers the old parent but not the new one.
    with pytest.raises(Forbidden):
        orgs.move_org(world.admin_a, union_a1, world.street_b)
    with pytest.raises(Forbidden):
        orgs.move_org(world.admin_b, union_a1, world.street_b)
    moved = orgs.move_org(world.district_admin, union_a1, world.street_b)
    street_b = Org.objects.get(pk=world.street_b.pk)
    assert moved.parent_id == street_b.pk and moved.path.startswith(street_b.path)
    child = Org.objects.get(pk=child.pk)
    assert child.path.startswith(moved.path) and child.parent_id == moved.pk
    # The move changes scope: admin_b now reaches the union and its members, admin_a no longer does.
    admin_a = type(world.admin_a).objects.get(pk=world.admin_a.pk)
    admin_b = type(world.admin_b).objects.get(pk=world.admin_b.pk)
    assert scoping.covers(admin_b, moved) and not scoping.covers(admin_a, moved)
    assert members.members_for(admin_b, street_b).filter(pk=world.m_a1.pk).exists()


def test_move_into_its_own_subtree_is_refused(world):
    child = Org.objects.add_child(world.union_a1, {"name": "甲一分会", "kind": "enterprise", "parent": world.union_a1})
    with pytest.raises(DomainError) as e:
        orgs.move_org(world.district_admin, Org.objects.get(pk=world.street_a.pk), child)
    assert e.value.code == "move_into_own_subtree"


def test_deactivate_inside_works_when_empty_and_outside_is_refused(world):
    empty = Org.objects.add_child(world.union_a2, {"name": "空工会", "kind": "enterprise", "parent": world.union_a2})
    with pytest.raises(Forbidden):
        orgs.set_org_active(world.admin_b, empty, False)
    with pytest.raises(Forbidden):
        orgs.set_org_active(world.staff_a, empty, False)
    orgs.set_org_active(world.admin_a, empty, False)
    assert not Org.objects.get(pk=empty.pk).is_active


def test_deactivating_an_org_with_members_or_active_children_is_refused(world):
    with pytest.raises(DomainError) as e:
        orgs.set_org_active(world.admin_a, world.union_a1, False)
    assert e.value.code == "org_not_empty"
    with pytest.raises(DomainError) as e:
        orgs.set_org_active(world.district_admin, world.street_b, False)
    assert e.value.code == "org_not_empty"
    assert Org.objects.get(pk=world.union_a1.pk).is_active


def test_appoint_inside_works_and_outside_is_refused(world):
    someone = make_user("新干部")
    orgs.appoint_cadre(world.admin_a, world.union_a2, someone, "staff")
    assert CadreRole.objects.filter(user=someone, org=world.union_a2, role="staff").exists()
    for actor, org in (
        (world.admin_a, world.union_b1),
        (world.staff_a, world.union_a2),
        (world.admin_a1, world.street_a),
    ):
        with pytest.raises(Forbidden):
            orgs.appoint_cadre(actor, org, make_user("拒绝"), "admin")
    assert not CadreRole.objects.filter(org=world.union_b1, user__name="拒绝").exists()


def test_an_admin_cannot_appoint_themselves_above_their_scope(world):
    with pytest.raises(Forbidden):
        orgs.appoint_cadre(world.admin_a1, world.root, world.admin_a1, "admin")
    assert not scoping.covers(type(world.admin_a1).objects.get(pk=world.admin_a1.pk), world.root)


def test_revoke_outside_the_scope_is_not_found(world):
    role_b = CadreRole.objects.get(user=world.admin_b)
    with pytest.raises(NotFound):
        orgs.revoke_cadre(world.admin_a, role_b)
    assert CadreRole.objects.filter(pk=role_b.pk).exists()


# --- members see only their own data -------------------------------------------------------------


def test_a_member_sees_only_their_own_data(world, api):
    me = api(world.member).get("/api/v1/me").json()
    assert me["id"] == world.member.pk
    assert me["org"] == {"id": world.union_a1.pk, "name": world.union_a1.name}
    assert me["roles"] == []
    with pytest.raises(NotFound):
        members.member_for_cadre(world.member, world.m_a1_b.pk)
    with pytest.raises(NotFound):
        members.member_for_cadre(world.member, world.m_a1.pk)
    with pytest.raises(NotFound):
        members.members_for(world.member, world.union_a1)
    assert not scoping.orgs_for(world.member).exists()


def test_cadre_member_lookup_and_pii_reveal_follow_scope(world):
    assert members.member_for_cadre(world.staff_a, world.m_a2.pk) == world.m_a2
    with pytest.raises(NotFound):
        members.member_for_cadre(world.admin_a, world.m_b1.pk)
    with pytest.raises(NotFound):
        members.reveal_pii(world.admin_a, world.m_b1)
    with pytest.raises(NotFound):
        members.member_for_cadre(world.admin_a1, world.m_street_a.pk)
