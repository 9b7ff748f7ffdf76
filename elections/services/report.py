"""The results report (选举结果报告) as a PDF: what a union files and posts after an election.

fpdf2 writes it (pure Python, embeds a subset of the font). Chinese needs a CJK font, found on
the machine — Debian's fonts-noto-cjk, which scripts/setup.sh installs (and scripts/test.sh),
is a TrueType collection (.ttc) that fpdf2 reads directly; we pick its Simplified Chinese face
by name. `UNIONHOME_CJK_FONT` names another font file (.ttf/.otf/.ttc) for other systems.
"""

from __future__ import annotations

import functools
import glob
import os
from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.fonts import FontFace

from core.errors import DomainError

from ..models import Election, ElectionStatus, MajorityBase, Quorum, RoundKind
from .elections import candidates_of

FONT_CANDIDATES = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
]


def _face_index(path: str) -> int:
    """In a collection, the Simplified Chinese face (Noto's "… CJK SC"), else the first."""
    if not path.lower().endswith(".ttc"):
        return 0
    from fontTools.ttLib import TTCollection

    collection = TTCollection(path, lazy=True)
    try:
        for i, face in enumerate(collection.fonts):
            name = str(face["name"].getDebugName(1) or "")
            if name.endswith(" SC") and "Mono" not in name:
                return i
    finally:
        collection.close()
    return 0


@functools.lru_cache(maxsize=1)
def cjk_font() -> tuple[str, int, str | None] | None:
    """(regular file, face index, bold file or None) of a font with Chinese glyphs, or None."""
    configured = os.environ.get("UNIONHOME_CJK_FONT", "").strip()
    paths = [configured] if configured else []
    paths += FONT_CANDIDATES + sorted(glob.glob("/usr/share/fonts/**/*CJK*Regular*.tt[cf]", recursive=True))
    for path in paths:
        if path and Path(path).is_file():
            bold = path.replace("-Regular", "-Bold")
            return path, _face_index(path), bold if bold != path and Path(bold).is_file() else None
    return None


class _Report(FPDF):
    footer_text = ""

    def footer(self):
        self.set_y(-14)
        self.set_font("cjk", size=8)
        self.set_text_color(120, 120, 120)
        self.cell(0, 6, f"{self.footer_text}    {self.page_no()}/{{nb}}", align="C")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _rule_texts(election: Election) -> tuple[str, str]:
    quorum = {
        Quorum.TWO_THIRDS: _("参加投票人数须超过应到会有选举权人数的三分之二"),
        Quorum.HALF: _("参加投票人数须超过应到会有选举权人数的半数"),
        Quorum.NONE: _("不设参加投票人数要求"),
    }[election.quorum]
    if election.kind == RoundKind.RUNOFF:
        majority = _("得票相等者再次投票：以赞成票多者当选")
    elif election.majority_of == MajorityBase.VOTED:
        majority = _("赞成票须超过参加投票人数的半数")
    else:
        majority = _("赞成票须超过应到会有选举权人数的半数")
    return quorum, majority


