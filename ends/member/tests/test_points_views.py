"""Member end points pages: 签到, history, the mall (redeem and each refusal), my redemptions and cancel."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_member, make_user
from points.models import EarningRule
from points.services import budgets, ledger
from rewards.models import Eligibility, PickupStatus, Redemption
from rewards.services import mall

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(district):
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, district.union_a1, 10000)
    EarningRule.objects.create(org=district.root, action="checkin", amount=5, daily_cap=1)
    return district


def _member_with(district, points: int, name="赵积分"):
    m = make_member(district.union_a1, name)
    if points:
        budgets.grant(district.admin_a1, district.union_a1, [m.user_id], points, "测试发放")
    return m


def _reward(district, **kw):
    args = {"title": "保温杯", "cost": 100, "stock": 5, "per_member_limit": 1}
    args.update(kw)
    return mall.create_reward(district.admin_a1, district.union_a1, **args)


def test_checkin_gives_points_once_a_day(client, funded):
    m = _member_with(funded, 0)
    client.force_login(m.user)
    resp = client.post(reverse("member:points"), follow=True)
    html = resp.content.decode()
    assert "+5 积分" in html and 'id="balance">5<' in html
    assert "今日已签到" in html
    html = client.post(reverse("member:points"), follow=True).content.decode()
    assert "今天该项积分已达上限" in html
    assert ledger.balance_of(m.user) == 5


def test_checkin_needs_a_certified_member(client, funded):
    client.force_login(make_user("粉丝"))
    html = client.post(reverse("member:points"), follow=True).content.decode()
    assert "完成实名认证的会员才能获得积分" in html


def test_history_lists_entries_with_reason_kind_and_sign(client, funded):
    m = _member_with(funded, 300)
    reward = _reward(funded, title="电影票", cost=120, kind="ticket")
    mall.redeem(m.user, reward.pk)
    client.force_login(m.user)
    html = client.get(reverse("member:points")).content.decode()
    assert 'id="balance">180<' in html
    assert "测试发放" in html and "工会发放" in html and "+300" in html
    assert "兑换：电影票" in html and "-120" in html
    assert html.index("兑换：电影票") < html.index("测试发放")  # newest first


def test_history_is_paginated(client, funded):
    m = _member_with(funded, 0)
    for i in range(35):
        budgets.grant(funded.admin_a1, funded.union_a1, [m.user_id], 1, f"第{i}次")
    client.force_login(m.user)
    first = client.get(reverse("member:points")).content.decode()
    assert first.count('class="m-list__item m-entry"') == 30 and "第 1 / 2 页" in first
    second = client.get(reverse("member:points") + "?page=2").content.decode()
    assert second.count('class="m-list__item m-entry"') == 5 and "第0次" in second


def test_expiry_notice_is_shown(client, funded):
    from points.services import expiry

    m = _member_with(funded, 50)
    soon = timezone.localdate() + dt.timedelta(days=3)
    expiry.set_policy(funded.district_admin, funded.root, soon.month, soon.day, notice_days=30)
    client.force_login(m.user)
    html = client.get(reverse("member:points")).content.decode()
    assert 'id="expiry-notice"' in html and f"{soon:%Y-%m-%d}" in html


def test_mall_lists_rewards_and_redeem_succeeds(client, funded):
    m = _member_with(funded, 300)
    reward = _reward(funded)
    client.force_login(m.user)
    html = client.get(reverse("member:mall")).content.decode()
    assert "保温杯" in html and "100 积分" in html and "剩余 5" in html
    html = client.get(reverse("member:reward", args=[reward.pk])).content.decode()
    assert 'id="redeem-btn"' in html
    resp = client.post(reverse("member:reward_redeem", args=[reward.pk]))
    assert resp.status_code == 302
    r = Redemption.objects.get(user=m.user)
    html = client.get(resp["Location"]).content.decode()
    assert r.code in html and "<svg" in html and "待领取" in html
    assert ledger.balance_of(m.user) == 200


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("poor", "积分不足"),
        ("out_of_stock", "商品已兑完"),
        ("limit", "已达到每人兑换上限"),
        ("window", "不在兑换时间内"),
        ("uncertified", "该商品仅限认证会员兑换"),
    ],
)
def test_redeem_refusals_show_their_message(client, funded, setup, message):
    m = _member_with(funded, 50 if setup == "poor" else 500)
    user = m.user
    kw = {}
    if setup == "out_of_stock":
        kw["stock"] = 0
    if setup == "window":
        kw["starts_at"] = timezone.now() + dt.timedelta(days=1)
    reward = _reward(funded, **kw)
    if setup == "limit":
        mall.redeem(user, reward.pk)
    if setup == "uncertified":  # a follower is not shown a members-only reward at all (404)
        user = make_member(funded.union_a1, "未认证", certified=False).user
    client.force_login(user)
    before = ledger.balance_of(user)
    resp = client.post(reverse("member:reward_redeem", args=[reward.pk]))
    assert resp.status_code in (403, 409)
    assert message in resp.content.decode() and 'id="redeem-error"' in resp.content.decode()
    assert ledger.balance_of(user) == before


def test_a_reward_of_another_union_is_not_found(client, funded):
    m = _member_with(funded, 500)
    other = mall.create_reward(funded.admin_b, funded.union_b1, title="乙的商品", cost=1, stock=1)
    client.force_login(m.user)
    assert "乙的商品" not in client.get(reverse("member:mall")).content.decode()
    assert client.get(reverse("member:reward", args=[other.pk])).status_code == 404
    assert client.post(reverse("member:reward_redeem", args=[other.pk])).status_code == 404


def test_follower_sees_only_everyone_rewards(client, funded):
    _reward(funded, title="会员专享")
    _reward(funded, title="人人可兑", eligibility=Eligibility.EVERYONE)
    client.force_login(make_user("粉丝"))
    html = client.get(reverse("member:mall")).content.decode()
    assert "人人可兑" in html and "会员专享" not in html
    members_only = _reward(funded, title="会员专享二")
    everyone = _reward(funded, title="人人可兑二", eligibility=Eligibility.EVERYONE)
    assert client.get(reverse("member:reward", args=[members_only.pk])).status_code == 404
    assert client.post(reverse("member:reward_redeem", args=[members_only.pk])).status_code == 404
    assert client.get(reverse("member:reward", args=[everyone.pk])).status_code == 200


def test_cancel_refunds_points_and_stock(client, funded):
    m = _member_with(funded, 300)
    reward = _reward(funded)
    r = mall.redeem(m.user, reward.pk)
    client.force_login(m.user)
    html = client.post(reverse("member:redemption_cancel", args=[r.pk]), follow=True).content.decode()
    assert "100 积分已退回" in html and "已取消" in html
    assert ledger.balance_of(m.user) == 300
    reward.refresh_from_db()
    assert reward.stock == 5
    r.refresh_from_db()
    assert r.status == PickupStatus.CANCELLED
    html = client.post(reverse("member:redemption_cancel", args=[r.pk]), follow=True).content.decode()
    assert "已领取或已取消的兑换不能取消" in html and ledger.balance_of(m.user) == 300


def test_someone_else_cannot_cancel_my_redemption(client, funded):
    m = _member_with(funded, 300)
    r = mall.redeem(m.user, _reward(funded).pk)
    client.force_login(_member_with(funded, 0, "钱旁人").user)
    client.post(reverse("member:redemption_cancel", args=[r.pk]))
    r.refresh_from_db()
    assert r.status == PickupStatus.ISSUED


def test_empty_states(client, funded):
    client.force_login(_member_with(funded, 0).user)
    assert 'id="no-history"' in client.get(reverse("member:points")).content.decode()
    assert 'id="no-redemptions"' in client.get(reverse("member:redemptions")).content.decode()
    assert 'id="no-rewards"' in client.get(reverse("member:mall")).content.decode()


def test_home_links_to_points_pages(client, funded):
    client.force_login(_member_with(funded, 0).user)
    html = client.get(reverse("member:home")).content.decode()
    for name in ("member:points", "member:mall", "member:redemptions"):
        assert f'href="{reverse(name)}"' in html
