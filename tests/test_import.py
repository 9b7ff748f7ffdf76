"""Roster import (会员名册导入) through the API, with real .xlsx files built by openpyxl."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from accounts.models import User
from conftest import make_member, make_user, unique_id_number
from core import pii
from members import jobs
from members.models import ImportJob, Member, MembershipPeriod
from tests.helpers import HEADER, good_rows, person_row, roster, roster_phone, upload, xlsx_bytes


@pytest.fixture
def org(district):
    return district.union_a1


@pytest.fixture
def admin(api, district):
    return api(district.admin_a1)


def url(org, dry_run: bool = False) -> str:
    return f"/api/v1/orgs/{org.pk}/members/import" + ("?dry_run=1" if dry_run else "")


def codes(body) -> list[tuple[int, str, str]]:
    return [(e["row"], e["field"], e["code"]) for e in body["errors"]]


def assert_file_error(r, code: str, status: int = 422) -> dict:
    assert r.status_code == status, r.content
    err = r.json()["error"]
    assert err["code"] == code
    assert err["message"]
    return err


# --- good files ----------------------------------------------------------------------------------


def test_good_rows_are_created_with_encrypted_pii_and_a_period(org, admin):
    rows = good_rows(3)
    r = admin.upload(url(org), roster(rows))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body == {"created": 3, "updated": 0, "unchanged": 0, "errors": []}
    stored = Member.objects.filter(org=org).order_by("id")
    assert stored.count() == 3
    for m, row in zip(stored, rows, strict=True):
        assert m.name == row[0]
        assert pii.decrypt(m.phone_enc) == row[1]
        assert pii.decrypt(m.id_number_enc) == row[2]
        assert m.id_number_hash == pii.id_number_index(row[2])
        assert m.joined_on == dt.date(2020, 3, 1) and m.workplace == "一车间"
        assert m.gender == ("M" if row[3] == "男" else "F")
        assert not m.certified  # a roster row is certified only when the person proves it
        assert m.user.phone == row[1] and m.user.claimed_at is None
        assert not m.user.has_usable_password()
        assert MembershipPeriod.objects.filter(member=m, org=org, ended_at__isnull=True, how="roster").count() == 1
    # PII is never stored in clear text.
    assert not Member.objects.filter(id_number_hash=rows[0][2]).exists()


def test_a_re_run_changes_nothing_and_creates_nothing_twice(org, admin):
    rows = good_rows(4)
    assert admin.upload(url(org), roster(rows)).json()["created"] == 4
    counts = (Member.objects.count(), User.objects.count(), MembershipPeriod.objects.count())
    again = admin.upload(url(org), roster(rows)).json()
    assert again == {"created": 0, "updated": 0, "unchanged": 4, "errors": []}
    assert (Member.objects.count(), User.objects.count(), MembershipPeriod.objects.count()) == counts


def test_a_changed_row_is_updated_in_place(org, admin):
    rows = good_rows(3)
    admin.upload(url(org), roster(rows))
    before = {m.id_number_hash: m.pk for m in Member.objects.all()}
    rows[1][5] = "质检部"
    rows[1][0] = "改名"
    new_phone = roster_phone()
    rows[2][1] = new_phone
    body = admin.upload(url(org), roster(rows)).json()
    assert body == {"created": 0, "updated": 2, "unchanged": 1, "errors": []}
    assert {m.id_number_hash: m.pk for m in Member.objects.all()} == before
    m1 = Member.objects.get(id_number_hash=pii.id_number_index(rows[1][2]))
    assert (m1.name, m1.workplace) == ("改名", "质检部")
    m2 = Member.objects.get(id_number_hash=pii.id_number_index(rows[2][2]))
    assert pii.decrypt(m2.phone_enc) == new_phone and m2.phone_hash == pii.phone_index(new_phone)


def test_a_dry_run_writes_nothing_and_reports_what_the_real_run_does(org, admin):
    existing = good_rows(2)
    admin.upload(url(org), roster(existing))
    existing[0][5] = "新部门"
    rows = [*existing, *good_rows(3), person_row("坏人", phone="12345")]
    counts = (Member.objects.count(), User.objects.count(), MembershipPeriod.objects.count())
    snapshot = list(Member.objects.values_list("id", "workplace", "updated_at"))
    dry = admin.upload(url(org, dry_run=True), roster(rows))
    assert dry.status_code == 200
    assert (Member.objects.count(), User.objects.count(), MembershipPeriod.objects.count()) == counts
    assert list(Member.objects.values_list("id", "workplace", "updated_at")) == snapshot
    real = admin.upload(url(org), roster(rows))
    assert dry.json() == real.json()
    assert real.json()["created"] == 3 and real.json()["updated"] == 1 and real.json()["unchanged"] == 1
    assert codes(real.json()) == [(7, "手机号", "invalid_phone")]


def test_headers_in_any_order_with_aliases_and_extra_columns(org, admin):
    idn = unique_id_number()
    phone = roster_phone()
    header = ["备注", "身份证号码", "会员姓名", "手机号码", "序号"]
    r = admin.upload(url(org), roster([["x", idn, "钱七", phone, 1]], header=header))
    assert r.json() == {"created": 1, "updated": 0, "unchanged": 0, "errors": []}
    m = Member.objects.get()
    assert (m.name, pii.decrypt(m.phone_enc), pii.decrypt(m.id_number_enc)) == ("钱七", phone, idn)
    assert m.joined_on is None and m.workplace == ""


def test_excel_native_numbers_and_dates_are_read(org, admin):
    idn = unique_id_number()
    row = ["孙八", 13712340000, idn, "", dt.datetime(2019, 5, 4), "一车间"]
    r = admin.upload(url(org), upload(xlsx_bytes([HEADER, row])))
    assert r.json()["created"] == 1, r.json()
    m = Member.objects.get()
    assert pii.decrypt(m.phone_enc) == "13712340000" and m.joined_on == dt.date(2019, 5, 4)


def test_blank_lines_are_skipped_and_row_numbers_stay_the_sheets(org, admin):
    rows = [person_row("甲"), [None] * 6, ["", "", "", "", "", ""], person_row("乙", phone="123")]
    body = admin.upload(url(org), roster(rows)).json()
    assert body["created"] == 1
    assert codes(body) == [(5, "手机号", "invalid_phone")]


def test_an_existing_follower_account_becomes_the_members_account(org, admin):
    follower = make_user("周九")
    r = admin.upload(url(org), roster([person_row("周九", phone=follower.phone)]))
    assert r.json()["created"] == 1
    assert Member.objects.get().user_id == follower.pk
    assert User.objects.filter(phone_hash=follower.phone_hash).count() == 1


# --- bad rows ------------------------------------------------------------------------------------


def test_each_bad_row_is_reported_by_row_field_and_code(org, admin):
    other_phone = roster_phone()
    male_id = None
    while male_id is None or int(male_id[16]) % 2 == 0:
        male_id = unique_id_number()
    rows = [
        person_row("好人"),  # 2
        person_row(""),  # 3 required name
        person_row("无电话", phone=""),  # 4 required phone
        person_row("坏电话", phone="12912345678"),  # 5
        person_row("短号", id_number="51011219900101"),  # 6
        person_row("校验", id_number=unique_id_number()[:17] + "Z"),  # 7 invalid_format
        person_row("二月", id_number="510112199002301230"),  # 8 birth date
        person_row("坏日期", joined_on="2020-13-45"),  # 9
        person_row("将来", joined_on="2999-01-01"),  # 10
        person_row("性别", id_number=male_id, gender="女"),  # 11
        person_row("怪性别", gender="未知"),  # 12
        person_row("同号甲", phone=other_phone),  # 13
        person_row("同号乙", phone=other_phone),  # 14 duplicate phone
        person_row("太长" * 30),  # 15
    ]
    r = admin.upload(url(org), roster(rows))
    assert r.status_code == 200
    body = r.json()
    assert body["created"] == 2  # rows 2 and 13
    got = codes(body)
    for expected in [
        (3, "姓名", "required"),
        (4, "手机号", "required"),
        (5, "手机号", "invalid_phone"),
        (6, "身份证号", "invalid_length"),
        (7, "身份证号", "invalid_format"),
        (8, "身份证号", "invalid_birth_date"),
        (9, "入会日期", "invalid_date"),
        (10, "入会日期", "invalid_date"),
        (11, "性别", "gender_mismatch"),
        (12, "性别", "invalid_gender"),
        (14, "手机号", "duplicate_phone"),
        (15, "姓名", "too_long"),
    ]:
        assert expected in got, (expected, got)
    assert {row for row, _, _ in got} == set(range(3, 13)) | {14, 15}
    assert all(e["message"] for e in body["errors"])
    assert Member.objects.count() == 2


def test_a_wrong_checksum_is_invalid_checksum(org, admin):
    good = unique_id_number()
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    body = admin.upload(url(org), roster([person_row("错位", id_number=bad)])).json()
    assert codes(body) == [(2, "身份证号", "invalid_checksum")]
    assert bad not in str(body)  # never echo the ID number


def test_a_repeated_row_is_an_error_on_the_later_row(org, admin):
    row = person_row("重复")
    rows = [row, person_row("别人"), list(row)]
    body = admin.upload(url(org), roster(rows)).json()
    assert body["created"] == 2
    assert codes(body) == [(4, "身份证号", "duplicate_row")]
    assert "2" in body["errors"][0]["message"]


def test_an_id_already_in_another_union_is_member_of_other_org(district, org, admin):
    elsewhere = make_member(district.union_b1, "外人")
    body = admin.upload(url(org), roster([person_row("外人", id_number=elsewhere._id_number)])).json()
    assert body["created"] == 0
    assert codes(body) == [(2, "身份证号", "member_of_other_org")]
    assert Member.objects.get(pk=elsewhere.pk).org_id == district.union_b1.pk


def test_a_phone_used_by_another_member_is_phone_in_use(district, org, admin):
    other = make_member(district.union_b1, "甲")
    body = admin.upload(url(org), roster([person_row("乙", phone=other.user.phone)])).json()
    assert codes(body) == [(2, "手机号", "phone_in_use")]
    assert Member.objects.count() == 1


def test_an_id_number_stored_as_an_excel_number_is_id_number_not_text(org, admin):
    idn = unique_id_number()
    while idn.endswith("X"):
        idn = unique_id_number()
    row = ["数字", roster_phone(), int(idn), "", "", ""]
    body = admin.upload(url(org), upload(xlsx_bytes([HEADER, row]))).json()
    assert codes(body) == [(2, "身份证号", "id_number_not_text")]
    assert not Member.objects.exists()


def test_an_id_number_written_as_text_in_a_text_column_is_fine(org, admin):
    idn = unique_id_number()
    row = ["文本", roster_phone(), idn, "", "", ""]
    body = admin.upload(url(org), upload(xlsx_bytes([HEADER, row], text_columns=[2]))).json()
    assert body["created"] == 1, body


# --- bad files -----------------------------------------------------------------------------------


def _garbage_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return buf.getvalue()


BAD_FILES = [
    ("csv_bytes", "roster.csv", "姓名,手机号,身份证号\n张三,13900000000,x\n".encode(), "invalid_file_type"),
    ("csv_named_xlsx", "roster.xlsx", "姓名,手机号,身份证号\n张三,13900000000,x\n".encode(), "invalid_file_type"),
    ("xls_name", "roster.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "invalid_file_type"),
    ("zip_not_xlsx", "roster.xlsx", _garbage_zip(), "invalid_file_type"),
    ("truncated_xlsx", "roster.xlsx", None, "invalid_file_type"),
    ("empty", "roster.xlsx", b"", "empty_file"),
    ("header_only", "roster.xlsx", xlsx_bytes([HEADER]), "empty_file"),
    ("no_rows_at_all", "roster.xlsx", xlsx_bytes([]), "empty_file"),
]


@pytest.mark.parametrize(("case", "name", "content", "code"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_a_specific_error_and_loses_nothing(org, admin, case, name, content, code):
    admin.upload(url(org), roster(good_rows(2)))
    if content is None:
        content = xlsx_bytes([HEADER, *good_rows(3)])[:700]
    before = set(Member.objects.values_list("pk", flat=True))
    r = admin.upload(url(org), upload(content, name))
    err = assert_file_error(r, code)
    assert "file" in err["fields"]
    assert set(Member.objects.values_list("pk", flat=True)) == before
    assert not ImportJob.objects.filter(status="queued").exists()


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        (["姓名", "手机号", "性别"], "身份证号"),
        (["姓名", "手机号", "身份证号码X"], "身份证号"),  # renamed beyond recognition
        (["名字", "手机号", "身份证号"], "姓名"),
        (["姓名", "电话号", "身份证号"], "手机号"),
    ],
)
def test_a_missing_or_renamed_required_column_is_422_naming_it(org, admin, header, missing):
    r = admin.upload(url(org), roster([["张三", roster_phone(), unique_id_number()]], header=header))
    err = assert_file_error(r, "missing_column")
    assert missing in err["message"]
    assert missing in err["fields"]["file"]
    assert not Member.objects.exists()


def test_marked_required_headers_are_recognized(org, admin):
    header = ["姓名*", "手机号（必填）", " 身份证号 "]
    r = admin.upload(url(org), roster([["张三", roster_phone(), unique_id_number()]], header=header))
    assert r.status_code == 200 and r.json()["created"] == 1


def test_an_oversized_file_is_file_too_large(org, admin, settings):
    settings.ROSTER_MAX_BYTES = 1000
    content = xlsx_bytes([HEADER, *good_rows(20)])
    assert len(content) > 1000
    r = admin.upload(url(org), upload(content))
    assert_file_error(r, "file_too_large")
    assert not Member.objects.exists()


def test_no_file_at_all_is_422(org, admin):
    r = admin.upload(url(org), {})
    err = assert_file_error(r, "file_required")
    assert "file" in err["fields"]


# --- large files: background job -----------------------------------------------------------------


@pytest.fixture
def small_sync_limit(settings, tmp_path):
    settings.ROSTER_SYNC_MAX_ROWS = 10
    settings.MEDIA_ROOT = tmp_path
    settings.UPLOADS_DIR = tmp_path / "uploads"  # queued jobs keep their file: not in the repository's var/


def test_a_file_over_the_sync_limit_runs_as_a_job_and_reports_when_done(
    org, admin, small_sync_limit, django_capture_on_commit_callbacks
):
    rows = good_rows(30)
    rows[4][1] = "bad"
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.upload(url(org), roster(rows))
    assert r.status_code == 202, r.content
    body = r.json()
    assert set(body) == {"job_id", "status_url"}
    assert body["status_url"] == f"/api/v1/imports/{body['job_id']}"
    status = admin.get(body["status_url"])
    assert status.status_code == 200
    s = status.json()
    assert s["status"] == "done"
    assert s["total"] == 30 and s["progress"] == 30
    assert (s["created"], s["updated"], s["unchanged"]) == (29, 0, 0)
    assert [(e["row"], e["field"], e["code"]) for e in s["errors"]] == [(6, "手机号", "invalid_phone")]
    assert Member.objects.filter(org=org).count() == 29
    job = ImportJob.objects.get(pk=body["job_id"])
    assert job.stored_path and not Path(job.stored_path).exists()  # the stored upload is removed after the run


def test_a_large_dry_run_job_writes_nothing(org, admin, small_sync_limit, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.upload(url(org, dry_run=True), roster(good_rows(12)))
    assert r.status_code == 202
    s = admin.get(r.json()["status_url"]).json()
    assert s["status"] == "done" and s["dry_run"] is True and s["created"] == 12
    assert not Member.objects.exists()


def test_a_queued_job_reports_its_progress_before_it_runs(org, admin, small_sync_limit):
    # Without running the on-commit hook the job stays queued: status answers without counts.
    r = admin.upload(url(org), roster(good_rows(11)))
    assert r.status_code == 202
    s = admin.get(r.json()["status_url"]).json()
    assert s["status"] == "queued" and s["total"] == 11 and s["progress"] == 0
    assert "created" not in s


def test_a_large_file_missing_a_column_is_refused_at_once(org, admin, small_sync_limit):
    r = admin.upload(url(org), roster([r[:2] for r in good_rows(20)], header=["姓名", "手机号"]))
    assert_file_error(r, "missing_column")
    assert not ImportJob.objects.exists()


# --- error report --------------------------------------------------------------------------------


def test_the_error_report_opens_in_excel_and_lists_every_bad_row(org, admin):
    rows = [person_row("好"), person_row("坏", phone="1"), person_row("", id_number="123")]
    admin.upload(url(org), roster(rows))
    job = ImportJob.objects.get()
    assert job.status == "done"
    data = jobs.error_report(job)
    wb = load_workbook(io.BytesIO(data))
    ws = wb.worksheets[0]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0] == ["行号", "字段", "错误代码", "说明"]
    listed = {(r[0], r[1], r[2]) for r in values[1:]}
    assert listed == {(3, "手机号", "invalid_phone"), (4, "姓名", "required"), (4, "身份证号", "invalid_length")}
    assert all(r[3] for r in values[1:])
