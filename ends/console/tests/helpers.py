"""Builders for console tests: roster workbooks in memory."""

from __future__ import annotations

import io

from openpyxl import Workbook

HEADER = ["姓名", "手机号", "身份证号", "性别", "入会日期", "工作单位"]


def roster_xlsx(rows: list[list], header: list[str] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(header or HEADER)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
