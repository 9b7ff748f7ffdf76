"""Console points and mall pages: scope, budgets, grants (picked and imported), rules, earnings export, mall."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook, load_workbook

from conftest import make_member
from points.models import AccountKind, EarningRule, Entry, ExpiryPolicy, MovementKind
from points.services import budgets, ledger
from rewards.models import PickupStatus, Redemption, Reward
from rewards.services import mall

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(district):
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, district.street_a, 20000)
    return district


def login(client, user):
    client.force_login(user)
    return client


def budget(org) -> int:
    return ledger.budget_account(org).balance


def list_xlsx(header: list[str], rows: list[list]) -> SimpleUploadedFile:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return SimpleUploadedFile("list.xlsx", buf.getvalue())


def field_error(html: str, input_id: str) -> str:
    """The error text right after the input with this id (the page's 'beside the field' pattern)."""
    m = re.search(rf'id="{input_id}"[^>]*>\s*(?:</\w+>\s*)?<p class="field-error"[^>]*>([^<]+)', html)
    return m.group(1) if m else ""


# --- scope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["console:points", "console:points_grant", "console:points_rules", "console:points_earnings", "console:mall"],
)
def test_another_subtrees_org_is_404(client, funded, name):
    login(client, funded.admin_a)
    assert client.get(reverse(name), {"org": funded.street_a.pk}).status_code == 200
    assert client.get(reverse(name), {"org": funded.union_b1.pk}).status_code == 404
    assert client.get(reverse(name), {"org": funded.root.pk}).status_code == 404


def test_another_subtrees_reward_is_404(client, funded):
    reward = mall.create_reward(funded.admin_b, funded.street_b, title="乙的杯子", cost=10, stock=5)
    login(client, funded.admin_a)
    assert client.get(reverse("console:reward", args=[reward.pk])).status_code == 404
    login(client, funded.admin_b)
    assert client.get(reverse("console:reward", args=[reward.pk])).status_code == 200


def test_allocate_to_an_org_outside_scope_is_refused(client, funded):
    login(client, funded.admin_a)
    r = client.post(
        reverse("console:points_allocate"), {"org": funded.street_a.pk, "to_org": funded.union_b1.pk, "amount": 10}
    )
    assert r.status_code == 404
    assert budget(funded.union_b1) == 0
    assert budget(funded.street_a) == 20000


def test_org_picker_for_allocation_lists_only_descendants(client, funded):
    login(client, funded.admin_a)
    r = client.get(reverse("console:org_pick"), {"q": "工会", "mode": "descendant", "within": funded.street_a.pk})
    html = r.content.decode()
    assert funded.union_a1.name in html and funded.union_a2.name in html
    assert f'value="{funded.street_a.pk}"' not in html and funded.union_b1.name not in html
    assert 'name="to_org"' in html


# --- budget page ---------------------------------------------------------------------------------


def test_budget_page_shows_balance_children_and_movements(client, funded):
    login(client, funded.district_admin)
    r = client.get(reverse("console:points"), {"org": funded.root.pk})
    html = r.content.decode()
    assert "80,000" in html  # 100000 minted, 20000 allocated
    assert "20,000" in html and funded.street_a.name in html
    assert 'id="mint"' in html  # the top org's admin may mint
    assert "预算下拨" in html


def test_mint_form_only_for_the_top_orgs_admin(client, funded):
    login(client, funded.admin_a)
    html = client.get(reverse("console:points"), {"org": funded.street_a.pk}).content.decode()
    assert 'id="mint"' not in html and 'id="allocate"' in html
    r = client.post(reverse("console:points_mint"), {"org": funded.street_a.pk, "amount": 5})
    assert r.status_code == 403
    assert budget(funded.street_a) == 20000


def test_allocate_happy_path(client, funded):
    login(client, funded.admin_a)
    r = client.post(
        reverse("console:points_allocate"),
        {"org": funded.street_a.pk, "to_org": funded.union_a1.pk, "amount": "3000", "reason": "二季度"},
    )
    assert r.status_code == 302
    assert budget(funded.street_a) == 17000 and budget(funded.union_a1) == 3000
    html = client.get(r["Location"]).content.decode()
    assert "预算已下拨" in html and "二季度" in html and "-3,000" in html


def test_allocate_above_budget_is_shown_beside_the_amount(client, funded):
    login(client, funded.admin_a)
    r = client.post(
        reverse("console:points_allocate"),
        {"org": funded.street_a.pk, "to_org": funded.union_a1.pk, "amount": "20001"},
    )
    assert r.status_code == 409
    assert "超出本组织积分预算" in field_error(r.content.decode(), "al-amount")
    assert budget(funded.street_a) == 20000 and budget(funded.union_a1) == 0


