"""The console's sign-in (issue 13): a password-made session, a TOTP second factor for admin cadres,
and a per-cadre limit on unmasked views."""

from __future__ import annotations

import base64
import re

import pytest
from django.test import override_settings
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SmsOutbox
from conftest import PASSWORD, console_totp_device, make_member, next_totp_code, plain_force_login
from core.errors import Throttled
from core.models import AuditLog
from members import unmask
from orgs.models import CadreRole

pytestmark = pytest.mark.django_db

LOGIN = "/console/login/"
CODE = "/console/login/code/"


def sms_sign_in(client, user) -> None:
    """Sign in on the member end with an SMS code, as a member would."""
    client.post("/m/login/", {"tab": "sms", "phone": user.phone, "action": "send_code"})
    text = SmsOutbox.objects.filter(phone_hash=user.phone_hash).order_by("-id").first().text
    code = re.search(r"\d{6}", text).group(0)
    r = client.post("/m/login/", {"tab": "sms", "phone": user.phone, "code": code, "action": "login"})
    assert r.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def password_sign_in(client, user):
    return client.post(LOGIN, {"phone": user.phone, "password": PASSWORD})


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


# --- the session must be made by the console's password login ----------------------------------


@pytest.mark.parametrize("who", ["staff_a", "admin_a"])
def test_an_sms_session_cannot_open_the_console(client, district, who):
    cadre = getattr(district, who)
    sms_sign_in(client, cadre)
    for url in (reverse("console:home"), reverse("console:members"), reverse("console:cadres")):
        r = client.get(url)
        assert r.status_code == 302, url
        assert r["Location"].startswith(LOGIN + "?next=")
    page = client.get(LOGIN)
    assert page.status_code == 200
    assert "短信验证码登录的账号不能直接进入" in page.content.decode()


def test_an_sms_login_over_a_console_session_drops_its_proofs(client, district):
    """login() keeps the session's data for the same person: the SMS login must clear it."""
    cadre = district.staff_a
    password_sign_in(client, cadre)
    assert client.get(reverse("console:home")).status_code == 200
    sms_sign_in(client, cadre)
    assert client.get(reverse("console:home")).status_code == 302


def test_a_session_from_any_other_login_is_refused(client, district):
    plain_force_login(client, district.staff_a)
    assert client.get(reverse("console:home"))["Location"].startswith(LOGIN)


def test_a_staff_cadre_needs_the_password_but_no_code(client, district):
    r = password_sign_in(client, district.staff_a)
    assert r.status_code == 302 and r["Location"] == reverse("console:home")
    assert client.get(reverse("console:home")).status_code == 200
    assert client.get(CODE)["Location"] == reverse("console:home")
    assert not TOTPDevice.objects.filter(user=district.staff_a).exists()


# --- admins: the TOTP step ---------------------------------------------------------------------


def test_a_password_only_admin_is_sent_to_the_code_step(client, district):
    r = password_sign_in(client, district.admin_a)
    assert r.status_code == 302 and r["Location"] == CODE
    for url in (reverse("console:home"), reverse("console:members")):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith(CODE + "?next=")
    # The login page does not loop back to the form: it sends the half-signed-in admin on.
    assert client.get(LOGIN)["Location"] == CODE


def test_the_next_page_survives_both_steps(client, district):
    device = console_totp_device(district.admin_a)
    members = reverse("console:members")
    r = client.post(LOGIN, {"phone": district.admin_a.phone, "password": PASSWORD, "next": members})
    assert r["Location"] == f"{CODE}?next=%2Fconsole%2Fmembers%2F"
    r = client.post(CODE, {"code": next_totp_code(device), "next": members})
    assert r.status_code == 302 and r["Location"] == members


def test_an_admin_without_a_device_enrols_with_a_qr_code_then_gets_in(client, district):
    admin = district.admin_a
    password_sign_in(client, admin)
    page = client.get(CODE)
    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert "<svg" in html and "http" not in html.split("<svg", 1)[1].split("</svg>", 1)[0].replace(
        "http://www.w3.org/2000/svg", ""
    )
    device = TOTPDevice.objects.get(user=admin)
    assert not device.confirmed
    shown_key = re.search(r'id="totp-key">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    assert base64.b32decode(shown_key + "=" * (-len(shown_key) % 8)) == device.bin_key
    # Reloading keeps the same secret (the cadre may already have scanned it).
    client.get(CODE)
    assert TOTPDevice.objects.filter(user=admin).count() == 1

    r = client.post(CODE, {"code": f"{totp(device.bin_key):06d}"})
    assert r.status_code == 302 and r["Location"] == reverse("console:home")
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("console:home")).status_code == 200


def test_an_enrolled_admin_enters_the_code_after_the_password(client, district):
    admin = district.admin_a
    device = TOTPDevice.objects.create(user=admin, name="console", confirmed=True)
    password_sign_in(client, admin)
    html = client.get(CODE).content.decode()
    assert "<svg" not in html and "totp-key" not in html  # no secret shown once enrolled
    r = client.post(CODE, {"code": f"{totp(device.bin_key):06d}"})
    assert r.status_code == 302
    assert client.get(reverse("console:members")).status_code == 200


def test_a_wrong_code_is_shown_beside_the_field_and_backs_off(client, district):
    admin = district.admin_a
    device = TOTPDevice.objects.create(user=admin, name="console", confirmed=True)
    password_sign_in(client, admin)
    right = f"{totp(device.bin_key):06d}"
    r = client.post(CODE, {"code": wrong(right)})
    assert r.status_code == 422
    html = r.content.decode()
    assert re.search(r'class="field has-error">\s*<label for="id_code">', html)
    assert "验证码不正确" in html
    assert client.get(reverse("console:home")).status_code == 302
    # Straight after a wrong code even the right one is refused: the library's back-off.
    r = client.post(CODE, {"code": right})
    assert r.status_code == 429
    assert "错误次数过多" in r.content.decode()
    assert client.get(reverse("console:home")).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 1 and device.last_t == -1


