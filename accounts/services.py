"""Sign-in, tokens, SMS codes and login throttling."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import phones, pii, sql
from core.errors import DomainError, Invalid, Throttled

from .models import ApiToken, LoginFailure, SmsCode, User
from .sms import SmsUnavailable, get_backend

FAILURE_WINDOW = dt.timedelta(minutes=15)
PHONE_FAILURE_LIMIT = 5
# Generous per address: a whole workplace signs in through one NAT.
IP_FAILURE_LIMIT = 100
SMS_RESEND_SECONDS = 60
SMS_DAILY_LIMIT = 10
SMS_CODE_TTL = dt.timedelta(minutes=10)
SMS_MAX_ATTEMPTS = 5


class AuthErrors:
    INVALID_CREDENTIALS = "invalid_credentials"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    INVALID_CODE = "invalid_code"
    SMS_TOO_SOON = "sms_too_soon"


def _key(kind: str, value: str) -> str:
    return pii.blind_index(kind, value)


def _retry_after(qs, limit: int) -> int | None:
    """Seconds until the window holds fewer than `limit` failures, or None when not throttled."""
    since = timezone.now() - FAILURE_WINDOW
    times = list(qs.filter(at__gte=since).order_by("-at").values_list("at", flat=True)[:limit])
    if len(times) < limit:
        return None
    oldest_counted = times[-1]
    return int((oldest_counted + FAILURE_WINDOW - timezone.now()).total_seconds()) + 1


def check_login_throttle(phone: str, ip: str | None) -> None:
    wait = _retry_after(LoginFailure.objects.filter(phone_key=_key("login-phone", phone)), PHONE_FAILURE_LIMIT)
    if wait is None and ip:
        wait = _retry_after(LoginFailure.objects.filter(ip_key=_key("login-ip", ip)), IP_FAILURE_LIMIT)
    if wait is not None:
        raise Throttled(AuthErrors.TOO_MANY_ATTEMPTS, _("登录失败次数过多，请稍后再试"), retry_after=wait)


def record_login_failure(phone: str, ip: str | None) -> None:
    LoginFailure.objects.create(phone_key=_key("login-phone", phone), ip_key=_key("login-ip", ip or "-"))


def login_with_password(request, phone: str, password: str, ip: str | None) -> User:
    """Check throttles, then the password; a failure is counted per phone and per address."""
    phone = phones.normalize(phone)
    check_login_throttle(phone, ip)
    user = authenticate(request, phone=phone, password=password)
    if user is None:
        record_login_failure(phone, ip)
        raise DomainError(AuthErrors.INVALID_CREDENTIALS, _("手机号或密码不正确"), status=401)
    return user


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: User) -> tuple[str, dt.datetime]:
    raw = secrets.token_urlsafe(32)
    expires = timezone.now() + dt.timedelta(hours=settings.API_TOKEN_TTL_HOURS)
    ApiToken.objects.create(key_hash=token_hash(raw), user=user, expires_at=expires)
    return raw, expires


# Every API call authenticates, so this is the hottest query of the platform: one hand-written
# statement (the ORM spends more time compiling it than the database spends answering) that also
# brings the person's membership summary, which /me and most member operations need anyway.
_TOKEN_SQL = """
SELECT u.id, u.name, u.phone_enc, u.date_joined, m.certified_at IS NOT NULL, m.org_id, o.name, pa.balance, o.path, pa.id,
       ro.path, r.role, r.org_id