def results_pdf(election: Election) -> bytes:
    """The report of a closed election. DomainError when no CJK font is installed."""
    if election.status != ElectionStatus.CLOSED or not election.result:
        raise DomainError("not_closed", _("选举尚未结束，结果报告在投票结束后生成"))
    font = cjk_font()
    if font is None:
        raise DomainError(
            "font_missing",
            _("服务器缺少中文字体，无法生成PDF（请安装 fonts-noto-cjk，或设置 UNIONHOME_CJK_FONT）"),
            status=503,
        )
    path, index, bold = font
    result = election.result
    names = {c.pk: c.name for c in candidates_of(election)}
    now = timezone.localtime()

    pdf = _Report(format="A4")
    pdf.set_title(f"{election.title} · {_('选举结果报告')}")
    pdf.set_author(election.org.name)
    pdf.set_creator("UnionHome")
    pdf.add_font("cjk", "", path, collection_font_number=index)
    pdf.add_font("cjk", "B", bold or path, collection_font_number=_face_index(bold) if bold else index)
    pdf.footer_text = _("%(org)s · %(title)s · 生成于 %(date)s") % {
        "org": election.org.name,
        "title": election.title,
        "date": now.strftime("%Y-%m-%d %H:%M"),
    }
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()

    pdf.set_font("cjk", "B", 17)
    pdf.multi_cell(0, 9, election.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 11)
    pdf.set_text_color(90, 90, 90)
    subtitle = _("%(org)s · 第%(round)s轮（%(kind)s）· 选举结果报告") % {
        "org": election.org.name,
        "round": election.round,
        "kind": election.get_kind_display(),
    }
    pdf.multi_cell(0, 7, subtitle, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(4)

    quorum_rule, majority_rule = _rule_texts(election)
    closed = timezone.localtime(election.closed_at).strftime("%Y-%m-%d %H:%M")
    if election.closed_early:
        closed += _("（提前结束）")
    rows = [
        (_("应选名额"), str(election.seats)),
        (_("应到会有选举权人数"), str(result["eligible"])),
        (
            _("实际参加投票人数"),
            _("%(n)s（参选率 %(pct)s）") % {"n": result["voted"], "pct": _pct(result["voted"], result["eligible"])},
        ),
        (_("有效票"), str(result["valid"])),
        (_("参选人数要求"), f"{quorum_rule} · {_('已达到') if result['quorum_met'] else _('未达到')}"),
        (_("当选规则"), majority_rule),
        (
            _("投票时间"),
            f"{timezone.localtime(election.opens_at):%Y-%m-%d %H:%M} — {timezone.localtime(election.closes_at):%Y-%m-%d %H:%M}",
        ),
        (_("计票时间"), closed),
    ]
    pdf.set_font("cjk", "", 10.5)
    with pdf.table(col_widths=(45, 129), first_row_as_headings=False, line_height=7.5) as table:
        for label, value in rows:
            row = table.row()
            row.cell(label, style=FontFace(emphasis="BOLD", fill_color=(245, 245, 245)))
            row.cell(value)
    pdf.ln(6)

    pdf.set_font("cjk", "B", 12)
    pdf.cell(0, 8, _("各候选人得票"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 10.5)
    runoff = set(result.get("runoff_candidate_ids") or [])
    headings = (_("序号"), _("候选人"), _("赞成"), _("反对"), _("弃权"), _("结果"))
    with pdf.table(
        col_widths=(14, 62, 22, 22, 22, 32),
        text_align=("CENTER", "LEFT", "RIGHT", "RIGHT", "RIGHT", "CENTER"),
        line_height=7.5,
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
    ) as table:
        table.row(headings)
        for n, c in enumerate(result["candidates"], start=1):
            if c["elected"]:
                verdict = _("当选")
            elif c["id"] in runoff:
                verdict = _("需再次投票")
            else:
                verdict = "—"
            table.row([str(n), names.get(c["id"], "?"), str(c["for"]), str(c["against"]), str(c["abstain"]), verdict])
    pdf.ln(5)

    elected = [names.get(c["id"], "?") for c in result["candidates"] if c["elected"]]
    pdf.set_font("cjk", "B", 12)
    pdf.cell(0, 8, _("选举结果"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 11)
    lines = []
    if not result["quorum_met"]:
        lines.append(_("参加投票人数未达到要求，选举无效，无人当选。"))
    else:
        lines.append(
            _("当选（%(n)s人）：%(names)s") % {"n": len(elected), "names": "、".join(elected) if elected else _("无")}
        )
        if runoff:
            lines.append(
                _("%(names)s 得票相等，需就 %(seats)s 个名额再次投票。")
                % {
                    "names": "、".join(names.get(c, "?") for c in result["runoff_candidate_ids"]),
                    "seats": result["open_seats"],
                }
            )
        elif result.get("open_seats"):
            lines.append(_("尚有 %(seats)s 个名额空缺，可另行选举。") % {"seats": result["open_seats"]})
    for line in lines:
        pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_font("cjk", "B", 12)
    pdf.cell(0, 8, _("核验信息"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 9.5)
    verify = [
        _("无记名投票：选票与投票人分开保存，选票不含投票人信息。"),
        _("选票哈希链链头（%(algo)s）：") % {"algo": result.get("algorithm", "")},
        "    " + election.chain_head,
        _("回执清单摘要（共 %(n)s 张回执）：") % {"n": result.get("receipts", result["voted"])},
        "    " + result.get("receipts_digest", ""),
        _("公开记录与重新计票：/elections/%(id)s/ · 命令 python manage.py recount_election %(id)s")
        % {"id": election.pk},
    ]
    for line in verify:
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("cjk", "", 11)
    pdf.cell(
        0, 8, _("监票人：______________    计票人：______________    日期：%(d)s") % {"d": now.strftime("%Y-%m-%d")}
    )
    return bytes(pdf.output())
