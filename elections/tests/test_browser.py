"""End to end in headless Chromium: a voter votes on the member end (phone size) and sees the receipt;
a cadre closes the election in the console (desktop) and sees the elected; the public record and the
recount on the portal. Screenshots are kept in var/screenshots/ for people to look at."""

from __future__ import annotations

import pytest

from conftest import DESKTOP, PASSWORD, PHONE, console_login, screenshot
from elections.models import ElectionVoter, PooledBallot

from .builders import election, ids, roll, vote

LONG_TITLE = "成都市锦城区东山街道某某汽车零部件制造有限公司工会第三届委员会委员及经费审查委员会委员选举"


def _member_login(page, member) -> None:
    page.goto("/m/login/?tab=password")
    page.fill("#phone", member.user.phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_selector("#home-elections")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_voter_votes_and_cadre_closes_and_sees_the_elected(page_factory, district):
    voters = roll(district.union_a1, 5)  # 5: the fewest ballots whose record lists them one by one
    e = election(
        district.admin_a1,
        district.union_a1,
        title=LONG_TITLE,
        seats=2,
        names=("欧阳明月", "司马青云", "诸葛长风", "张三"),
    )
    a, b, c, d = ids(e)

    page = page_factory(PHONE)
    _member_login(page, voters[0])
    page.click("#home-elections")
    page.wait_for_selector(f"#election-{e.pk}")
    screenshot(page, "member-elections-list-phone")
    page.click(f"#election-{e.pk}")
    page.wait_for_selector("#ballot-form")
    # Three "for" with two seats: the page warns and holds the button back.
    for cid in (a, b, c):
        page.click(f"#cand-{cid} .el-for")
    assert "最多投 2 人" in page.inner_text("#for-count")
    assert page.is_disabled("#vote-btn")
    screenshot(page, "member-ballot-too-many-phone")
    page.click(f"#cand-{c} .el-against")
    page.click(f"#cand-{d} .el-against")
    assert "2" in page.inner_text("#for-n") and not page.is_disabled("#vote-btn")
    page.once("dialog", lambda dlg: dlg.accept())
    page.click("#vote-btn")
    page.wait_for_selector("#receipt-code")
    receipt = page.inner_text("#receipt-code").strip()
    assert receipt == ElectionVoter.objects.get(election=e, user=voters[0].user).receipt
    assert "投票成功" in page.inner_text("#my-receipt")
    box = page.locator("#receipt-code").bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "member-election-receipt-phone")
    ballot = PooledBallot.objects.get(election=e)  # counted once flushed
    assert ballot.marks == {str(a): "for", str(b): "for", str(c): "against", str(d): "against"}

    for m in voters[1:]:
        vote(m, e, ["for", "against", "for", "abstain"])

    console = page_factory(DESKTOP)
    console_login(console, district.admin_a1)
    console.click("#nav-elections")
    console.wait_for_selector("#election-table")
    screenshot(console, "console-elections-list")
    console.click(f"#election-table a[href='/console/elections/{e.pk}/']")
    console.wait_for_selector("#close-election")
    assert console.inner_text("#turnout-voted") == "5"
    assert console.locator("#result-table").count() == 0  # no partial tally while voting
    screenshot(console, "console-election-open")
    console.once("dialog", lambda dlg: dlg.accept())
    console.click("#close-election")
    console.wait_for_selector("#elected-names")
    assert console.inner_text("#elected-names") == "欧阳明月、诸葛长风"
    rows = console.locator("#result-table tbody tr.el-row-elected")
    assert rows.count() == 2
    screenshot(console, "console-election-results")

    with console.expect_download() as dl:
        console.click("#report-link")
    assert dl.value.suggested_filename == f"election-{e.pk}-results.pdf"

    public = page_factory(DESKTOP)
    public.goto(f"/elections/{e.pk}/?receipt={receipt}")
    public.wait_for_selector("#receipt-found")
    assert receipt in public.inner_text("#receipts")
    assert public.locator("#ballot-table tbody tr").count() == 5
    screenshot(public, "portal-election-record")
    public.click("#recount-link")
    public.wait_for_selector("#recount-verdict")
    assert "一致" in public.inner_text("#recount-verdict") and "不一致" not in public.inner_text("#recount-verdict")
    screenshot(public, "portal-election-recount")

    page.reload()
    page.wait_for_selector("#results")
    assert "当选" in page.inner_text("#results")
    screenshot(page, "member-election-results-phone")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_small_elections_public_record_shows_the_totals_only(page_factory, district):
    from elections.services import elections as svc

    voters = roll(district.union_a1, 2)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("欧阳明月", "司马青云"))
    vote(voters[0], e, ["for", "against"])
    vote(voters[1], e, ["against", "for"])
    svc.close_election(district.admin_a1, e.pk)
    public = page_factory(DESKTOP)
    public.goto(f"/elections/{e.pk}/")
    public.wait_for_selector("#withheld")
    assert public.locator("#ballot-table").count() == 0 and public.locator("#receipts").count() == 0
    assert "少于 5 张" in public.inner_text("#withheld")
    screenshot(public, "portal-election-totals-only")
    public.click("#recount-link")
    public.wait_for_selector("#recount-verdict")
    assert "一致" in public.inner_text("#recount-verdict")
    screenshot(public, "portal-election-recount-totals-only")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cadre_creates_an_election_with_a_delegate_roll(page_factory, district):
    members = roll(district.union_a1, 3, "代表")
    page = page_factory(DESKTOP)
    console_login(page, district.admin_a1)
    page.goto(f"/console/elections/new/?org={district.union_a1.pk}")
    page.fill("#el-title", "第三届会员代表大会选举工会委员会")
    page.fill("#el-seats", "3")
    page.fill("#el-candidates", "欧阳明月\n司马青云")
    page.check("#roll-delegates")
    page.fill("#el-member-q", "代表")
    page.wait_for_selector("#member-results [data-add-id]")
    for btn in page.locator("#member-results [data-add-id]").all()[:2]:
        btn.click()
    assert page.inner_text("#roll-count") == "2"
    page.fill("#el-closes", "2099-01-01T18:00")
    page.click("#create-election")
    page.wait_for_selector(".field-error")
    assert "不能少于应选名额" in page.inner_text("#election-form")
    assert page.input_value("#el-title") == "第三届会员代表大会选举工会委员会"  # kept
    screenshot(page, "console-election-new-error")
    page.fill("#el-candidates", "欧阳明月\n司马青云\n诸葛长风\n张三")
    page.click("#create-election")
    page.wait_for_selector("#election-title")
    assert "第三届会员代表大会选举工会委员会" in page.inner_text("#election-title")
    assert "会员代表名单" in page.inner_text(".stats")
    ids_on_roll = {m.user_id for m in members[:2]}
    assert set(ElectionVoter.objects.values_list("user_id", flat=True)) == ids_on_roll
