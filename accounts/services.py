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

from . import ratelimit
from .models import ApiToken, SmsCode, User
from .sms import SmsUnavailable, get_backend

FAILURE_WINDOW = 15 * 60  # seconds
PHONE_FAILURE_LIMIT = 5
# Generous per address: a whole workplace signs in through one NAT.
IP_FAILURE_LIMIT = 100
SMS_RESEND_SECONDS = 60
SMS_DAILY_LIMIT = 10
# Per client address an hour: a workplace behind one NAT signing up together still gets through.
SMS_IP_HOURLY_LIMIT = 20
# Everyone together an hour: what an SMS bombing can cost at most.
SMS_GLOBAL_HOURLY_LIMIT = 2000
SMS_CODE_TTL = dt.timedelta(minutes=10)
SMS_MAX_ATTEMPTS = 5


class AuthErrors:
    INVALID_CREDENTIALS = "invalid_credentials"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    INVALID_CODE = "invalid_code"
    SMS_TOO_SOON = "sms_too_soon"
    RATE_LIMITED = "rate_limited"


def _key(kind: str, value: str) -> str:
    return pii.blind_index(kind, value)


def _login_limits(phone: str, ip: str | None) -> list[ratelimit.Limit]:
    limits = [ratelimit.Limit("login:phone:" + _key("login-phone", phone), PHONE_FAILURE_LIMIT, FAILURE_WINDOW)]
    if ip:
        limits.append(ratelimit.Limit("login:ip:" + _key("login-ip", ip), IP_FAILURE_LIMIT, FAILURE_WINDOW))
    return limits


def login_with_password(request, phone: str, password: str, ip: str | None) -> User:
    """Check the password unless the phone (5) or the address (100) has used up its failures in
    15 minutes (429 too_many_attempts, Retry-After until that window ends).

    The attempt is counted before the password is checked and given back when it was right: a
    count taken after the check would let parallel attempts all pass the check first, so that
    twenty simultaneous guesses would all be tried."""
    phone = phones.normalize(phone)
    try:
        with transaction.atomic():
            taken = ratelimit.take(_login_limits(phone, ip))
    except ratelimit.LimitReached as e:
        raise Throttled(
            AuthErrors.TOO_MANY_ATTEMPTS, _("登录失败次数过多，请稍后再试"), retry_after=e.retry_after()
        ) from None
    user = authenticate(request, phone=phone, password=password)
    if user is None:
        raise DomainError(AuthErrors.INVALID_CREDENTIALS, _("手机号或密码不正确"), status=401)
    with transaction.atomic():
        ratelimit.give_back(taken)
    return user


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(user: User) -> tuple[str, dt.datetime]:
    raw = secrets.token_urlsafe(32)
    expires = timezone.now() + dt.timedelta(hours=settings.API_TOKEN_TTL_HOURS)
    ApiToken.objects.create(key_hash=token_hash(raw), user=user, expires_at=expires)
    return raw, expires


def revoke_token(raw: str) -> bool:
    """End one bearer token at once: its row goes, so the next lookup (plain SQL) finds nothing."""
    deleted, _ = ApiToken.objects.filter(key_hash=token_hash(raw)).delete()
    return deleted > 0


def revoke_all_tokens(user: User) -> int:
    """End every bearer token of a person (a new password does this by itself: User.save)."""
    deleted, _ = ApiToken.objects.filter(user_id=user.pk).delete()
    return deleted


def purge_expired(now: dt.datetime | None = None) -> dict[str, int]:
    """Delete what can no longer be used: expired tokens, SMS codes past their expiry, rate-limit
    counters whose window has ended. Idempotent; run hourly by run_schedule (`purge_accounts`)."""
    now = now or timezone.now()
    tokens, _ = ApiToken.objects.filter(expires_at__lte=now).delete()
    codes, _ = SmsCode.objects.filter(expires_at__lte=now).delete()
    counters = ratelimit.purge(int(now.timestamp() * 1000))
    return {"tokens": tokens, "sms_codes": codes, "rate_counters": counters}


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


