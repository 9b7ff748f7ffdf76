"""English is a full second language: the catalogue is complete, pages and API errors follow the
visitor's language, and domain messages are translated when raised (not frozen at import time)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from conftest import PASSWORD, make_member
from members.importing import validate_rows

PO = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.po"
CJK = re.compile(r"[\u4e00-\u9fff]")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|%%")
# English that must quote Chinese the user has to type into the spreadsheet.
NAMES_CHINESE_INPUT = {
    "性别应填写“男”或“女”",
    "表头：姓名、手机号、身份证号、性别、入会日期、工作单位。",
    "名单文件（.xlsx，第一行为表头，含“手机号”或“身份证号”列）",
    "表格第一行需要有“手机号”或“身份证号”列",
}


def _unquote(lines: list[str]) -> str:
    return "".join(re.fullmatch(r'"(.*)"', line.strip()).group(1) for line in lines).replace('\\"', '"')


def po_entries() -> list[dict]:
    """Each entry as {"flags", "msgctxt", "msgid", "msgid_plural", "msgstr"/"msgstr[0]"...}; no header."""
    entries = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        entry: dict = {"flags": set()}
        key = None
        parts: dict[str, list[str]] = {}
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"] |= {f.strip() for f in line[2:].split(",")}
            elif line.startswith("#~"):
                key = None  # obsolete entries are not used
            elif line.startswith("#"):
                continue
            elif m := re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line):
                key = m.group(1)
                parts[key] = [m.group(2)]
            elif line.startswith('"') and key:
                parts[key].append(line)
        if "msgid" not in parts:
            continue
        entry.update({k: _unquote(v) for k, v in parts.items()})
        if entry["msgid"] == "":
            continue
        entries.append(entry)
    return entries


def test_the_catalogue_is_complete_and_nothing_is_fuzzy():
    entries = po_entries()
    assert len(entries) > 400
    assert "fuzzy" not in PO.read_text(encoding="utf-8"), "remove every #, fuzzy flag"
    for e in entries:
        assert "fuzzy" not in e["flags"], e["msgid"]
        strs = [v for k, v in e.items() if k.startswith("msgstr")]
        assert strs, e["msgid"]
        for s in strs:
            assert s.strip(), f"untranslated: {e['msgid']}"
            if e["msgid"] not in NAMES_CHINESE_INPUT:
                assert not CJK.search(s), f"Chinese left in the English for {e['msgid']}: {s}"
            assert sorted(PLACEHOLDER.findall(s)) == sorted(PLACEHOLDER.findall(e["msgid"])), e["msgid"]


def test_the_compiled_catalogue_is_there_and_used():
    assert PO.with_suffix(".mo").stat().st_size > 10_000
    with translation.override("en"):
        assert translation.gettext("总工会") == "Federation of Trade Unions"
        assert translation.pgettext("member status", "粉丝") == "Follower"


PAGES = {
    "/": ("Smart Trade Union", "智慧工会"),
    "/m/login/": ("Sign in / Sign up", "登录 / 注册"),
    "/c/login/": ("Union Cadre Office", "工会干部办公"),
    "/console/login/": ("Sign in to the Management Console", "登录管理平台"),
}


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_chinese_by_default_and_english_with_the_language_cookie(db, client, path):
    english, chinese = PAGES[path]
    zh = client.get(path)
    assert zh.status_code == 200
    assert chinese in zh.content.decode()
    assert english not in zh.content.decode()

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    en = client.get(path)
    assert en.status_code == 200
    html = en.content.decode()
    assert english in html
    assert chinese not in html
    assert '<html lang="en"' in html
    # What is left in Chinese is the switch back ("中文") and the logo glyph "工", nothing else.
    visible = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", html, flags=re.S)
    leftovers = set(CJK.findall(visible.replace("中文", "").replace("简体中文", ""))) - {"工"}
    assert not leftovers, f"untranslated text on {path}: {sorted(leftovers)}"


def test_the_language_switch_sets_the_cookie(db, client):
    r = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert r.status_code == 302
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    assert "Smart Trade Union" in client.get("/").content.decode()


def test_api_errors_follow_accept_language(district, client):
    member = make_member(district.union_a1)
    body = {"phone": member.user.phone, "password": PASSWORD + "wrong"}

    zh = client.post("/api/v1/auth/token", body, content_type="application/json")
    assert zh.status_code == 401
    assert zh.json()["error"] == {"code": "invalid_credentials", "message": "手机号或密码不正确", "fields": {}}

    en = client.post("/api/v1/auth/token", body, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert en.status_code == 401
    assert en.json()["error"]["code"] == "invalid_credentials"
    assert en.json()["error"]["message"] == "Incorrect phone number or password."


def test_an_api_not_found_is_english_too(db, api, district):
    r = api(district.district_admin).get("/api/v1/orgs/999999", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 404
    assert not CJK.search(r.json()["error"]["message"])


def _rows(*data):
    return [["姓名", "手机号", "身份证号"], *data]


def test_import_row_errors_are_translated_when_raised_but_fields_stay_the_column_names():
    rows = _rows(["", "13900000001", "110101199003074477"], ["张三", "123", "1101"])

    with translation.override("en"):
        _, errors, _ = validate_rows(rows)
    by_field = {(e.row, e.field): e for e in errors}
    assert by_field[(2, "姓名")].message == "The name is required"
    assert by_field[(3, "手机号")].message == "Enter an 11-digit mainland China mobile number."
    assert by_field[(3, "身份证号")].message == "The ID number must be 18 characters long."

    with translation.override("zh-hans"):
        _, errors, _ = validate_rows(rows)
    assert {(e.row, e.field): e.message for e in errors}[(2, "姓名")] == "姓名不能为空"


def test_a_repeated_row_keeps_its_row_number_in_english():
    idn = "110101199003074477"
    rows = _rows(["张三", "13900000001", idn], ["李四", "13900000002", idn])
    with translation.override("en"):
        _, errors, _ = validate_rows(rows)
    assert [(e.row, e.field, e.code, e.message) for e in errors] == [
        (3, "身份证号", "duplicate_row", "Same ID number as row 2")
    ]


def test_a_missing_header_column_is_english_and_names_the_chinese_column():
    from members.importing import ImportFileError, map_header

    with translation.override("en"), pytest.raises(ImportFileError) as e:
        map_header(["姓名", "手机号"])
    assert e.value.message.startswith("The header is missing required columns: 身份证号")
