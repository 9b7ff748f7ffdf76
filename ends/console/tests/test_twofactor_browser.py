"""End to end at desktop size: an admin cadre enrols a TOTP device from the QR page, signs in again
with a code (a wrong one first), a cadre signed in by SMS is sent to the password form, and an
unmask past the limit shows its message beside the button."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SmsOutbox
from conftest import DESKTOP, PASSWORD, console_login, make_member, next_totp_code, screenshot


def _password(page, user) -> None:
    page.goto("/console/login/")
    page.fill("#id_phone", user.phone)
    page.fill("#id_password", PASSWORD)
    page.click(".login-card button.btn-primary")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_enrols_then_signs_in_with_a_code(district, page_factory):
    admin = district.admin_a
    page = page_factory(DESKTOP)
    page.goto("/console/login/")
    screenshot(page, "console-login")

    _password(page, admin)
    page.wait_for_selector("#totp-qr svg")
    assert page.url.endswith("/console/login/code/")
    assert page.locator("h1").inner_text() == "绑定动态验证码"
    box = page.locator("#totp-qr svg").bounding_box()
    assert box and box["width"] >= 150 and box["height"] >= 150
    key = page.locator("#totp-key").inner_text().replace(" ", "")
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    assert re.fullmatch(r"[A-Z2-7]{32}", key)
    screenshot(page, "console-2fa-enrol")

    page.fill("#id_code", f"{totp(device.bin_key):06d}")
    page.click(".login-card button.btn-primary")
    page.wait_for_selector(".topbar")
    assert page.locator(".who-name").inner_text() == "甲管理员"

    # Sign out; the next sign-in asks for the code, and a wrong one is shown beside the field.
    page.click("form[action$='/console/logout/'] button")
    page.wait_for_selector("#id_phone")
    _password(page, admin)
    page.wait_for_selector("#id_code")
    assert page.locator("#totp-qr").count() == 0
    device.refresh_from_db()
    right = next_totp_code(device)
    page.fill("#id_code", "000000" if right != "000000" else "111111")
    page.click(".login-card button.btn-primary")
    page.wait_for_selector(".field.has-error #id_code + .field-error, .field.has-error .field-error")
    error = page.locator(".field.has-error .field-error").inner_text()
    assert "验证码不正确" in error
    screenshot(page, "console-2fa-code-error")

    page.wait_for_timeout(1100)  # the library's back-off after one wrong code is one second
    page.fill("#id_code", next_totp_code(device))
    page.click(".login-card button.btn-primary")
    page.wait_for_selector(".topbar")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_cadre_signed_in_by_sms_is_sent_to_the_password_form(district, page_factory):
    staff = district.staff_a
    page = page_factory(DESKTOP)
    page.goto("/m/login/")
    page.fill("#phone", staff.phone)
    with page.expect_navigation():
        page.click("#send-code")
    text = SmsOutbox.objects.filter(phone_hash=staff.phone_hash).order_by("-id").first().text
    page.fill("#code", re.search(r"\d{6}", text).group(0))
    with page.expect_navigation():
        page.click("#login-btn")
    assert "/m/login/" not in page.url
    page.goto("/console/members/")
    page.wait_for_selector("#login-notice")
    assert "/console/login/" in page.url
    assert "短信验证码" in page.locator("#login-notice").inner_text()
    screenshot(page, "console-login-after-sms")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_unmask_past_the_limit_shows_why(district, page_factory):
    member = make_member(district.union_a1, "甲一会员")
    page = page_factory(DESKTOP)
    console_login(page, district.admin_a)
    with override_settings(CONSOLE_UNMASK_LIMIT=1):
        page.goto(f"/console/members/{member.pk}/")
        page.click("text=显示完整信息")
        page.wait_for_selector(".revealed")
        page.goto(f"/console/members/{member.pk}/")
        page.click("text=显示完整信息")
        page.wait_for_selector("#reveal-error")
    assert "过于频繁" in page.locator("#reveal-error").inner_text()
    assert member._id_number not in page.content()
    screenshot(page, "console-unmask-limit")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_higher_admin_resets_a_cadres_authenticator(district, page_factory):
    from conftest import console_totp_device

    console_totp_device(district.admin_a1)
    page = page_factory(DESKTOP)
    console_login(page, district.admin_a)
    page.goto("/console/cadres/")
    row = page.locator("tr", has_text="甲一主席")
    assert page.locator("tr", has_text="甲管理员").locator("text=重置动态验证码").count() == 0  # not oneself
    page.once("dialog", lambda d: d.accept())
    row.locator("text=重置动态验证码").click()
    page.wait_for_selector(".alert-ok")
    assert not TOTPDevice.objects.filter(user=district.admin_a1).exists()
    screenshot(page, "console-cadres-2fa-reset")
