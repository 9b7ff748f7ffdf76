"""实名认证: a signed-in person proves they are a roster row, and the row's account becomes theirs.

A name and an ID number are printed on many workplace lists, so knowing them proves nothing.
A roster row whose account was never used is handed over only to whoever reads the code sent
to the roster's own phone (`start` then `complete`), or to whom a cadre of the row's union
vouches when that phone is dead (`request_review`, `decide_review`). Every other outcome — no
row, another name, an account already in use — is one answer, `certification_failed`, after
the same queries and crypto and no sooner than a fixed floor, so the form is no oracle of who
is on which roster. Tries of a name and ID number are limited per account, per ID number
(5 a day each) and, generously, per address.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import secrets
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiToken, SmsCode, User
from accounts.services import SMS_CODE_TTL, SMS_MAX_ATTEMPTS, token_hash
from accounts.sms import SmsUnavailable, get_backend
from core import audit, pii
from core.errors import DomainError, Invalid, Throttled
from orgs import scoping

from .models import CertificationReview, CertificationTry, JoinApplication, Member, RequestStatus
from .services import MemberErrors, _check_decision, _clean_id, _clean_name, _close, _locked, member_of

CERTIFICATION_FAILED = "certification_failed"
TOO_MANY_ATTEMPTS = "too_many_attempts"
REVIEW_PENDING = "review_pending"
ACCOUNT_IN_USE = "account_in_use"

TRY_WINDOW = dt.timedelta(days=1)
TRY_LIMIT = 5  # per account and per ID number tried, a day
IP_WINDOW = dt.timedelta(hours=1)


def _ip_limit() -> int:
    # Generous: a whole workplace certifies through one NAT on the day the union asks it to.
    return int(getattr(settings, "UNIONHOME_CERTIFY_IP_LIMIT", 300))


def _min_seconds() -> float:
    return float(getattr(settings, "UNIONHOME_CERTIFY_MIN_SECONDS", 0.3))


@dataclasses.dataclass(frozen=True, slots=True)
class CodeSent:
    phone_masked: str


def _failed(*, code_field: bool = False) -> Invalid:
    message = _("认证未通过：请核对姓名和身份证号。如仍无法认证，可以申请入会或联系所在工会。")
    if code_field:
        return Invalid(CERTIFICATION_FAILED, message, fields={"code": _("验证码不正确或已过期")})
    return Invalid(CERTIFICATION_FAILED, message)


def _pad(started: float) -> None:
    """Answer no sooner than the floor: a failure's cause must not show in its timing."""
    left = _min_seconds() - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)


@functools.cache
def _decoy_phone() -> bytes:
    return pii.encrypt("13800000000")


def _code_key(user: User, member_id: int) -> str:
    """Where the code lives in accounts' SmsCode table: bound to the asking account and the roster
    row, so it neither signs anyone in nor certifies another account."""
    return pii.blind_index("certify-code", f"{user.pk}:{member_id}")


def _same_name(typed: str, roster: str) -> bool:
    return secrets.compare_digest(pii.blind_index("certify-name", typed), pii.blind_index("certify-name", roster))


def _check_not_certified(user: User) -> Member | None:
    mine = member_of(user)
    if mine is not None and mine.certified:
        raise DomainError(MemberErrors.ALREADY_CERTIFIED, _("您已完成实名认证"))
    return mine


def _count_try(user: User, id_hash: str, ip: str | None) -> None:
    """Record the try, then count (committed first: of N parallel tries at most the limit pass,
    since the last of them to count sees every row). A refused try is taken back."""
    now = timezone.now()
    id_key = pii.blind_index("certify-id", id_hash)
    ip_key = pii.blind_index("certify-ip", ip or "-")
    row = CertificationTry.objects.create(user=user, id_key=id_key, ip_key=ip_key)
    day = now - TRY_WINDOW
    checks = [
        (CertificationTry.objects.filter(user=user, at__gte=day), TRY_LIMIT, TRY_WINDOW),
        (CertificationTry.objects.filter(id_key=id_key, at__gte=day), TRY_LIMIT, TRY_WINDOW),
    ]
    if ip:
        checks.append((CertificationTry.objects.filter(ip_key=ip_key, at__gte=now - IP_WINDOW), _ip_limit(), IP_WINDOW))
    for qs, limit, window in checks:
        times = list(qs.exclude(pk=row.pk).order_by("-at").values_list("at", flat=True)[:limit])
        if len(times) >= limit:
            row.delete()
            wait = int((times[-1] + window - timezone.now()).total_seconds()) + 1
            raise Throttled(TOO_MANY_ATTEMPTS, _("认证尝试次数过多，请明天再试或联系所在工会"), retry_after=wait)