@pytest.mark.parametrize("amount", ["0", "-5", "abc", ""])
def test_allocate_bad_amount(client, funded, amount):
    login(client, funded.admin_a)
    r = client.post(
        reverse("console:points_allocate"),
        {"org": funded.street_a.pk, "to_org": funded.union_a1.pk, "amount": amount},
    )
    assert r.status_code == 422
    assert field_error(r.content.decode(), "al-amount")


def test_allocate_without_a_target_names_the_field(client, funded):
    login(client, funded.admin_a)
    r = client.post(reverse("console:points_allocate"), {"org": funded.street_a.pk, "to_org": "", "amount": "5"})
    assert r.status_code == 422
    assert "请选择下级组织" in r.content.decode()


def test_staff_cannot_allocate(client, funded):
    login(client, funded.staff_a)
    r = client.post(
        reverse("console:points_allocate"),
        {"org": funded.street_a.pk, "to_org": funded.union_a1.pk, "amount": "10"},
    )
    assert r.status_code == 403
    assert "管理员" in r.content.decode()
    assert budget(funded.union_a1) == 0


# --- grants --------------------------------------------------------------------------------------


def test_grant_to_selected_members(client, funded):
    m1 = make_member(funded.union_a1, "张一")
    m2 = make_member(funded.union_a2, "张二")
    login(client, funded.admin_a)
    html = client.get(reverse("console:points_grant"), {"org": funded.street_a.pk, "q": "张"}).content.decode()
    assert f'value="{m1.user_id}"' in html and f'value="{m2.user_id}"' in html
    r = client.post(
        reverse("console:points_grant_do"),
        {"org": funded.street_a.pk, "member_ids": [m1.user_id, m2.user_id], "amount": "50", "reason": "先进个人"},
    )
    assert r.status_code == 302
    assert ledger.balance_of(m1.user) == 50 and ledger.balance_of(m2.user) == 50
    assert budget(funded.street_a) == 20000 - 100
    assert "已向 2 名会员发放积分" in client.get(r["Location"]).content.decode()


def test_grant_errors_beside_fields(client, funded):
    m = make_member(funded.union_a1, "张一")
    login(client, funded.admin_a)
    url = reverse("console:points_grant_do")
    r = client.post(url, {"org": funded.street_a.pk, "member_ids": [m.user_id], "amount": "5", "reason": ""})
    assert r.status_code == 422 and field_error(r.content.decode(), "gr-reason") == "必填"
    r = client.post(url, {"org": funded.street_a.pk, "amount": "5", "reason": "x"})
    assert r.status_code == 422 and "请选择要发放的会员" in r.content.decode()
    r = client.post(url, {"org": funded.street_a.pk, "member_ids": [m.user_id], "amount": "20001", "reason": "x"})
    assert r.status_code == 409 and "超出本组织积分预算" in field_error(r.content.decode(), "gr-amount")
    assert ledger.balance_of(m.user) == 0 and budget(funded.street_a) == 20000


def test_grant_to_unknown_members_grants_nobody(client, funded):
    mine = make_member(funded.union_a1, "张一")
    theirs = make_member(funded.union_b1, "乙会员")
    login(client, funded.admin_a)
    r = client.post(
        reverse("console:points_grant_do"),
        {"org": funded.street_a.pk, "member_ids": [mine.user_id, theirs.user_id], "amount": "5", "reason": "x"},
    )
    assert r.status_code == 422
    assert f"这些编号不是本组织的会员：{theirs.user_id}" in r.content.decode()
    assert ledger.balance_of(mine.user) == 0 and ledger.balance_of(theirs.user) == 0


def test_staff_cannot_grant(client, funded):
    m = make_member(funded.union_a1, "张一")
    login(client, funded.staff_a)
    r = client.post(
        reverse("console:points_grant_do"),
        {"org": funded.street_a.pk, "member_ids": [m.user_id], "amount": "5", "reason": "x"},
    )
    assert r.status_code == 403
    assert ledger.balance_of(m.user) == 0


