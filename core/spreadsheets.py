"""The one safe way in and out of Excel (.xlsx).

Reading: `read_rows(fileobj, filename)` checks the upload (type, size) and the size of every
worksheet *before* python-calamine sees the file. Calamine turns a sheet into one dense rectangle
from A1 to its farthest cell, so a 2 KB file with a value at XFD1048576 asks for 17 billion cells
and aborts the whole process. The check streams every part of the package (no tree, 64 KB at a time)
and refuses with 422 `sheet_too_large` at the first cell beyond the limits:

- `MAX_ROWS` rows and `MAX_COLUMNS` columns (a roster of a whole district fits);
- `MAX_CELLS` cells in the A1-to-farthest-cell rectangle (what calamine allocates, ~32 bytes each);
- `MAX_UNZIPPED_BYTES` of XML in all (a zip bomb is refused while it is being inflated).

Each can be lowered or raised by a setting of the same name prefixed `SPREADSHEET_`.

Writing: `write_xlsx(sheets)` / `xlsx_bytes(rows, title=…)` write every export. A string that
Excel would run (`=`, `+`, `-`, `@`, tab, carriage return first: formula or DDE injection by
whatever a member typed) keeps its exact text but is stored as a string cell with Excel's
quote-prefix flag, so it is shown, never evaluated, and stays text when a cadre edits the
cell. Numbers stay numbers (a negative amount is still a number).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import io
import math
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from typing import IO, Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from python_calamine import CalamineError, CalamineWorkbook

from core.errors import Invalid

MAX_ROWS = 200_000
MAX_COLUMNS = 64
MAX_CELLS = 4_000_000
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_BYTES = 40 * 1024 * 1024

# Characters that make Excel (or a spreadsheet importing a CSV of it) treat a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class SpreadsheetError(Invalid):
    """The file as a whole cannot be read: wrong type, empty, too big, a sheet too large."""


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, f"SPREADSHEET_{name}", default))


# --- reading -----------------------------------------------------------------------------------


def read_rows(fileobj: IO[bytes], filename: str = "", *, max_bytes: int | None = None) -> list[list[Any]]:
    """The first sheet's rows from A1 (row numbers as Excel shows them, minus one), each row
    without its trailing blank cells. Raises SpreadsheetError (422) before reading anything that
    is not a bounded .xlsx."""
    if filename and not filename.lower().endswith(".xlsx"):
        raise SpreadsheetError(
            "invalid_file_type", _("请上传 .xlsx 格式的Excel文件"), fields={"file": _("只支持 .xlsx 文件")}
        )
    max_bytes = max_bytes if max_bytes is not None else getattr(settings, "ROSTER_MAX_BYTES", DEFAULT_MAX_BYTES)
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    if size > max_bytes:
        mb = max(1, max_bytes // (1024 * 1024))
        raise SpreadsheetError(
            "file_too_large",
            _("文件超过%(mb)sMB上限，请拆分后分批导入") % {"mb": mb},
            fields={"file": _("不能超过%(mb)sMB") % {"mb": mb}},
        )
    head = fileobj.read(4)
    fileobj.seek(0)
    if not head:
        raise SpreadsheetError("empty_file", _("上传的文件是空的"), fields={"file": _("文件为空")})
    if head != b"PK\x03\x04":
        raise _not_xlsx()
    check_dimensions(fileobj)
    fileobj.seek(0)
    try:
        book = CalamineWorkbook.from_filelike(fileobj)
        if not book.sheet_names:
            raise SpreadsheetError("empty_file", _("文件中没有工作表"), fields={"file": _("没有工作表")})
        rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except (CalamineError, ValueError, OSError) as e:
        if isinstance(e, SpreadsheetError):
            raise
        raise _unreadable() from None
    for row in rows:
        while row and (row[-1] is None or row[-1] == ""):
            row.pop()
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _not_xlsx() -> SpreadsheetError:
    return SpreadsheetError(
        "invalid_file_type",
        _("文件不是有效的 .xlsx 文件（可在Excel中另存为 .xlsx）"),
        fields={"file": _("不是有效的 .xlsx 文件")},
    )


def _unreadable() -> SpreadsheetError:
    return SpreadsheetError(
        "invalid_file_type", _("无法读取该Excel文件，文件可能已损坏"), fields={"file": _("无法读取")}
    )


def _too_large(detail: str) -> SpreadsheetError:
    limits = {"rows": _limit("MAX_ROWS", MAX_ROWS), "columns": _limit("MAX_COLUMNS", MAX_COLUMNS)}
    return SpreadsheetError(
        "sheet_too_large",
        _("表格过大：%(detail)s。每个工作表最多%(rows)s行、%(columns)s列，请删除多余的内容或拆分后再上传")
        % {"detail": detail, **limits},
        fields={"file": _("最多%(rows)s行、%(columns)s列") % limits},
    )


# Cell tags as Excel, WPS, openpyxl and xlsxwriter write them: unprefixed, `r` first, double quotes.
_FAST_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"(?: (?!r=)[A-Za-z]+="[^"<>]*")*(/?)>')
# Any cell or row start tag, however written. A chunk where some `<c` or `:c` is not a fast match
# (a `<cols>`, a prefix, single quotes, a quoted `>`, no `r`…) is read tag by tag with the full
# attribute grammar instead: slower, never wrong.
_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/?)>")
_ANY_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:row|c)[\s/>]")
_R_ATTR = re.compile(rb"(?<![^\s])r\s*=\s*[\"']([^\"']*)[\"']")
_REF = re.compile(rb"\$?([A-Za-z]+)\$?([0-9]+)")
_MAX_TAG = 1 << 20


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


class _SheetScan:
    """The extent of the cells that hold a value in one package part, fed chunk by chunk."""

    def __init__(self, max_rows: int, max_cols: int, max_cells: int) -> None:
        self.max_rows, self.max_cols, self.max_cells = max_rows, max_cols, max_cells
        self.row = self.col = self.far_row = self.far_col = 0
        self.tail = b""

    def feed(self, chunk: bytes, *, last: bool = False) -> None:
        buf = self.tail + chunk
        cut = buf.rfind(b"<")
        if not last and cut >= 0 and buf.find(b">", cut) < 0:
            buf, self.tail = buf[:cut], buf[cut:]
            if len(self.tail) > _MAX_TAG:
                raise _unreadable()  # no tag of a real spreadsheet is a megabyte long
        else:
            self.tail = b""
        if b"<" not in buf:
            return
        cells = _FAST_CELL.findall(buf)
        if len(cells) == buf.count(b"<c") + buf.count(b":c"):
            self._fast(cells)
        else:
            self._slow(buf)

    def _fast(self, cells: list[tuple[bytes, bytes, bytes]]) -> None:
        # Every cell here names its position: no row bookkeeping, and most of the work stays in C.
        if not cells:
            return
        letters, digits, _closed = cells[-1]
        self.row, self.col = int(digits), _column_number(letters)
        valued = [(letters, digits) for letters, digits, closed in cells if not closed]
        if valued:
            all_letters, all_digits = zip(*valued, strict=True)
            self._reach(max(map(int, all_digits)), max(map(_column_number, set(all_letters))))

    def _slow(self, buf: bytes) -> None:
        tags = list(_TAG.finditer(buf))
        if len(tags) != len(_ANY_TAG.findall(buf)):
            raise _unreadable()  # a cell or row tag that is not well-formed XML
        for m in tags:
            refs = _R_ATTR.findall(m[2])
            if len(refs) > 1:
                raise _unreadable()
            if m[1] == b"row":
                self.row = int(refs[0]) if refs and refs[0].isdigit() else self.row + 1
                self.col = 0
                continue
            if refs:
                ref = _REF.fullmatch(refs[0])
                if ref is None:
                    raise _unreadable()
                self.row, self.col = int(ref[2]), _column_number(ref[1])
            else:
                self.row, self.col = max(self.row, 1), self.col + 1
            if not m[3]:
                self._reach(self.row, self.col)

    def _reach(self, row: int, col: int) -> None:
        if row > self.max_rows:
            raise _too_large(_("第%(row)s行有内容") % {"row": row})
        if col > self.max_cols:
            raise _too_large(_("第%(col)s列有内容") % {"col": col})
        self.far_row, self.far_col = max(self.far_row, row), max(self.far_col, col)
        if self.far_row * self.far_col > self.max_cells:
            raise _too_large(_("内容范围超过%(cells)s个单元格") % {"cells": self.max_cells})


def _is_xml(head: bytes) -> bool:
    """Whether a part is XML this scan can read; UTF-16 XML (which Excel never writes) is refused
    rather than skipped, since a reader might still decode it."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[:64].lstrip(b"\x00 \t\r\n").startswith((b"<\x00", b"\x00<")):
        raise _unreadable()
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def check_dimensions(fileobj: IO[bytes]) -> None:
    """Refuse (SpreadsheetError) an .xlsx whose cells reach beyond the limits, in memory bounded
    by one 64 KB chunk whatever the file claims.

    Every part of the package is scanned, not only the ones a reader should pick, and only cells
    holding a value count (calamine skips empty styled cells too). A cell's position comes from
    its `r` or, where absent, follows the previous cell, so leaving `r` out hides nothing; an `r`
    a plain reading cannot make sense of is refused."""
    max_rows, max_cols = _limit("MAX_ROWS", MAX_ROWS), _limit("MAX_COLUMNS", MAX_COLUMNS)
    max_cells, max_unzipped = _limit("MAX_CELLS", MAX_CELLS), _limit("MAX_UNZIPPED_BYTES", MAX_UNZIPPED_BYTES)
    try:
        archive = zipfile.ZipFile(fileobj)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _not_xlsx() from None
    if "xl/workbook.xml" not in archive.namelist():
        raise _not_xlsx()  # .xlsb, .ods and other zips, whose type calamine would guess
    inflated = 0
    for info in infos:
        if info.is_dir():
            continue
        scan = _SheetScan(max_rows, max_cols, max_cells)
        try:
            with archive.open(info) as part:
                first = True
                while chunk := part.read(1 << 16):
                    inflated += len(chunk)
                    if inflated > max_unzipped:
                        raise _too_large(_("解压后超过%(mb)sMB") % {"mb": max_unzipped // (1024 * 1024)})
                    if first and not _is_xml(chunk):
                        break  # an image or a printer setting: no reader takes it for a sheet
                    first = False
                    scan.feed(chunk)
            scan.feed(b"", last=True)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError):
            raise _unreadable() from None


# --- writing -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Sheet:
    """One worksheet of an export: its title, its rows (the first is the header when
    `freeze_header`), and optional column widths in characters."""

    title: str
    rows: Iterable[Sequence[Any]]
    widths: Sequence[float] = ()
    freeze_header: bool = False


def _plain(value: Any) -> Any:
    """A value openpyxl can write as data: numbers, dates and booleans as they are, anything
    else as text with the characters XML cannot hold removed."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float | decimal.Decimal):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        # Excel has no time zones: a cadre reads the local time.
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return value
    return ILLEGAL_CHARACTERS_RE.sub("", str(value))


def safe_cell(sheet: Any, value: Any) -> WriteOnlyCell:
    """A cell for `sheet` holding `value`, where text that Excel would evaluate is forced to a
    string cell with the quote prefix (the value itself is unchanged)."""
    value = _plain(value)
    cell = WriteOnlyCell(sheet, value)
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def write_xlsx(sheets: Iterable[Sheet]) -> bytes:
    """An .xlsx of these sheets, written row by row (memory does not grow with the rows)."""
    book = Workbook(write_only=True)
    for spec in sheets:
        ws = book.create_sheet(re.sub(r"[\[\]:*?/\\]", " ", spec.title)[:31] or "Sheet1")
        for i, width in enumerate(spec.widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = width
        if spec.freeze_header:
            ws.freeze_panes = "A2"
        for row in spec.rows:
            ws.append([safe_cell(ws, v) for v in row])
    if not book.worksheets:
        book.create_sheet("Sheet1")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def xlsx_bytes(
    rows: Iterable[Sequence[Any]], *, title: str, widths: Sequence[float] = (), freeze_header: bool = False
) -> bytes:
    """A one-sheet .xlsx: what most exports are."""
    return write_xlsx([Sheet(title, rows, widths, freeze_header)])