def _lookup(id_hash: str, name: str, *, lock: bool = False) -> tuple[Member | None, bool, str]:
    """The roster row, whether the name matches, and its phone — the same queries and crypto
    whether or not there is a row."""
    qs = Member.objects.select_related("user")
    if lock:
        qs = qs.select_for_update(of=("self",))
    member = qs.filter(id_number_hash=id_hash).first()
    name_ok = _same_name(name, member.name if member is not None else "\x00")
    phone = pii.decrypt(member.phone_enc if member is not None else _decoy_phone())
    return member, name_ok, phone


def _unused(member: Member, user: User, mine: Member | None) -> bool:
    """A roster row nobody has used: its account never signed in, the row never certified, and
    the asker holds no membership of their own."""
    owner = member.user
    return owner.pk != user.pk and owner.claimed_at is None and member.certified_at is None and mine is None


def start(user: User, name: object, id_number: object, *, ip: str | None = None) -> CodeSent | Member:
    """Step one. A match with a never-used roster account sends a code to the roster phone
    (CodeSent); the person's own roster row (they signed in with its phone) is certified at once
    (the Member); anything else raises the one generic `certification_failed`."""
    name, id_number = _clean_name(name), _clean_id(id_number)
    mine = _check_not_certified(user)
    started = time.monotonic()
    id_hash = pii.id_number_index(id_number)
    _count_try(user, id_hash, ip)
    member, name_ok, phone = _lookup(id_hash, name)
    own = member is not None and name_ok and member.user_id == user.pk
    unused = member is not None and name_ok and _unused(member, user, mine)
    if own:
        return _certify_own(user, member)
    if not unused:
        _pad(started)
        raise _failed()
    key = _code_key(user, member.pk)
    code = f"{secrets.randbelow(1_000_000):06d}"
    with transaction.atomic():
        # A new code replaces any earlier one for the same account and row.
        SmsCode.objects.filter(phone_hash=key, used_at__isnull=True).update(used_at=timezone.now())
        sms = SmsCode.objects.create(
            phone_hash=key, code_hash=token_hash(key + code), expires_at=timezone.now() + SMS_CODE_TTL
        )
    try:
        get_backend().send_code(phone, code)
    except SmsUnavailable:
        sms.delete()
        raise
    audit.record(user, "member.certify_code", org=member.org, target=member, summary=pii.mask_phone(phone), ip=ip)
    _pad(started)
    return CodeSent(pii.mask_phone(phone))


@transaction.atomic
def _certify_own(user: User, member: Member) -> Member:
    updated = Member.objects.filter(pk=member.pk, user=user, certified_at__isnull=True).update(
        certified_at=timezone.now()
    )
    if not updated:
        raise DomainError(MemberErrors.ALREADY_CERTIFIED, _("您已完成实名认证"))
    member.refresh_from_db()
    audit.record(user, "member.certify", org=member.org, target=member, summary=member.name)
    return member


def complete(user: User, name: object, id_number: object, code: object, *, ip: str | None = None) -> Member:
    """Step two: the code from the roster phone hands the roster row (and its account) over.
    Any failure — wrong or spent code, other name or ID number — is the same `certification_failed`
    beside the code; five wrong codes burn it. Returns the member, whose `user` is now the login."""
    name, id_number = _clean_name(name), _clean_id(id_number)
    _check_not_certified(user)
    started = time.monotonic()
    typed = str(code or "").strip()
    done: Member | None = None
    with transaction.atomic():
        member, name_ok, _phone = _lookup(pii.id_number_index(id_number), name, lock=True)
        key = _code_key(user, member.pk if member is not None else 0)
        sms = (
            SmsCode.objects.select_for_update()
            .filter(phone_hash=key, used_at__isnull=True, expires_at__gt=timezone.now())
            .order_by("-created_at")
            .first()
        )
        code_ok = secrets.compare_digest(sms.code_hash if sms else "", token_hash(key + typed))
        if sms is not None and sms.attempts < SMS_MAX_ATTEMPTS and code_ok and name_ok:
            sms.used_at = timezone.now()
            sms.save(update_fields=["used_at"])
            done = _hand_over(user, member)
        elif sms is not None:
            sms.attempts += 1
            sms.save(update_fields=["attempts"])
    if done is None:
        _pad(started)
        raise _failed(code_field=True)
    audit.record(done.user, "member.certify", org=done.org, target=done, summary=done.name, ip=ip)
    return done