def test_grant_from_an_imported_list(client, funded):
    m1 = make_member(funded.union_a1, "张一")
    m2 = make_member(funded.union_a2, "张二")
    outsider = make_member(funded.union_b1, "乙会员")
    login(client, funded.admin_a)
    sheet = list_xlsx(
        ["姓名", "手机号"],
        [["张一", m1.user.phone], ["坏号", "12345"], ["乙会员", outsider.user.phone], ["张二", m2.user.phone]],
    )
    r = client.post(reverse("console:points_grant_preview"), {"org": funded.street_a.pk, "file": sheet})
    assert r.status_code == 200
    html = r.content.decode()
    unmatched = html[html.index('id="unmatched-table"') : html.index("</table>", html.index('id="unmatched-table"'))]
    assert "第 3 行" in unmatched and "第 4 行" in unmatched and "第 2 行" not in unmatched
    assert "不是本组织" in unmatched
    matched = html[html.index('id="matched-table"') :]
    assert "张一" in matched and "张二" in matched and "乙会员" not in matched
    ids = re.search(r'name="member_ids" value="([\d,]+)"', html).group(1)
    assert set(ids.split(",")) == {str(m1.user_id), str(m2.user_id)}
    assert ledger.balance_of(m1.user) == 0  # a preview moves nothing
    r = client.post(
        reverse("console:points_grant_do"),
        {"org": funded.street_a.pk, "member_ids": ids, "from_list": "1", "amount": "30", "reason": "名单发放"},
    )
    assert r.status_code == 302
    assert ledger.balance_of(m1.user) == 30 and ledger.balance_of(m2.user) == 30
    assert ledger.balance_of(outsider.user) == 0


def test_imported_list_by_id_number(client, funded):
    m = make_member(funded.union_a1, "张一")
    login(client, funded.admin_a)
    sheet = list_xlsx(["身份证号"], [[m._id_number], ["110101199001011234"]])
    html = client.post(
        reverse("console:points_grant_preview"), {"org": funded.street_a.pk, "file": sheet}
    ).content.decode()
    assert f'name="member_ids" value="{m.user_id}"' in html
    assert "第 3 行" in html
    assert m._id_number not in html  # never echoed


def test_imported_list_without_the_column_or_not_xlsx(client, funded):
    login(client, funded.admin_a)
    r = client.post(
        reverse("console:points_grant_preview"),
        {"org": funded.street_a.pk, "file": list_xlsx(["姓名"], [["张一"]])},
    )
    assert r.status_code == 422 and "手机号" in field_error(r.content.decode(), "gl-file")
    r = client.post(
        reverse("console:points_grant_preview"),
        {"org": funded.street_a.pk, "file": SimpleUploadedFile("list.csv", b"a,b")},
    )
    assert r.status_code == 422 and field_error(r.content.decode(), "gl-file")


# --- rules and expiry ----------------------------------------------------------------------------


def test_rule_create_update_and_inheritance(client, funded):
    EarningRule.objects.create(org=funded.root, action="checkin", amount=5, daily_cap=1)
    login(client, funded.admin_a)
    html = client.get(reverse("console:points_rules"), {"org": funded.union_a1.pk}).content.decode()
    assert "继承" in html and funded.root.name in html and "生效" in html
    url = reverse("console:points_rule_save")
    r = client.post(
        url,
        {
            "org": funded.street_a.pk,
            "action": "checkin",
            "amount": "8",
            "daily_cap": "2",
            "total_cap": "",
            "active": "1",
        },
    )
    assert r.status_code == 302
    rule = EarningRule.objects.get(org=funded.street_a, action="checkin")
    assert (rule.amount, rule.daily_cap, rule.total_cap, rule.active) == (8, 2, None, True)
    r = client.post(
        url, {"org": funded.street_a.pk, "action": "checkin", "amount": "9", "daily_cap": "1", "total_cap": "30"}
    )
    assert r.status_code == 302
    rule.refresh_from_db()
    assert (rule.amount, rule.total_cap, rule.active) == (9, 30, False)
    assert EarningRule.objects.filter(org=funded.street_a).count() == 1
    html = client.get(reverse("console:points_rules"), {"org": funded.union_a1.pk}).content.decode()
    assert "被下级覆盖" not in html  # the street's rule is inactive, so the federation's still applies
    client.post(url, {"org": funded.street_a.pk, "action": "checkin", "amount": "9", "daily_cap": "1", "active": "1"})
    html = client.get(reverse("console:points_rules"), {"org": funded.union_a1.pk}).content.decode()
    assert "被下级覆盖" in html


