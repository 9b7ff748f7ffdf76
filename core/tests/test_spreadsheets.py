"""core.spreadsheets: the reader refuses sheets that would explode in memory before reading them,
the writer never lets a member's text become a formula. Real .xlsx files, raw zip XML where
openpyxl would not write the hostile shape."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import tracemalloc
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from core import spreadsheets
from core.spreadsheets import SpreadsheetError, read_rows, write_xlsx, xlsx_bytes

_PACKAGE = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}


def raw_xlsx(sheet_data: str, *, dimension: str = "A1", extra: dict[str, bytes] | None = None) -> bytes:
    """An .xlsx whose only sheet's <sheetData> is exactly `sheet_data` (and its <dimension> may lie)."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>{sheet_data}</sheetData></worksheet>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in _PACKAGE.items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>姓名</t></is></c></row>'


def refused(content: bytes, code: str = "sheet_too_large") -> SpreadsheetError:
    with pytest.raises(SpreadsheetError) as e:
        read_rows(io.BytesIO(content), "roster.xlsx")
    assert e.value.code == code, e.value.message
    assert e.value.status == 422
    return e.value


# --- reading: dimensions first -----------------------------------------------------------------


def test_a_far_cell_is_refused_quickly_in_bounded_memory():
    # Calamine would build a 1,048,576 × 16,384 rectangle for this 2 KB file and abort the process.
    content = raw_xlsx(HEADER_ROW + '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')
    assert len(content) < 5000
    tracemalloc.start()
    started = time.monotonic()
    try:
        err = refused(content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 2
    assert peak < 2 * 1024 * 1024
    assert "1048576" in err.message and "200000" in err.message and "64" in err.message
    assert "file" in err.fields


def test_a_far_cell_without_its_r_attribute_is_still_found():
    # Cells may leave out `r`: their position follows the row's previous cell. A file cannot hide
    # the extent that way.
    many = "<c><v>1</v></c>" * 65
    refused(raw_xlsx(f'<row r="1">{many}</row>'))


def test_a_cell_reference_a_plain_reader_cannot_parse_is_refused():
    # `&#88;` is "X": an XML parser that unescapes attributes would see XFD1048576.
    err = refused(raw_xlsx(HEADER_ROW + '<row><c r="&#88;FD1048576"><v>1</v></c></row>'), "invalid_file_type")
    assert "file" in err.fields


def test_a_quoted_angle_bracket_does_not_hide_the_reference():
    refused(raw_xlsx(HEADER_ROW + '<row r="2"><c s=">" r="A300000"><v>1</v></c></row>'))


def test_a_far_row_is_refused_with_the_row_limit(settings):
    settings.SPREADSHEET_MAX_ROWS = 100
    err = refused(raw_xlsx(HEADER_ROW + '<row r="101"><c r="A101"><v>1</v></c></row>'))
    assert "101" in err.message and "100" in err.message


def test_a_rectangle_over_the_cell_limit_is_refused(settings):
    settings.SPREADSHEET_MAX_CELLS = 1000
    # Each cell alone is within the row and column limits; together they span 40 × 50 cells.
    err = refused(raw_xlsx(HEADER_ROW + '<row r="40"><c r="AX40"><v>1</v></c></row>'))
    assert "1000" in err.message


def test_a_sheet_in_a_part_with_an_unusual_name_is_checked_too():
    # Whichever part the workbook's relationships point at, every part of the package is scanned.
    hidden = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="900000"><c r="A900000"><v>1</v></c></row></sheetData></worksheet>'
    )
    refused(raw_xlsx(HEADER_ROW, extra={"xl/media/image1.png": hidden}))


def test_a_zip_bomb_is_refused_while_it_is_inflated(settings):
    settings.SPREADSHEET_MAX_UNZIPPED_BYTES = 1024 * 1024
    padding = b"<!--" + b" " * (3 * 1024 * 1024) + b"-->"
    content = raw_xlsx(HEADER_ROW, extra={"xl/padding.xml": padding})
    assert len(content) < 100_000
    err = refused(content)
    assert "MB" in err.message


def test_an_empty_styled_far_cell_does_not_count():
    # Excel writes formatted but empty cells; they hold nothing and calamine does not place them.
    rows = read_rows(io.BytesIO(raw_xlsx(HEADER_ROW + '<row r="1048576"><c r="XFD1048576" s="1"/></row>')), "a.xlsx")
    assert rows == [["姓名"]]


def test_a_lying_dimension_does_not_matter():
    content = raw_xlsx(HEADER_ROW + '<row r="2"><c r="B2" t="inlineStr"><is><t>x</t></is></c></row>', dimension="A1")
    assert read_rows(io.BytesIO(content), "a.xlsx") == [["姓名"], ["", "x"]]


def test_an_image_in_the_package_is_not_taken_for_a_sheet():
    # Binary parts are skipped, even when their bytes happen to contain "<c ".
    png = b"\x89PNG\r\n\x1a\n" + b"<c r=" + bytes(range(256)) * 50
    content = raw_xlsx(HEADER_ROW, extra={"xl/media/image1.png": png})
    assert read_rows(io.BytesIO(content), "a.xlsx") == [["姓名"]]


