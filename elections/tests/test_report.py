"""The results report: a real PDF with the Chinese text a union files after an election."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from core.errors import DomainError
from elections.services import elections as svc
from elections.services import report

from .builders import election, roll, vote
from .pdftext import extract_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed(district):
    voters = roll(district.union_a1, 5)
    e = election(
        district.admin_a1,
        district.union_a1,
        title="甲一公司工会第三届委员会委员选举",
        seats=2,
        names=("欧阳明月", "司马青云", "诸葛长风"),
    )
    for i, m in enumerate(voters[:4]):
        vote(m, e, ["for", "for" if i < 3 else "against", "against"])
    svc.close_election(district.admin_a1, e.pk)
    e.refresh_from_db()
    return e


def test_the_report_is_a_pdf_with_the_result_in_chinese(closed):
    if report.cjk_font() is None:
        pytest.skip("no CJK font on this machine (scripts/setup.sh installs fonts-noto-cjk)")
    pdf = report.results_pdf(closed)
    keep = Path(__file__).resolve().parents[2] / "var" / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    (keep / "election-report.pdf").write_bytes(pdf)  # for people to look at, like the screenshots
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/FontFile2" in pdf or b"/FontFile3" in pdf  # the CJK font is embedded (a subset)
    text = extract_text(pdf)
    for expected in (
        "甲一公司工会第三届委员会委员选举",
        "甲一公司工会",
        "选举结果报告",
        "应选名额",
        "应到会有选举权人数",
        "实际参加投票人数",
        "4（参选率 80.0%）",
        "有效票",
        "已达到",
        "欧阳明月",
        "司马青云",
        "诸葛长风",
        "当选",
    ):
        assert expected in text, (expected, text[:2000])
    assert closed.chain_head in text.replace("\n", "")  # the 64 hex digits may wrap
    # The tally row of each candidate: for, against, abstain in that order.
    lines = text.split("\n")
    i = lines.index("欧阳明月")
    assert lines[i + 1 : i + 5] == ["4", "0", "0", "当选"]
    i = lines.index("诸葛长风")
    assert lines[i + 1 : i + 5] == ["0", "4", "0", "—"]
    if shutil.which("pdftotext"):
        out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
        assert "欧阳明月" in out and "选举结果报告" in out and closed.chain_head in out.replace("\n", "")


def test_a_failed_election_says_so(district):
    if report.cjk_font() is None:
        pytest.skip("no CJK font on this machine")
    voters = roll(district.union_a1, 6)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    vote(voters[0], e, ["for"])
    svc.close_election(district.admin_a1, e.pk)
    e.refresh_from_db()
    text = extract_text(report.results_pdf(e))
    assert "未达到" in text and "选举无效" in text


def test_no_report_before_close(district):
    roll(district.union_a1, 2)
    e = election(district.admin_a1, district.union_a1)
    with pytest.raises(DomainError) as exc:
        report.results_pdf(e)
    assert exc.value.code == "not_closed"


def test_the_console_serves_the_report(closed, client, district):
    if report.cjk_font() is None:
        pytest.skip("no CJK font on this machine")
    client.force_login(district.admin_a1)
    resp = client.get(f"/console/elections/{closed.pk}/report.pdf")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF")
    client.force_login(district.admin_b)
    assert client.get(f"/console/elections/{closed.pk}/report.pdf").status_code == 404
