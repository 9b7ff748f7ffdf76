"""Roster import (会员名册导入): read an .xlsx, validate every row, store the good ones.

Guarantees: every bad row is reported by spreadsheet row number (header = 1), field and
reason; the ID-number blind index is unique, so a re-run creates nothing twice; a dry run
writes nothing but reports exactly what the real run would do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from core import bulk, idcard, phones, pii
from core.spreadsheets import SpreadsheetError, read_rows
from orgs.models import Org

from .models import Gender, Member, MembershipPeriod

CHUNK = 2000

# Header text → field. The first names are the documented ones; the rest are what unions also write.
HEADERS: dict[str, str] = {
    "姓名": "name",
    "会员姓名": "name",
    "手机号": "phone",
    "手机号码": "phone",
    "手机": "phone",
    "联系电话": "phone",
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "身份证": "id_number",
    "公民身份号码": "id_number",
    "性别": "gender",
    "入会日期": "joined_on",
    "入会时间": "joined_on",
    "工作单位": "workplace",
    "单位": "workplace",
}
REQUIRED = {"name": "姓名", "phone": "手机号", "id_number": "身份证号"}
LABELS = {**REQUIRED, "gender": "性别", "joined_on": "入会日期", "workplace": "工作单位"}


class ImportFileError(SpreadsheetError):
    """The file as a whole cannot be imported (empty, missing a column); the reader's own refusals
    (wrong type, too large) are its parent class, so one `except` catches both."""


@dataclasses.dataclass
class RowError:
    row: int
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Row:
    row: int
    name: str
    phone: str
    id_number: str
    gender: str
    joined_on: dt.date | None
    workplace: str
    id_hash: str = ""
    phone_hash: str = ""


@dataclasses.dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = dataclasses.field(default_factory=list)
    total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [e.as_dict() for e in sorted(self.errors, key=lambda e: (e.row, e.field))],
        }


# --- reading ---------------------------------------------------------------------------------


def read_sheet(fileobj: IO[bytes], filename: str = "") -> list[list[Any]]:
    """The roster's rows through core.spreadsheets.read_rows (dimensions checked before reading),
    within ROSTER_MAX_BYTES; every refusal is an ImportFileError, which import runners catch."""
    try:
        return read_rows(fileobj, filename, max_bytes=settings.ROSTER_MAX_BYTES)
    except ImportFileError:
        raise
    except SpreadsheetError as e:
        raise ImportFileError(e.code, e.message, fields=e.fields) from None


def map_header(header: list[Any]) -> dict[str, int]:
    """Field → column index; a missing required column is a 422 that names it."""
    columns: dict[str, int] = {}
    for i, cell in enumerate(header):
        key = re.sub(r"\s|\*|（必填）|\(必填\)", "", str(cell or ""))
        field = HEADERS.get(key)
        if field and field not in columns:
            columns[field] = i
    missing = [label for field, label in REQUIRED.items() if field not in columns]
    if missing:
        raise ImportFileError(
            "missing_column",
            _("表头缺少必填列：%(columns)s（第1行应为表头）") % {"columns": "、".join(missing)},
            fields={"file": _("缺少列：%(columns)s") % {"columns": "、".join(missing)}},
        )
    return columns


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


def parse_date(value: Any, today: dt.date) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        text = _text(value)
        if not text:
            return None
        for pattern in _DATE_PATTERNS:
            m = pattern.match(text)
            if m:
                try:
                    day = dt.date(int(m[1]), int(m[2]), int(m[3]))
                except ValueError:
                    raise ValueError(_("日期不存在")) from None
                break
        else:
            raise ValueError(_("日期格式应为 2024-03-01"))
    if day > today:
        raise ValueError(_("入会日期不能晚于今天"))
    if day.year < 1920:
        raise ValueError(_("入会日期太早"))
    return day


def _gender(value: Any) -> str:
    text = _text(value).upper()
    if text in ("", None):
        return ""
    if text in ("男", "M", "MALE"):
        return Gender.MALE
    if text in ("女", "F", "FEMALE"):
        return Gender.FEMALE
    raise ValueError(_("性别应填写“男”或“女”"))


def validate_rows(rows: list[list[Any]], today: dt.date | None = None) -> tuple[list[Row], list[RowError], int]:
    """Check every data row on its own and against earlier rows of the file. Returns (good, errors, total)."""
    if not rows:
        raise ImportFileError("empty_file", _("文件中没有内容"), fields={"file": _("文件为空")})
    columns = map_header(rows[0])
    today = today or timezone.localdate()
    good: list[Row] = []
    errors: list[RowError] = []
    seen_ids: dict[str, int] = {}
    seen_phones: dict[str, int] = {}
    total = 0
    width = max(columns.values()) + 1

    for number, raw in enumerate(rows[1:], start=2):
        cells = list(raw[:width]) + [None] * (width - len(raw))
        if all(c is None or c == "" for c in cells):
            continue  # blank lines are not rows
        total += 1
        row_errors: list[RowError] = []

        def get(field: str, cells: list[Any] = cells) -> Any:
            i = columns.get(field)
            return cells[i] if i is not None else None

        name = _text(get("name"))
        if not name:
            row_errors.append(RowError(number, "姓名", "required", _("姓名不能为空")))
        elif len(name) > 50:
            row_errors.append(RowError(number, "姓名", "too_long", _("姓名不能超过50个字")))

        phone = ""
        try:
            phone = phones.validate(get("phone"))
        except phones.PhoneError as e:
            row_errors.append(RowError(number, "手机号", e.code, e.message))

        id_number = ""
        raw_id = get("id_number")
        if isinstance(raw_id, float) and raw_id > 1e15:
            # Excel keeps only 15 significant digits of a number: the last digits are already lost.
            row_errors.append(
                RowError(
                    number,
                    "身份证号",
                    "id_number_not_text",
                    _("身份证号被Excel存成了数字，后几位已丢失，请把该列设为文本后重新填写"),
                )
            )
        else:
            try:
                id_number = idcard.validate(_text(raw_id), today=today)
            except idcard.IdNumberError as e:
                row_errors.append(RowError(number, "身份证号", e.code, e.message))

        gender = ""
        try:
            gender = _gender(get("gender"))
        except ValueError as e:
            row_errors.append(RowError(number, "性别", "invalid_gender", str(e)))
        if id_number:
            from_id = idcard.gender(id_number)
            if gender and gender != from_id:
                row_errors.append(RowError(number, "性别", "gender_mismatch", _("性别与身份证号不一致")))
            gender = from_id

        joined_on = None
        try:
            joined_on = parse_date(get("joined_on"), today)
        except ValueError as e:
            row_errors.append(RowError(number, "入会日期", "invalid_date", str(e)))

        workplace = _text(get("workplace"))
        if len(workplace) > 100:
            row_errors.append(RowError(number, "工作单位", "too_long", _("工作单位不能超过100个字")))

        if id_number:
            first = seen_ids.get(id_number)
            if first is not None:
                row_errors.append(
                    RowError(number, "身份证号", "duplicate_row", _("与第%(row)s行的身份证号重复") % {"row": first})
                )
            else:
                seen_ids[id_number] = number
        if phone and not row_errors:
            first = seen_phones.get(phone)
            if first is not None:
                row_errors.append(
                    RowError(number, "手机号", "duplicate_phone", _("与第%(row)s行的手机号重复") % {"row": first})
                )
            else:
                seen_phones[phone] = number

        if row_errors:
            errors.extend(row_errors)
        else:
            good.append(Row(number, name, phone, id_number, gender, joined_on, workplace))
    return good, errors, total


# --- storing ---------------------------------------------------------------------------------


def _store_chunk(org: Org, chunk: list[Row], result: ImportResult, *, dry_run: bool) -> None:
    for r in chunk:
        r.id_hash = pii.id_number_index(r.id_number)
        r.phone_hash = pii.phone_index(r.phone)
    existing = {
        m.id_number_hash: m
        for m in Member.objects.filter(id_number_hash__in=[r.id_hash for r in chunk]).only(
            "id", "org_id", "id_number_hash", "name", "phone_hash", "gender", "joined_on", "workplace", "user_id"
        )
    }
    users_by_phone = {
        u["phone_hash"]: u
        for u in User.objects.filter(phone_hash__in=[r.phone_hash for r in chunk]).values(
            "id", "phone_hash", "member__id"
        )
    }
    now = timezone.now()
    new_rows: list[Row] = []
    to_update: list[Member] = []
    for r in chunk:
        m = existing.get(r.id_hash)
        if m is not None:
            if m.org_id != org.pk:
                result.errors.append(
                    RowError(r.row, "身份证号", "member_of_other_org", _("此人已是其他工会的会员，请通过会员转接办理"))
                )
                continue
            changed = (
                m.name != r.name
                or m.phone_hash != r.phone_hash
                or m.gender != r.gender
                or m.joined_on != r.joined_on
                or m.workplace != r.workplace
            )
            if changed:
                m.name, m.gender, m.joined_on, m.workplace = r.name, r.gender, r.joined_on, r.workplace
                if m.phone_hash != r.phone_hash:
                    m.phone_enc, m.phone_hash = pii.encrypt(r.phone), r.phone_hash
                m.updated_at = now
                to_update.append(m)
                result.updated += 1
            else:
                result.unchanged += 1
            continue
        account = users_by_phone.get(r.phone_hash)
        if account is not None and account["member__id"] is not None:
            result.errors.append(RowError(r.row, "手机号", "phone_in_use", _("该手机号已被另一位会员使用")))
            continue
        new_rows.append(r)
        result.created += 1
    if dry_run:
        return

    unusable = make_password(None)  # one unusable marker: these accounts sign in by SMS code first
    at = bulk.db_datetime(now)
    phone_enc = {r.phone_hash: pii.encrypt(r.phone) for r in new_rows}
    bulk.insert(
        User,
        ["name", "phone_enc", "phone_hash", "password", "is_active", "date_joined"],
        [
            (r.name, phone_enc[r.phone_hash], r.phone_hash, unusable, True, at)
            for r in new_rows
            if r.phone_hash not in users_by_phone
        ],
    )
    user_ids = bulk.ids_by(User, "phone_hash", [r.phone_hash for r in new_rows if r.phone_hash not in users_by_phone])
    user_ids.update({h: u["id"] for h, u in users_by_phone.items()})
    bulk.insert(
        Member,
        [
            "user",
            "org",
            "name",
            "id_number_enc",
            "id_number_hash",
            "phone_enc",
            "phone_hash",
            "gender",
            "joined_on",
            "workplace",
            "created_at",
            "updated_at",
        ],
        [
            (
                user_ids[r.phone_hash],
                org.pk,
                r.name,
                pii.encrypt(r.id_number),
                r.id_hash,
                phone_enc[r.phone_hash],
                r.phone_hash,
                r.gender,
                bulk.db_date(r.joined_on),
                r.workplace,
                at,
                at,
            )
            for r in new_rows
        ],
    )
    member_ids = bulk.ids_by(Member, "id_number_hash", [r.id_hash for r in new_rows])
    bulk.insert(
        MembershipPeriod,
        ["member", "org", "started_at", "how"],
        [(member_ids[r.id_hash], org.pk, at, "roster") for r in new_rows],
    )
    if to_update:
        Member.objects.bulk_update(
            to_update,
            ["name", "gender", "joined_on", "workplace", "phone_enc", "phone_hash", "updated_at"],
            batch_size=500,
        )


def store_rows(
    org: Org,
    good: list[Row],
    *,
    dry_run: bool,
    result: ImportResult,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Store validated rows chunk by chunk; each chunk is one transaction, so a crash keeps what was done."""
    for start in range(0, len(good), CHUNK):
        chunk = good[start : start + CHUNK]
        for attempt in (1, 2):
            partial = ImportResult()
            try:
                with transaction.atomic():
                    _store_chunk(org, chunk, partial, dry_run=dry_run)
                break
            except IntegrityError:
                # Another import stored some of these people meanwhile; read again and redo the chunk.
                if attempt == 2:
                    raise
        result.created += partial.created
        result.updated += partial.updated
        result.unchanged += partial.unchanged
        result.errors.extend(partial.errors)
        if progress:
            progress(min(start + CHUNK, len(good)))
    return result


def import_rows(
    org: Org, rows: list[list[Any]], *, dry_run: bool, progress: Callable[[int, int], None] | None = None
) -> ImportResult:
    good, errors, total = validate_rows(rows)
    result = ImportResult(errors=list(errors), total=total)
    bad_rows = total - len(good)
    if progress:
        progress(bad_rows, total)

    def step(done: int) -> None:
        if progress:
            progress(bad_rows + done, total)

    return store_rows(org, good, dry_run=dry_run, result=result, progress=step)


def error_report_rows(errors: Iterable[dict[str, Any]]) -> Iterable[list[Any]]:
    yield [_("行号"), _("字段"), _("错误代码"), _("说明")]
    for e in errors:
        yield [e["row"], e["field"], e["code"], e["message"]]
