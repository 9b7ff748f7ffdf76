"""Builders the test modules share: real .xlsx rosters made with openpyxl."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from conftest import unique_id_number

HEADER = ["姓名", "手机号", "身份证号", "性别", "入会日期", "工作单位"]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_phones = itertools.count(1)


def roster_phone() -> str:
    return f"137{next(_phones):08d}"


def xlsx_bytes(rows: Iterable[Sequence[Any]], *, text_columns: Sequence[int] = ()) -> bytes:
    """An .xlsx whose first sheet holds `rows` (the first one is the header).

    Cells in `text_columns` (0-based) are written as text, the way a careful cadre formats an ID column.
    """
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    for col in text_columns:
        for cells in ws.iter_cols(min_col=col + 1, max_col=col + 1):
            for cell in cells:
                cell.number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def person_row(name: str = "赵六", *, phone: str | None = None, id_number: str | None = None, **extra) -> list:
    """One good data row under HEADER."""
    idn = unique_id_number() if id_number is None else id_number
    derived = ("男" if int(idn[16]) % 2 else "女") if len(idn) == 18 and idn[16].isdigit() else ""
    gender = extra.get("gender", derived)
    return [
        name,
        roster_phone() if phone is None else phone,
        idn,
        gender,
        extra.get("joined_on", "2020-03-01"),
        extra.get("workplace", "一车间"),
    ]


def good_rows(n: int, name: str = "会员") -> list[list]:
    return [person_row(f"{name}{i}") for i in range(n)]


def upload(content: bytes, name: str = "roster.xlsx") -> dict:
    return {"file": SimpleUploadedFile(name, content, content_type=XLSX_TYPE)}


def roster(rows: Iterable[Sequence[Any]], header: Sequence[str] = HEADER, name: str = "roster.xlsx") -> dict:
    return upload(xlsx_bytes([list(header), *rows]), name)
