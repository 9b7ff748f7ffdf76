"""Console pages, driven through Django's test client: scope, permissions, audit, imports."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from conftest import PASSWORD, make_member, make_user, unique_id_number
from core.models import AuditLog
from members import services as member_services
from members.models import ImportJob, JoinApplication, Member
from orgs.models import CadreRole, Org

from .helpers import roster_xlsx

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def upload(client, org, data: bytes, name="roster.xlsx", dry_run=False):
    payload = {"org": org.pk, "file": SimpleUploadedFile(name, data)}
    if dry_run:
        payload["dry_run"] = "1"
    return client.post(reverse("console:import_upload"), payload)


# --- sign-in -------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_console_login(client):
    r = client.get(reverse("console:members"))
    assert r.status_code == 302
    assert r["Location"].startswith(reverse("console:login") + "?next=")


def test_wrong_password_is_shown_beside_the_password_field(client, district):
    r = client.post(reverse("console:login"), {"phone": district.admin_a.phone, "password": "nope-nope"})
    assert r.status_code == 401
    html = r.content.decode()
    assert re.search(r'id="id_password"[^>]*>\s*<p class="field-error"[^>]*>手机号或密码不正确', html)


def test_repeated_failures_are_throttled(client, district):
    for _ in range(5):
        client.post(reverse("console:login"), {"phone": district.admin_a.phone, "password": "nope-nope"})
    r = client.post(reverse("console:login"), {"phone": district.admin_a.phone, "password": PASSWORD})
    assert r.status_code == 429
    assert "登录失败次数过多" in r.content.decode()
    assert "_auth_user_id" not in client.session


def test_cadre_signs_in_and_lands_on_the_dashboard(client, district):
    # A staff cadre: the password is all it takes (admins' second factor: test_twofactor.py).
    make_member(district.union_a1, "甲一会员")
    make_member(district.union_b1, "乙一会员")
    r = client.post(reverse("console:login"), {"phone": district.staff_a.phone, "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == reverse("console:home")
    home = client.get(reverse("console:home"))
    assert home.status_code == 200
    stats = home.context["stats"]
    assert stats["orgs"] == 3  # street A, A1, A2
    assert stats["members"] == 1  # B1's member is outside street A


def test_non_cadre_sees_the_no_role_page(client, district):
    person = make_user("普通粉丝")
    r = client.post(reverse("console:login"), {"phone": person.phone, "password": PASSWORD})
    assert r.status_code == 403
    assert "你没有干部角色" in r.content.decode()
    assert client.get(reverse("console:home")).status_code == 403


# --- scope --------------------------------------------------------------------------------------


def test_other_subtree_org_and_member_pages_are_404(client, district):
    member = make_member(district.union_a1, "甲一会员")
    login(client, district.admin_b)
    assert client.get(reverse("console:org", args=[district.street_a.pk])).status_code == 404
    assert client.get(reverse("console:org", args=[district.union_a1.pk])).status_code == 404
    assert client.get(reverse("console:members"), {"org": district.street_a.pk}).status_code == 404
    assert client.get(reverse("console:member", args=[member.pk])).status_code == 404
    assert client.post(reverse("console:member_reveal", args=[member.pk])).status_code == 404
    assert not AuditLog.objects.filter(action="pii.view").exists()
    assert client.get(reverse("console:org", args=[district.union_b1.pk])).status_code == 200


def test_org_page_lists_children_with_subtree_member_counts(client, district):
    make_member(district.union_a1, "甲一会员一")
    make_member(district.union_a1, "甲一会员二")
    login(client, district.admin_a)
    r = client.get(reverse("console:org", args=[district.street_a.pk]))
    children = {c.name: c.member_count for c in r.context["children"]}
    assert children == {"甲一公司工会": 2, "甲二社区工会": 0}
    # breadcrumbs stop at the cadre's own scope: the district root is not shown to a street admin
    assert [c.name for c in r.context["crumbs"]] == ["甲街道工会"]


def test_member_list_is_masked_and_searchable(client, district):
    m = make_member(district.union_a1, "欧阳娜娜")
    make_member(district.union_a2, "张伟")
    login(client, district.admin_a)
    r = client.get(reverse("console:members"), {"org": district.street_a.pk, "q": "欧阳"})
    html = r.content.decode()
    assert "欧阳娜娜" in html and "张伟" not in html
    assert m._id_number not in html
    assert m.id_number_masked in html and m.phone_masked in html
    direct = client.get(reverse("console:members"), {"org": district.street_a.pk, "scope": "direct"})
    assert "暂无数据" in direct.content.decode()


def test_reveal_shows_full_values_once_and_writes_an_audit_row(client, district):
    m = make_member(district.union_a1, "甲一会员")
    login(client, district.staff_a)
    detail = client.get(reverse("console:member", args=[m.pk])).content.decode()
    assert m._id_number not in detail
    r = client.post(reverse("console:member_reveal", args=[m.pk]))
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    assert m._id_number in r.content.decode()
    row = AuditLog.objects.get(action="pii.view")
    assert (row.actor, row.target_id, row.org_path) == (district.staff_a, str(m.pk), district.union_a1.path)


# --- orgs ---------------------------------------------------------------------------------------


def test_admin_adds_renames_and_moves_an_org(client, district):
    login(client, district.admin_a)
    r = client.post(
        reverse("console:org_action", args=[district.street_a.pk, "add"]), {"name": "甲三工会", "kind": "enterprise"}
    )
    new = Org.objects.get(name="甲三工会")
    assert r.status_code == 302 and new.parent == district.street_a
    client.post(reverse("console:org_action", args=[new.pk, "rename"]), {"name": "甲三科技工会"})
    new.refresh_from_db()
    assert new.name == "甲三科技工会"
    client.post(reverse("console:org_action", args=[new.pk, "move"]), {"parent_id": district.union_a1.pk})
    new.refresh_from_db()
    assert new.parent == district.union_a1 and new.path.startswith(district.union_a1.path)


def test_duplicate_name_error_is_shown_beside_the_name_field(client, district):
    login(client, district.admin_a)
    r = client.post(reverse("console:org_action", args=[district.union_a2.pk, "rename"]), {"name": "甲一公司工会"})
    assert r.status_code == 409
    html = r.content.decode()
    assert re.search(r'id="rename-name"[^>]*>\s*<p class="field-error"[^>]*>同一上级下已有同名组织', html)


def test_move_outside_scope_is_refused(client, district):
    login(client, district.admin_a)
    r = client.post(
        reverse("console:org_action", args=[district.union_a2.pk, "move"]), {"parent_id": district.street_b.pk}
    )
    assert r.status_code == 404
    district.union_a2.refresh_from_db()
    assert district.union_a2.parent == district.street_a


def test_staff_cannot_add_an_org(client, district):
    login(client, district.staff_a)
    r = client.post(
        reverse("console:org_action", args=[district.street_a.pk, "add"]), {"name": "甲四工会", "kind": "enterprise"}
    )
    assert r.status_code == 403
    assert "管理员" in r.content.decode()
    assert not Org.objects.filter(name="甲四工会").exists()


def test_deactivate_refused_while_members_remain_then_allowed(client, district):
    make_member(district.union_a2, "甲二会员")
    login(client, district.admin_a)
    r = client.post(reverse("console:org_action", args=[district.union_a2.pk, "deactivate"]))
    assert r.status_code == 409 and "请先办理会员转接" in r.content.decode()
    Member.objects.filter(org=district.union_a2).delete()
    client.post(reverse("console:org_action", args=[district.union_a2.pk, "deactivate"]))
    district.union_a2.refresh_from_db()
    assert district.union_a2.is_active is False


# --- cadres -------------------------------------------------------------------------------------


def test_staff_cannot_appoint(client, district):
    person = make_user("候选人")
    login(client, district.staff_a)
    r = client.post(
        reverse("console:cadre_appoint"), {"org": district.street_a.pk, "phone": person.phone, "role": "staff"}
    )
    assert r.status_code == 403
    assert "只有该组织或上级组织的管理员可以任命干部" in r.content.decode()
    assert not CadreRole.objects.filter(user=person).exists()


def test_admin_appoints_by_phone_and_revokes(client, district):
    person = make_user("新干事")
    login(client, district.admin_a)
    r = client.post(
        reverse("console:cadre_appoint"),
        {"org": district.union_a2.pk, "phone": person.phone, "role": "staff", "title": "干事"},
    )
    assert r.status_code == 302
    role = CadreRole.objects.get(user=person)
    assert (role.org, role.role, role.title) == (district.union_a2, "staff", "干事")
    client.post(reverse("console:cadre_revoke", args=[role.pk]), {"org": district.street_a.pk})
    assert not CadreRole.objects.filter(user=person).exists()


def test_appoint_unknown_phone_shows_error_beside_phone(client, district):
    login(client, district.admin_a)
    r = client.post(
        reverse("console:cadre_appoint"), {"org": district.street_a.pk, "phone": "13100000000", "role": "admin"}
    )
    assert r.status_code == 422
    assert re.search(r'id="ap-phone"[^>]*>\s*<p class="field-error"', r.content.decode())


def test_cadre_of_other_subtree_cannot_revoke(client, district):
    role = CadreRole.objects.get(user=district.admin_a1)
    login(client, district.admin_b)
    assert client.post(reverse("console:cadre_revoke", args=[role.pk])).status_code == 404
    assert CadreRole.objects.filter(pk=role.pk).exists()


# --- imports ------------------------------------------------------------------------------------


def test_good_import_creates_members(client, district):
    login(client, district.admin_a)
    rows = [
        ["赵一", "13800000001", unique_id_number(), "", "2020-01-01", "一车间"],
        ["钱二", "13800000002", unique_id_number(), "", "", ""],
    ]
    r = upload(client, district.union_a1, roster_xlsx(rows))
    assert r.status_code == 200
    job = r.context["job"]
    assert (job.status, job.created, job.errors) == ("done", 2, [])
    assert Member.objects.filter(org=district.union_a1, name__in=["赵一", "钱二"]).count() == 2
    assert 'data-count="created">2<' in r.content.decode()


def test_bad_rows_are_listed_with_row_numbers_and_report_downloads(client, district):
    login(client, district.admin_a)
    rows = [
        ["赵一", "13800000001", unique_id_number(), "", "", ""],
        ["", "12345", unique_id_number(), "", "", ""],
        ["孙三", "13800000003", "123", "", "", ""],
    ]
    r = upload(client, district.union_a1, roster_xlsx(rows), dry_run=True)
    job = r.context["job"]
    assert job.dry_run and job.created == 1
    assert not Member.objects.filter(name="赵一").exists()  # dry run wrote nothing
    html = r.content.decode()
    table = html[html.index('id="row-errors"') :]
    assert re.search(r'<td class="num">3</td><td class="nowrap">姓名</td>', table)
    assert re.search(r'<td class="num">3</td><td class="nowrap">手机号</td>', table)
    assert re.search(r'<td class="num">4</td><td class="nowrap">身份证号</td>', table)

    report = client.get(reverse("console:import_errors", args=[job.pk]))
    assert report.status_code == 200
    assert report["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(report.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "行号"
    assert sorted({v[0] for v in values[1:]}) == [3, 4]


def test_whole_file_error_is_shown_beside_the_file_field(client, district):
    login(client, district.admin_a)
    r = upload(client, district.union_a1, b"this is not a spreadsheet", name="roster.xlsx")
    assert r.status_code == 422
    assert re.search(r'id="id_file"[^>]*>\s*<p class="field-error"', r.content.decode())
    missing = upload(client, district.union_a1, roster_xlsx([["赵一"]], header=["姓名"]))
    assert missing.status_code == 422
    assert "field-error" in missing.content.decode()
    assert not ImportJob.objects.exists()


def test_other_subtree_job_and_report_are_404(client, district):
    login(client, district.admin_a)
    job = upload(client, district.union_a1, roster_xlsx([["", "1", "2", "", "", ""]])).context["job"]
    client.logout()
    login(client, district.admin_b)
    assert client.get(reverse("console:import_errors", args=[job.pk])).status_code == 404
    assert client.get(reverse("console:import", args=[job.pk])).status_code == 404


def test_progress_partial_polls_until_the_job_is_done(client, district):
    login(client, district.admin_a)
    job = ImportJob.objects.create(
        org=district.union_a1, actor=district.admin_a, filename="big.xlsx", total=10000, progress=2500, status="running"
    )
    running = client.get(reverse("console:import_progress", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in running and 'aria-valuenow="25"' in running
    job.status, job.progress = "done", 10000
    job.save()
    done = client.get(reverse("console:import_progress", args=[job.pk])).content.decode()
    assert "hx-trigger" not in done and "已完成" in done


def test_template_download_has_the_documented_header(client, district):
    login(client, district.staff_a)
    r = client.get(reverse("console:import_template"))
    header = next(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert list(header) == ["姓名", "手机号", "身份证号", "性别", "入会日期", "工作单位"]


# --- audit and requests -------------------------------------------------------------------------


def test_audit_log_shows_only_rows_of_the_cadres_subtrees(client, district):
    a = make_member(district.union_a1, "甲一会员")
    b = make_member(district.union_b1, "乙一会员")
    member_services.reveal_pii(district.district_admin, a)
    member_services.reveal_pii(district.district_admin, b)
    login(client, district.admin_b)
    rows = list(client.get(reverse("console:audit")).context["rows"])
    assert [r.target_id for r in rows] == [str(b.pk)]


def test_join_application_reject_needs_reason_then_approve(client, district):
    applicant = make_user("申请人")
    app = member_services.apply_to_join(applicant, district.union_a1, "申请人", unique_id_number())
    login(client, district.admin_a)
    page = client.get(reverse("console:requests"))
    assert app in list(page.context["joins"])
    r = client.post(reverse("console:request_decide", args=["join", app.pk]), {"decision": "reject", "reason": ""})
    assert r.status_code == 422 and "驳回时请填写原因" in r.content.decode()
    client.post(reverse("console:request_decide", args=["join", app.pk]), {"decision": "approve"})
    app.refresh_from_db()
    assert app.status == "approved"
    assert Member.objects.filter(user=applicant, org=district.union_a1).exists()


def test_other_subtree_application_cannot_be_decided(client, district):
    applicant = make_user("申请人")
    app = member_services.apply_to_join(applicant, district.union_a1, "申请人", unique_id_number())
    login(client, district.admin_b)
    r = client.post(reverse("console:request_decide", args=["join", app.pk]), {"decision": "approve"})
    assert r.status_code == 404
    assert JoinApplication.objects.get(pk=app.pk).status == "pending"


def test_org_search_stays_in_scope_and_excludes_the_moving_subtree(client, district):
    login(client, district.admin_b)
    assert client.get(reverse("console:org_pick"), {"q": "甲"}).context["results"] == []
    client.logout()
    login(client, district.admin_a)
    r = client.get(reverse("console:org_pick"), {"q": "甲", "mode": "parent", "exclude": district.union_a1.pk})
    assert {o.name for o in r.context["results"]} == {"甲街道工会", "甲二社区工会"}