def test_a_real_roster_reads_as_before_with_row_numbers_from_a1():
    wb = Workbook()
    ws = wb.active
    ws["A1"], ws["B1"] = "姓名", "手机号"
    ws["A3"], ws["B3"], ws["D3"] = "张三", "13700000001", None
    ws["C4"] = dt.date(2020, 3, 1)
    ws["B5"] = -5
    buf = io.BytesIO()
    wb.save(buf)
    rows = read_rows(io.BytesIO(buf.getvalue()), "roster.xlsx")
    assert rows[0] == ["姓名", "手机号"]
    assert rows[1] == []
    assert rows[2] == ["张三", "13700000001"]
    assert rows[3][2] in (dt.date(2020, 3, 1), dt.datetime(2020, 3, 1))
    assert rows[4] == ["", -5]


def test_wide_real_sheet_within_the_limits_reads():
    wb = Workbook()
    wb.active.append([f"列{i}" for i in range(64)])
    buf = io.BytesIO()
    wb.save(buf)
    assert len(read_rows(io.BytesIO(buf.getvalue()), "a.xlsx")[0]) == 64
    wb.active.cell(row=2, column=65, value="x")
    buf = io.BytesIO()
    wb.save(buf)
    refused(buf.getvalue())


@pytest.mark.parametrize(
    ("content", "name", "code"),
    [
        (b"", "a.xlsx", "empty_file"),
        (b"name,phone\n", "a.csv", "invalid_file_type"),
        (b"name,phone\n", "a.xlsx", "invalid_file_type"),
        (b"PK\x03\x04 not really a zip", "a.xlsx", "invalid_file_type"),
    ],
)
def test_what_is_not_an_xlsx_is_refused_by_name(content, name, code):
    with pytest.raises(SpreadsheetError) as e:
        read_rows(io.BytesIO(content), name)
    assert e.value.code == code


def test_another_zip_format_is_refused_before_calamine_guesses_it():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
    refused(buf.getvalue(), "invalid_file_type")


def test_an_oversize_file_is_refused_by_its_size():
    content = raw_xlsx(HEADER_ROW)
    with pytest.raises(SpreadsheetError) as e:
        read_rows(io.BytesIO(content), "a.xlsx", max_bytes=len(content) - 1)
    assert e.value.code == "file_too_large"


# --- writing: formulas neutralised -------------------------------------------------------------

HOSTILE = ["=1+1", '=HYPERLINK("http://evil","点我")', "+86 137", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def _sheet_xml(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return z.read("xl/worksheets/sheet1.xml").decode()


def test_text_excel_would_evaluate_is_stored_as_text_with_the_quote_prefix():
    content = xlsx_bytes([["答案"], *[[v] for v in HOSTILE]], title="名单")
    xml = _sheet_xml(content)
    assert "<f>" not in xml and "<f " not in xml
    cells = re.findall(r'<c r="A(\d+)"([^>]*)>', xml)
    assert len(cells) == 1 + len(HOSTILE)
    for row, attrs in cells[1:]:
        assert 't="inlineStr"' in attrs, (row, attrs)
    ws = load_workbook(io.BytesIO(content)).active
    for row, value in enumerate(HOSTILE, start=2):
        cell = ws.cell(row=row, column=1)
        assert cell.data_type == "s"
        assert cell.value == value.replace("\r", "\n")  # XML normalises a bare CR; the text is otherwise exact
        assert cell.quotePrefix is True
    assert ws.cell(row=1, column=1).quotePrefix is False


def test_numbers_stay_numbers_and_plain_text_has_no_prefix():
    when = dt.datetime(2024, 3, 1, 8, 30, tzinfo=dt.UTC)
    content = xlsx_bytes([[-5, 3.5, "张三", "-", when, dt.date(2024, 3, 1), None, True]], title="x")
    ws = load_workbook(io.BytesIO(content)).active
    values = [c.value for c in ws[1]]
    assert values[0] == -5 and ws["A1"].data_type == "n"
    assert values[1] == 3.5
    assert values[2] == "张三" and ws["C1"].quotePrefix is False
    assert values[3] == "-" and ws["D1"].quotePrefix is True
    assert values[4] == dt.datetime(2024, 3, 1, 16, 30)  # Asia/Shanghai, without a zone: Excel has none
    assert values[5] == dt.datetime(2024, 3, 1)
    assert values[7] is True


def test_characters_xml_cannot_hold_are_dropped_instead_of_failing_the_export():
    content = xlsx_bytes([["a\x0bb\x00c"]], title="x")
    assert load_workbook(io.BytesIO(content)).active["A1"].value == "abc"


def test_several_sheets_titles_widths_and_frozen_header():
    content = write_xlsx(
        [
            spreadsheets.Sheet("结果/汇总[1]", [["题目", "人数"], ["=1", 2]], widths=(20, 8), freeze_header=True),
            spreadsheets.Sheet("明细", iter([["a"]])),
        ]
    )
    wb = load_workbook(io.BytesIO(content))
    assert wb.sheetnames == ["结果 汇总 1 ", "明细"]
    first = wb.worksheets[0]
    assert first.freeze_panes == "A2"
    assert first.column_dimensions["A"].width == 20
    assert first["A2"].data_type == "s" and first["A2"].value == "=1"


def test_what_the_writer_writes_the_reader_reads_back():
    rows = [["姓名", "金额"], ["=cmd|' /C calc'!A0", -12], ["李四", 7]]
    back = read_rows(io.BytesIO(xlsx_bytes(rows, title="x")), "x.xlsx")
    assert back == [["姓名", "金额"], ["=cmd|' /C calc'!A0", -12], ["李四", 7]]