def _hand_over(user: User, member: Member) -> Member | None:
    """Certify the row for `user`, moving their login onto the row's never-used account. None when
    the account or the row has been used meanwhile (the caller holds the row's lock)."""
    mine = member_of(user)
    if mine is not None or member.certified_at is not None or member.user_id == user.pk:
        return None
    owner = User.objects.select_for_update().get(pk=member.user_id)
    if owner.claimed_at is not None:
        return None
    roster_account = _merge_into_roster_account(user, owner)
    member.certified_at = timezone.now()
    member.save(update_fields=["certified_at"])
    member.user = roster_account
    return member


def _merge_into_roster_account(follower: User, roster_account: User) -> User:
    """The roster knew this person under an old phone. Keep the roster account (its id is already
    referenced by the union) and move the follower's login — phone, password, tokens — onto it."""
    phone_enc, phone_hash, password = follower.phone_enc, follower.phone_hash, follower.password
    follower.phone_hash = f"merged:{follower.pk}:{roster_account.pk}"
    follower.is_active = False
    follower.set_unusable_password()
    follower.save(update_fields=["phone_hash", "is_active", "password"])
    claimed = User.objects.filter(pk=roster_account.pk, claimed_at__isnull=True).update(
        phone_enc=phone_enc, phone_hash=phone_hash, password=password, claimed_at=timezone.now()
    )
    if claimed != 1:  # the row lock makes this unreachable; the conditional update makes it certain
        raise DomainError(ACCOUNT_IN_USE, _("该名册账号已被使用"))
    roster_account.refresh_from_db()
    ApiToken.objects.filter(user=follower).update(user=roster_account)
    # A membership application filed before the roster match is answered by the match itself.
    JoinApplication.objects.filter(user=follower, status=RequestStatus.PENDING).update(status=RequestStatus.CANCELLED)
    CertificationReview.objects.filter(user=follower, status=RequestStatus.PENDING).update(
        status=RequestStatus.CANCELLED
    )
    return roster_account


# --- when the roster phone is dead: a cadre vouches ---------------------------------------------


def request_review(user: User, name: object, id_number: object, *, ip: str | None = None) -> CertificationReview:
    """Ask the row's union to approve instead of the code. Only after step one sent a code today
    for this account and row (so it says nothing step one did not); otherwise the generic failure."""
    name, id_number = _clean_name(name), _clean_id(id_number)
    mine = _check_not_certified(user)
    started = time.monotonic()
    member, name_ok, _phone = _lookup(pii.id_number_index(id_number), name)
    key = _code_key(user, member.pk if member is not None else 0)
    asked = SmsCode.objects.filter(phone_hash=key, created_at__gte=timezone.now() - TRY_WINDOW).exists()
    if not (member is not None and name_ok and asked and _unused(member, user, mine)):
        _pad(started)
        raise _failed()
    try:
        with transaction.atomic():
            review = CertificationReview.objects.create(user=user, member=member, org=member.org)
    except IntegrityError:
        raise DomainError(REVIEW_PENDING, _("您已有一份待审核的认证申请")) from None
    audit.record(user, "member.certify_review", org=member.org, target=review, summary=member.name, ip=ip)
    return review


def reviews_for(actor, status: str | None = RequestStatus.PENDING):
    """Certification reviews the cadre's subtree decides."""
    qs = CertificationReview.objects.select_related("org", "user", "member")
    qs = scoping.scoped(qs, actor, "org__path")
    return qs.filter(status=status) if status else qs


def reviews_of(user: User):
    return CertificationReview.objects.filter(user=user)[:10]


@transaction.atomic
def decide_review(
    actor, review_id: object, approve: bool, reason: str = "", *, ip: str | None = None
) -> CertificationReview:
    review = _locked(reviews_for(actor, None), review_id)
    reason = _check_decision(review, approve, reason)
    if approve:
        member = Member.objects.select_for_update().select_related("user", "org").get(pk=review.member_id)
        if _hand_over(review.user, member) is None:
            raise DomainError(ACCOUNT_IN_USE, _("该名册记录已被认证或其账号已在使用，不能通过"))
        audit.record(review.user, "member.certify", org=member.org, target=member, summary=member.name, ip=ip)
    _close(review, actor, approve, reason, timezone.now())
    action = "member.certify_review_approve" if approve else "member.certify_review_reject"
    audit.record(actor, action, org=review.org, target=review, summary=review.member.name, ip=ip)
    return review