def test_rule_errors_beside_fields(client, funded):
    login(client, funded.admin_a)
    url = reverse("console:points_rule_save")
    r = client.post(url, {"org": funded.street_a.pk, "action": "checkin", "amount": "0", "daily_cap": "1"})
    assert r.status_code == 422 and field_error(r.content.decode(), "ru-amount")
    r = client.post(url, {"org": funded.street_a.pk, "action": "checkin", "amount": "3", "daily_cap": "500"})
    assert r.status_code == 422 and field_error(r.content.decode(), "ru-daily")
    r = client.post(url, {"org": funded.street_a.pk, "action": "checkin", "amount": "3", "total_cap": "x"})
    assert r.status_code == 422 and field_error(r.content.decode(), "ru-total")
    assert not EarningRule.objects.exists()
    login(client, funded.staff_a)
    r = client.post(url, {"org": funded.street_a.pk, "action": "checkin", "amount": "3"})
    assert r.status_code == 403 and not EarningRule.objects.exists()


def test_expiry_policy(client, funded):
    login(client, funded.admin_a)
    url = reverse("console:points_expiry_save")
    r = client.post(url, {"org": funded.street_a.pk, "month": "2", "day": "30", "notice_days": "30"})
    assert r.status_code == 422 and "无效日期" in r.content.decode()
    r = client.post(url, {"org": funded.street_a.pk, "month": "12", "day": "31", "notice_days": "15"})
    assert r.status_code == 302
    p = ExpiryPolicy.objects.get(org=funded.street_a)
    assert (p.month, p.day, p.notice_days) == (12, 31, 15)
    html = client.get(reverse("console:points_rules"), {"org": funded.union_a1.pk}).content.decode()
    assert "每年 12 月 31 日" in html


# --- earnings ------------------------------------------------------------------------------------


def test_earnings_list_filter_and_export(client, funded):
    m1 = make_member(funded.union_a1, "张一")
    m2 = make_member(funded.union_a2, "张二")
    other = make_member(funded.union_b1, "乙会员")
    budgets.grant(funded.admin_a, funded.street_a, [m1.user_id, m2.user_id], 40, "先进个人")
    budgets.allocate(funded.district_admin, funded.root, funded.street_b, 100)
    budgets.grant(funded.admin_b, funded.street_b, [other.user_id], 7, "乙的发放")
    reward = mall.create_reward(funded.admin_a, funded.street_a, title="水杯", cost=15, stock=3)
    mall.redeem(m1.user, reward.pk)

    login(client, funded.admin_a)
    html = client.get(reverse("console:points_earnings"), {"org": funded.street_a.pk}).content.decode()
    assert "张一" in html and "张二" in html and "乙会员" not in html and "兑换：水杯" in html
    html = client.get(
        reverse("console:points_earnings"), {"org": funded.street_a.pk, "kind": "redeem"}
    ).content.decode()
    table = html[html.index('id="earning-table"') :]
    assert "兑换：水杯" in table and "先进个人" not in table

    r = client.get(reverse("console:points_earnings_export"), {"org": funded.street_a.pk, "kind": "grant"})
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:6] == ("姓名", "手机号", "所在组织", "类型", "原因", "积分")
    body = sorted(rows[1:])
    assert [(x[0], x[3], x[4], x[5]) for x in body] == [
        ("张一", "工会发放", "先进个人", 40),
        ("张二", "工会发放", "先进个人", 40),
    ]
    assert body[0][1] == m1.phone_masked and "****" in body[0][1]
    flat = repr(rows)
    assert m1._id_number not in flat and m1.user.phone not in flat

    today = timezone.localdate()
    r = client.get(
        reverse("console:points_earnings_export"),
        {"org": funded.street_a.pk, "from": (today + dt.timedelta(days=1)).isoformat()},
    )
    assert len(list(load_workbook(io.BytesIO(r.content)).active.iter_rows())) == 1  # header only
    html = client.get(
        reverse("console:points_earnings"),
        {"org": funded.street_a.pk, "to": (today - dt.timedelta(days=1)).isoformat()},
    ).content.decode()
    assert "没有符合条件的积分记录" in html
    assert Entry.objects.filter(account__kind=AccountKind.MEMBER, movement__kind=MovementKind.GRANT).count() == 3


def test_earnings_export_outside_scope_is_404(client, funded):
    login(client, funded.admin_a)
    assert client.get(reverse("console:points_earnings_export"), {"org": funded.street_b.pk}).status_code == 404


# --- mall ----------------------------------------------------------------------------------------