FROM accounts_apitoken t
JOIN accounts_user u ON u.id = t.user_id
LEFT JOIN points_account pa ON pa.user_id = u.id
LEFT JOIN members_member m ON m.user_id = u.id
LEFT JOIN orgs_org o ON o.id = m.org_id
LEFT JOIN orgs_cadrerole r ON r.user_id = u.id
LEFT JOIN orgs_org ro ON ro.id = r.org_id AND ro.is_active
WHERE t.key_hash = %s AND t.expires_at > %s AND u.is_active
"""
_USER_FIELDS = ["id", "name", "phone_enc", "date_joined"]


@dataclasses.dataclass(frozen=True, slots=True)
class MembershipSummary:
    certified: bool
    org_id: int | None
    org_name: str | None
    org_path: str | None


def user_for_token(raw: str) -> User | None:
    """The active user behind an unexpired bearer token, with `.membership` (a MembershipSummary),
    `.points_balance` and the cadre roles loaded, all in one round trip."""
    rows = sql.fetchall(_TOKEN_SQL, [token_hash(raw), connection.ops.adapt_datetimefield_value(timezone.now())])
    if not rows:
        return None
    row = rows[0]
    user = User.from_db(connection.alias, _USER_FIELDS, [row[0], row[1], row[2], sql.aware(row[3])])
    user.is_active = True
    user.membership = MembershipSummary(bool(row[4]) and row[5] is not None, row[5], row[6], row[8])
    user.points_balance = row[7] or 0
    user.points_account_id = row[9]
    # One row per cadre role: the same statement answers orgs.scoping.cadre_roles for this request.
    user._cadre_roles_cache = sorted((path, role, org_id) for *_, path, role, org_id in rows if path is not None)
    return user


# --- SMS codes ---------------------------------------------------------------------------


def send_login_code(phone_raw: object) -> None:
    """Send a 6-digit code; at most one a minute and ten a day per phone."""
    try:
        phone = phones.validate(phone_raw)
    except phones.PhoneError as e:
        raise Invalid(e.code, e.message, fields={"phone": e.message}) from None
    h = pii.phone_index(phone)
    now = timezone.now()
    last = SmsCode.objects.filter(phone_hash=h).order_by("-created_at").first()
    if last and (now - last.created_at).total_seconds() < SMS_RESEND_SECONDS:
        wait = SMS_RESEND_SECONDS - int((now - last.created_at).total_seconds())
        raise Throttled(
            AuthErrors.SMS_TOO_SOON, _("验证码已发送，请%(seconds)s秒后再试") % {"seconds": wait}, retry_after=wait
        )
    if SmsCode.objects.filter(phone_hash=h, created_at__gte=now - dt.timedelta(days=1)).count() >= SMS_DAILY_LIMIT:
        raise Throttled(AuthErrors.SMS_TOO_SOON, _("今天的验证码发送次数已用完，请明天再试"), retry_after=3600)
    code = f"{secrets.randbelow(1_000_000):06d}"
    sms = SmsCode.objects.create(phone_hash=h, code_hash=token_hash(h + code), expires_at=now + SMS_CODE_TTL)
    try:
        get_backend().send_code(phone, code)
    except SmsUnavailable:
        sms.delete()  # never delivered: it must not hold back a retry for a minute
        raise


def verify_login_code(phone_raw: object, code: object) -> str:
    """Consume a valid code for the phone and return the normalized phone; five wrong tries burn it.

    Call it outside any transaction: a wrong try is committed before the error is raised.
    """
    try:
        phone = phones.validate(phone_raw)
    except phones.PhoneError as e:
        raise Invalid(e.code, e.message, fields={"phone": e.message}) from None
    h = pii.phone_index(phone)
    with transaction.atomic():
        sms = (
            SmsCode.objects.select_for_update()
            .filter(phone_hash=h, used_at__isnull=True, expires_at__gt=timezone.now())
            .order_by("-created_at")
            .first()
        )
        ok = False
        if sms is not None and sms.attempts < SMS_MAX_ATTEMPTS:
            if secrets.compare_digest(sms.code_hash, token_hash(h + str(code or "").strip())):
                sms.used_at = timezone.now()
                sms.save(update_fields=["used_at"])
                ok = True
            else:
                sms.attempts += 1
                sms.save(update_fields=["attempts"])
    if not ok:
        raise Invalid(AuthErrors.INVALID_CODE, _("验证码不正确或已过期"), fields={"code": _("验证码不正确或已过期")})
    return phone


def sign_in_by_code(phone_raw: object, code: object, name: str = "") -> tuple[User, bool]:
    """Verify the code; return (user, created). A new phone becomes a follower; a roster account is claimed."""
    phone = verify_login_code(phone_raw, code)
    with transaction.atomic():
        user = User.objects.filter(phone_hash=pii.phone_index(phone)).first()
        created = user is None
        if created:
            user = User.objects.create_user(phone, name=name.strip()[:50])
        if user.claimed_at is None:
            user.claimed_at = timezone.now()
            user.save(update_fields=["claimed_at"])
    return user, created
