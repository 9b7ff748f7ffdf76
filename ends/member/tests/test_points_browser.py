"""At phone size: a member redeems a reward and gets a pickup code; a cadre verifies it in the cadre end."""

import pytest

from conftest import DESKTOP, PASSWORD, PHONE, console_login, make_member, make_user, screenshot
from points.services import budgets
from rewards.services import mall


def _member_with_points(district, org, granter):
    """A member of union A1 holding 300 points granted from `org`'s budget."""
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, org, 10000)
    m = make_member(district.union_a1, "秦兑换")
    budgets.grant(granter, org, [m.user_id], 300, "先进个人奖励")
    return m


def _sign_in(page, path: str, phone: str) -> None:
    """Open `path` and sign in with the password form it shows."""
    page.goto(path)
    page.fill("#phone", phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_member_redeems_and_cadre_verifies_the_pickup_code(page_factory, district):
    m = _member_with_points(district, district.union_a1, district.admin_a1)
    reward = mall.create_reward(district.admin_a1, district.union_a1, title="工会定制雨伞", cost=120, stock=10)

    page = page_factory(PHONE)
    _sign_in(page, "/m/login/?tab=password", m.user.phone)
    page.wait_for_selector("#home-mall")
    page.click("#home-mall")
    page.wait_for_selector(f"#reward-{reward.pk}")
    assert "300" in page.inner_text("#balance")
    page.click(f"#reward-{reward.pk}")
    page.wait_for_selector("#redeem-btn")
    page.once("dialog", lambda d: d.accept())
    page.click("#redeem-btn")
    page.wait_for_selector(".pickup-code")
    code = page.inner_text(".pickup-code").strip()
    assert len(code) >= 8
    assert page.locator("#redemptions svg").count() == 1
    box = page.locator("#redemptions svg").bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "member-redemption-code-phone")

    cadre = page_factory(PHONE)
    _sign_in(cadre, "/c/pickup/", district.admin_a1.phone)
    cadre.wait_for_selector("#code")
    cadre.fill("#code", code)
    cadre.click("#lookup-btn")
    cadre.wait_for_selector("#confirm-pickup")
    assert "工会定制雨伞" in cadre.inner_text("#pickup-preview")
    cadre.click("#confirm-pickup")
    cadre.wait_for_selector("#pickup-ok")
    assert code in cadre.inner_text("#pickup-ok")
    screenshot(cadre, "cadre-pickup-ok-phone")

    page.reload()
    assert "已领取" in page.inner_text("#redemptions")
    assert page.locator(".pickup-code").count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_adds_a_merchant_who_verifies_a_code_on_the_phone(page_factory, district):
    m = _member_with_points(district, district.street_a, district.admin_a)
    reward = mall.create_reward(
        district.admin_a, district.street_a, title="万达影城电影票（2D/3D 通兑）", cost=120, stock=10
    )
    code = mall.redeem(m.user, reward.pk).code
    merchant = make_user("影城前台", phone="13900002222")

    console = page_factory(DESKTOP)
    console_login(console, district.admin_a)
    console.goto(f"/console/mall/?org={district.street_a.pk}")
    assert "还没有核销员" in console.inner_text("#verifiers")
    console.fill("#vf-phone", "1390000")
    console.fill("#vf-note", "万达影城龙泉驿店")
    console.click("#verifier-add")
    console.wait_for_selector("#verifiers .has-error")
    assert "手机号" in console.inner_text("#verifiers")
    screenshot(console, "console-verifier-error-desktop")
    console.fill("#vf-phone", "13900002222")
    console.click("#verifier-add")
    console.wait_for_selector("#verifier-list")
    assert "万达影城龙泉驿店" in console.inner_text("#verifier-list")
    assert "139****2222" in console.inner_text("#verifier-list")
    screenshot(console, "console-verifiers-desktop")

    phone = page_factory(PHONE)
    _sign_in(phone, "/c/", merchant.phone)
    phone.wait_for_selector("#code")  # a 核销员 lands on the pickup page
    assert phone.locator(".m-tabbar").count() == 0
    phone.fill("#code", code)
    phone.click("#lookup-btn")
    phone.wait_for_selector("#confirm-pickup")
    phone.click("#confirm-pickup")
    phone.wait_for_selector("#pickup-ok")
    assert code in phone.inner_text("#pickup-ok")
    screenshot(phone, "cadre-pickup-by-merchant-phone")