def test_a_code_is_not_accepted_twice(client, district):
    admin = district.admin_a
    device = TOTPDevice.objects.create(user=admin, name="console", confirmed=True)
    code = f"{totp(device.bin_key):06d}"
    password_sign_in(client, admin)
    assert client.post(CODE, {"code": code}).status_code == 302
    client.post(reverse("console:logout"))
    password_sign_in(client, admin)
    assert client.post(CODE, {"code": code}).status_code == 422


def test_the_code_step_needs_the_password_first(client, district):
    sms_sign_in(client, district.admin_a)
    assert client.get(CODE)["Location"] == LOGIN
    device = console_totp_device(district.admin_a)
    r = client.post(CODE, {"code": f"{totp(device.bin_key):06d}"})
    assert r["Location"] == LOGIN
    assert client.get(reverse("console:home")).status_code == 302


# --- resetting another cadre's second factor ---------------------------------------------------


def test_a_higher_admin_resets_a_cadres_device_and_it_is_audited(client, district):
    target = district.admin_a1
    console_totp_device(target)
    role = CadreRole.objects.get(user=target)
    client.force_login(district.admin_a)
    r = client.post(reverse("console:twofactor_reset", args=[role.pk]), {"org": district.street_a.pk})
    assert r.status_code == 302 and "twofactor_reset=" in r["Location"]
    assert not TOTPDevice.objects.filter(user=target).exists()
    row = AuditLog.objects.get(action="twofactor.reset")
    assert row.actor == district.admin_a and row.target_id == str(target.pk)
    # The next sign-in enrols anew.
    client.post(reverse("console:logout"))
    password_sign_in(client, target)
    assert "totp-key" in client.get(CODE).content.decode()


def test_reset_outside_the_subtree_is_404_and_self_reset_is_refused(client, district):
    console_totp_device(district.admin_b)
    client.force_login(district.admin_a)
    other = CadreRole.objects.get(user=district.admin_b)
    assert client.post(reverse("console:twofactor_reset", args=[other.pk])).status_code == 404
    own = CadreRole.objects.get(user=district.admin_a)
    r = client.post(reverse("console:twofactor_reset", args=[own.pk]), {"org": district.street_a.pk})
    assert r.status_code == 422 and "不能重置自己的动态验证码" in r.content.decode()
    assert TOTPDevice.objects.filter(user=district.admin_b).exists()
    assert TOTPDevice.objects.filter(user=district.admin_a).exists()
    assert not AuditLog.objects.filter(action="twofactor.reset").exists()


def test_a_staff_cadre_cannot_reset(client, district):
    console_totp_device(district.admin_a1)
    client.force_login(district.staff_a)
    role = CadreRole.objects.get(user=district.admin_a1)
    assert client.post(reverse("console:twofactor_reset", args=[role.pk])).status_code == 404
    assert TOTPDevice.objects.filter(user=district.admin_a1).exists()


# --- unmask limit ------------------------------------------------------------------------------


def test_the_31st_unmask_in_an_hour_is_refused_without_an_audit_row(client, district):
    member = make_member(district.union_a1, "甲一会员")
    client.force_login(district.staff_a)
    url = reverse("console:member_reveal", args=[member.pk])
    lim, _win = unmask.limits()
    assert lim == 30
    for _ in range(lim):
        r = client.post(url)
        assert r.status_code == 200 and member._id_number in r.content.decode()
    assert AuditLog.objects.filter(action="pii.view").count() == lim
    r = client.post(url)
    html = r.content.decode()
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1
    assert member._id_number not in html
    assert "查看完整信息过于频繁" in html and 'id="reveal-error"' in html
    assert AuditLog.objects.filter(action="pii.view").count() == lim
    assert AuditLog.objects.filter(action="pii.view_refused").count() == 1
    client.post(url)  # a further refusal is not audited again
    assert AuditLog.objects.filter(action="pii.view_refused").count() == 1


def test_the_unmask_limit_is_per_cadre_and_per_window(district):
    now = 7200.0 * 1000
    with override_settings(CONSOLE_UNMASK_LIMIT=2):
        for _ in range(2):
            unmask.take_slot(district.admin_a, now=now)
        with pytest.raises(Throttled):
            unmask.take_slot(district.admin_a, now=now + 10)
        unmask.take_slot(district.staff_a, now=now)  # another cadre has views of their own
        unmask.take_slot(district.admin_a, now=now + 3600)  # the next window starts afresh


def test_an_out_of_scope_reveal_spends_no_view(client, district):
    other = make_member(district.union_b1, "乙一会员")
    client.force_login(district.staff_a)
    with override_settings(CONSOLE_UNMASK_LIMIT=1):
        assert client.post(reverse("console:member_reveal", args=[other.pk])).status_code == 404
        mine = make_member(district.union_a1, "甲一会员")
        assert client.post(reverse("console:member_reveal", args=[mine.pk])).status_code == 200


def test_next_totp_code_helper_survives_two_sign_ins_in_one_step(client, district):
    """conftest.console_login signs the same admin in twice within 30 s in several browser tests."""
    device = console_totp_device(district.admin_a)
    for _ in range(2):
        client.post(reverse("console:logout"))
        password_sign_in(client, district.admin_a)
        assert client.post(CODE, {"code": next_totp_code(device)}).status_code == 302
