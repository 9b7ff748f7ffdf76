"""The console's sign-in strength: a password-made session, and a TOTP second factor for admin cadres.

The member end (/m/) signs people in by SMS code and shares the Django session with the console,
so "signed in" alone says nothing about how. The console password login records the method in the
session (`mark_password_sign_in`); every other login clears it, and clears a verified second factor
with it (`forget_sign_in`, connected to `user_logged_in` by the console's AppConfig), so an SMS
login never inherits the strength of an earlier console session.

Admin cadres (a CadreRole "admin" on an active org) can unmask ID numbers and phones and manage
cadres, so they also need a TOTP device (django-otp's TOTPDevice: its key, its replay guard
`last_t` and its exponential back-off on wrong codes are the library's). An admin without a
confirmed device enrols one right after the password; later sign-ins ask for the 6-digit code.
"""

from __future__ import annotations

import base64
import math
from urllib.parse import quote, urlencode

import django_otp
import segno
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import audit
from core.errors import Invalid, NotFound, Throttled
from orgs import scoping
from orgs.models import CadreRole

AUTH_METHOD_KEY = "auth_method"
PASSWORD = "password"
DEVICE_NAME = "console"


class TwoFactorErrors:
    INVALID_CODE = "invalid_totp_code"
    TOO_MANY_CODES = "too_many_totp_attempts"
    CANNOT_RESET_SELF = "cannot_reset_own_second_factor"


# --- how the session was made ------------------------------------------------------------------


def mark_password_sign_in(request) -> None:
    """Call right after django.contrib.auth.login() in a password login that guards the console."""
    request.session[AUTH_METHOD_KEY] = PASSWORD


def signed_in_by_password(request) -> bool:
    return request.session.get(AUTH_METHOD_KEY) == PASSWORD


def forget_sign_in(sender, request, user, **kwargs) -> None:
    """user_logged_in receiver: a new login starts with no proven method and no second factor.

    login() keeps the session's data when the same person signs in again, so without this an SMS
    login on /m/ over an old console session would keep its "password" and its verified device."""
    session = getattr(request, "session", None)
    if session is None:
        return
    session.pop(AUTH_METHOD_KEY, None)
    session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
    if hasattr(user, "otp_device"):
        user.otp_device = None


def needs_second_factor(user) -> bool:
    return scoping.is_admin_cadre(user)


def is_verified(request) -> bool:
    """The session passed the second factor (OTPMiddleware loads the device from the session)."""
    check = getattr(request.user, "is_verified", None)
    return bool(check and check())


def console_ready(request) -> bool:
    """A password-made session, plus the second factor for admins: what every console page needs."""
    if not signed_in_by_password(request):
        return False
    return not needs_second_factor(request.user) or is_verified(request)


# --- devices -----------------------------------------------------------------------------------


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("id").first()


def enrolment_device(user) -> TOTPDevice:
    """The user's unconfirmed device, made once: reloading the enrolment page keeps the same secret
    (the cadre may already have scanned it)."""
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def manual_key(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for authenticator apps without a camera."""
    raw = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def otpauth_uri(device: TOTPDevice, user) -> str:
    """Key URI for authenticator apps. TOTPDevice.config_url labels the account with the username,
    which here is the phone's blind index: meaningless to people, so the masked phone instead."""
    issuer = str(getattr(settings, "OTP_TOTP_ISSUER", None) or settings.SITE_NAME).replace(":", "")
    label = quote(f"{issuer}:{user.phone_masked}")
    params = {
        "secret": base64.b32encode(device.bin_key).decode().rstrip("="),
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": device.digits,
        "period": device.step,
    }
    return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote)}"


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG (no external QR service: the secret must not leave the server)."""
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#1f2329", light="#ffffff")


def verify_code(request, device: TOTPDevice, code: object) -> None:
    """Check a 6-digit code against the device; on success confirm it (enrolment) and mark the
    session verified (django_otp.login). Wrong codes back off exponentially (the library's
    ThrottlingMixin); while backing off, even a right code is refused.

    Call it outside any transaction: a wrong try's back-off must commit before the error is raised."""
    token = "".join(str(code or "").split())
    with transaction.atomic():
        # Locked, so two wrong codes sent at once both count and cannot both slip under the back-off.
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user_id=request.user.pk)
        allowed, info = device.verify_is_allowed()
        ok = False
        if allowed and len(token) == device.digits and token.isdigit():
            ok = device.verify_token(token)
        elif allowed:
            device.throttle_increment(commit=True)  # a malformed code is a wrong code
        if ok and not device.confirmed:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            # Other half-done enrolments of this user are dropped: one secret is live.
            TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
    if not allowed:
        wait = math.ceil(((info or {}).get("locked_until", timezone.now()) - timezone.now()).total_seconds())
        raise Throttled(
            TwoFactorErrors.TOO_MANY_CODES,
            _("验证码错误次数过多，请%(seconds)s秒后再试") % {"seconds": max(1, wait)},
            retry_after=max(1, wait),
        )
    if not ok:
        msg = _("验证码不正确，请输入验证器应用当前显示的6位数字")
        raise Invalid(TwoFactorErrors.INVALID_CODE, msg, fields={"code": msg})
    django_otp.login(request, device)


# --- reset by a higher admin -------------------------------------------------------------------


def reset_second_factor(actor, cadre: CadreRole, *, ip: str | None = None) -> int:
    """Remove every TOTP device of the cadre's user: their next console sign-in enrols anew (a lost
    phone). Only an admin whose scope covers the role may do it, never for themself (that would let
    a stolen password replace the device it is meant to be checked against). Returns the devices
    removed."""
    if not scoping.covers(actor, cadre.org, admin=True):
        raise NotFound(_("未找到该干部"))
    if cadre.user_id == getattr(actor, "pk", None):
        msg = _("不能重置自己的动态验证码，请由上级管理员办理")
        raise Invalid(TwoFactorErrors.CANNOT_RESET_SELF, msg)
    with transaction.atomic():
        removed, _details = TOTPDevice.objects.filter(user_id=cadre.user_id).delete()
        audit.record(
            actor,
            "twofactor.reset",
            org=cadre.org,
            target=cadre.user,
            summary=f"{cadre.user.name} · {cadre.org.name}",
            data={"devices": removed, "role": cadre.role},
            ip=ip,
        )
    return removed