def test_create_reward_and_bad_window(client, funded):
    login(client, funded.admin_a)
    url = reverse("console:reward_create")
    base = {
        "org": funded.street_a.pk,
        "title": "保温杯",
        "kind": "goods",
        "cost": "100",
        "stock": "20",
        "per_member_limit": "2",
        "eligibility": "members",
        "description": "不锈钢",
    }
    r = client.post(url, {**base, "starts_at": "2026-05-01T10:00", "ends_at": "2026-04-01T10:00"})
    assert r.status_code == 422
    assert field_error(r.content.decode(), "rw-end") == "应晚于开始时间"
    r = client.post(url, {**base, "starts_at": "not a time"})
    assert r.status_code == 422 and field_error(r.content.decode(), "rw-start")
    r = client.post(url, {**base, "cost": "0"})
    assert r.status_code == 422 and field_error(r.content.decode(), "rw-cost")
    assert not Reward.objects.exists()
    r = client.post(url, {**base, "starts_at": "2026-05-01T10:00", "ends_at": "2026-06-01T10:00"})
    assert r.status_code == 302
    reward = Reward.objects.get()
    assert (reward.org, reward.cost, reward.stock, reward.stock_total, reward.per_member_limit) == (
        funded.street_a,
        100,
        20,
        20,
        2,
    )
    assert timezone.localtime(reward.starts_at).strftime("%Y-%m-%d %H:%M") == "2026-05-01 10:00"
    html = client.get(reverse("console:mall"), {"org": funded.street_a.pk}).content.decode()
    assert "保温杯" in html and "20 / 20" in html
    login(client, funded.staff_a)
    assert client.post(url, base).status_code == 403


def test_reward_detail_cancel_and_pickup_once(client, funded):
    m = make_member(funded.union_a1, "张一")
    budgets.grant(funded.admin_a, funded.street_a, [m.user_id], 100, "奖励")
    reward = mall.create_reward(funded.admin_a, funded.street_a, title="水杯", cost=30, stock=5)
    first = mall.redeem(m.user, reward.pk)
    login(client, funded.admin_a1)
    # a cadre of a sub-org cannot verify a code of the street's reward
    r = client.post(reverse("console:mall_pickup"), {"org": funded.union_a1.pk, "code": first.code})
    assert r.status_code == 404 and field_error(r.content.decode(), "pk-code")

    login(client, funded.admin_a)
    html = client.get(reverse("console:reward", args=[reward.pk])).content.decode()
    assert first.code in html and "张一" in html and m.user.phone not in html and m.phone_masked in html

    r = client.post(reverse("console:mall_pickup"), {"org": funded.street_a.pk, "code": first.code.lower()})
    assert r.status_code == 200 and "核销成功" in r.content.decode()
    first.refresh_from_db()
    assert first.status == PickupStatus.PICKED_UP
    r = client.post(reverse("console:mall_pickup"), {"org": funded.street_a.pk, "code": first.code})
    assert r.status_code == 409 and "已于" in field_error(r.content.decode(), "pk-code")
    r = client.post(reverse("console:mall_pickup"), {"org": funded.street_a.pk, "code": "ZZZZZZZZ"})
    assert r.status_code == 404 and field_error(r.content.decode(), "pk-code")

    # a picked-up redemption cannot be cancelled; an issued one can, refunding points and stock
    r = client.post(reverse("console:redemption_cancel", args=[first.pk]))
    assert r.status_code == 409
    m2 = make_member(funded.union_a2, "张二")
    budgets.grant(funded.admin_a, funded.street_a, [m2.user_id], 100, "奖励")
    issued = mall.redeem(m2.user, reward.pk)
    assert ledger.balance_of(m2.user) == 70
    r = client.post(reverse("console:redemption_cancel", args=[issued.pk]))
    assert r.status_code == 302
    issued.refresh_from_db()
    reward.refresh_from_db()
    assert issued.status == PickupStatus.CANCELLED and ledger.balance_of(m2.user) == 100 and reward.stock == 4
    assert Redemption.objects.filter(reward=reward).count() == 2


def test_cancel_outside_scope_is_404(client, funded):
    m = make_member(funded.union_a1, "张一")
    budgets.grant(funded.admin_a, funded.street_a, [m.user_id], 100, "奖励")
    reward = mall.create_reward(funded.admin_a, funded.street_a, title="水杯", cost=30, stock=5)
    red = mall.redeem(m.user, reward.pk)
    login(client, funded.admin_b)
    assert client.post(reverse("console:redemption_cancel", args=[red.pk])).status_code == 404
    red.refresh_from_db()
    assert red.status == PickupStatus.ISSUED


def test_mall_empty_state(client, funded):
    login(client, funded.admin_a1)
    html = client.get(reverse("console:mall"), {"org": funded.union_a1.pk}).content.decode()
    assert "还没有上架的商品" in html


def test_sidebar_has_points_section(client, funded):
    login(client, funded.staff_a)
    html = client.get(reverse("console:home")).content.decode()
    for label in ("积分预算", "积分发放", "积分规则", "积分明细", "积分商城"):
        assert label in html