def _sms_limits(phone_hash: str, ip: str | None) -> list[ratelimit.Limit]:
    """In the order a refusal is explained: the most specific first."""
    return [
        ratelimit.Limit("sms:resend:" + phone_hash, 1, SMS_RESEND_SECONDS),
        ratelimit.Limit("sms:day:" + phone_hash, SMS_DAILY_LIMIT, 24 * 3600),
        *_sms_shared_limits(ip),
    ]


def _sms_shared_limits(ip: str | None) -> list[ratelimit.Limit]:
    """The caps every code sent counts against, whatever it is for."""
    limits = []
    if ip:
        per_ip = int(getattr(settings, "UNIONHOME_SMS_IP_HOURLY_LIMIT", SMS_IP_HOURLY_LIMIT))
        limits.append(ratelimit.Limit("sms:ip:" + _key("sms-ip", ip), per_ip, 3600))
    overall = int(getattr(settings, "UNIONHOME_SMS_GLOBAL_HOURLY_LIMIT", SMS_GLOBAL_HOURLY_LIMIT))
    limits.append(ratelimit.Limit("sms:all", overall, 3600))
    return limits


def _sms_refusal(e: ratelimit.LimitReached) -> Throttled:
    first = e.first()
    wait = e.retry_after(first)
    kind = first.limit.key.split(":")[1]
    if kind == "resend":
        return Throttled(
            AuthErrors.SMS_TOO_SOON, _("验证码已发送，请%(seconds)s秒后再试") % {"seconds": wait}, retry_after=wait
        )
    if kind == "day":
        return Throttled(AuthErrors.SMS_TOO_SOON, _("今天的验证码发送次数已用完，请明天再试"), retry_after=wait)
    if kind == "ip":
        return Throttled(AuthErrors.RATE_LIMITED, _("当前网络获取验证码过于频繁，请稍后再试"), retry_after=wait)
    return Throttled(AuthErrors.RATE_LIMITED, _("短信发送繁忙，请稍后再试"), retry_after=wait)


def claim_sms_allowance(ip: str | None = None) -> list[ratelimit.Taken]:
    """Count one SMS about to be sent by another flow (e.g. certification codes) against the
    per-address and overall hourly caps; Throttled (429) when over. Pass what it returns to
    `return_sms_allowance` when the gateway then refuses the message."""
    try:
        with transaction.atomic():
            return ratelimit.take(_sms_shared_limits(ip))
    except ratelimit.LimitReached as e:
        raise _sms_refusal(e) from None


def return_sms_allowance(taken: list[ratelimit.Taken]) -> None:
    with transaction.atomic():
        ratelimit.give_back(taken)


def send_login_code(phone_raw: object, ip: str | None = None) -> None:
    """Send a 6-digit code: at most one a minute and ten a day per phone, `UNIONHOME_SMS_IP_HOURLY_LIMIT`
    an hour per client address (when given) and `UNIONHOME_SMS_GLOBAL_HOURLY_LIMIT` an hour in all.

    The limits are counted and the code stored in one transaction, before sending: of parallel
    requests for one phone exactly one gets past the minute (ratelimit.take). A refused request
    counts against nothing; a send the gateway refuses gives its counts back."""
    try:
        phone = phones.validate(phone_raw)
    except phones.PhoneError as e:
        raise Invalid(e.code, e.message, fields={"phone": e.message}) from None
    h = pii.phone_index(phone)
    code = f"{secrets.randbelow(1_000_000):06d}"
    try:
        with transaction.atomic():
            taken = ratelimit.take(_sms_limits(h, ip))
            sms = SmsCode.objects.create(
                phone_hash=h, code_hash=token_hash(h + code), expires_at=timezone.now() + SMS_CODE_TTL
            )
    except ratelimit.LimitReached as e:
        raise _sms_refusal(e) from None
    # Outside the transaction: a gateway call of up to 5 s must not hold the counters' rows.
    try:
        get_backend().send_code(phone, code)
    except SmsUnavailable:
        with transaction.atomic():  # never delivered: it must not hold back a retry for a minute
            sms.delete()
            ratelimit.give_back(taken)
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
