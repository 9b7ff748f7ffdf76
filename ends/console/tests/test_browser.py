"""End to end at desktop size: a cadre signs in, imports a roster, and sees only masked PII."""

from __future__ import annotations

import re

import pytest

from conftest import DESKTOP, console_login, screenshot, unique_id_number

from .helpers import roster_xlsx


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cadre_imports_a_roster_and_sees_masked_members(district, page_factory, tmp_path):
    ids = [unique_id_number(), unique_id_number()]
    path = tmp_path / "roster.xlsx"
    path.write_bytes(
        roster_xlsx(
            [
                ["欧阳一一", "13811112222", ids[0], "", "2021-05-01", "第一车间"],
                ["司马二二", "13933334444", ids[1], "", "", "财务部"],
                ["", "12345", unique_id_number(), "", "", ""],
            ]
        )
    )
    page = page_factory(DESKTOP)
    console_login(page, district.admin_a)
    assert page.locator(".who-name").inner_text() == "甲管理员"

    page.goto(f"/console/imports/?org={district.union_a1.pk}")
    page.set_input_files("#id_file", str(path))
    page.click("text=上传并导入")
    page.wait_for_selector("#import-result .counts")
    assert page.locator('[data-count="created"]').inner_text() == "2"
    assert page.locator('[data-count="errors"]').inner_text() == "2"
    errors = page.locator("#row-errors tbody tr")
    assert errors.first.locator("td").first.inner_text() == "4"
    screenshot(page, "console-import-result")

    page.click("nav.nav >> text=会员管理")
    page.wait_for_selector("#member-table")
    table = page.locator("#member-table").inner_text()
    assert "欧阳一一" in table and "司马二二" in table
    assert re.search(r"138\*\*\*\*2222", table) and re.search(r"1\d\d\*\*\*\*\d{4}", table)
    html = page.content()
    assert all(i not in html for i in ids)
    assert "13811112222" not in html
    screenshot(page, "console-members")
