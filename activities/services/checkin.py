"""On-site check-in: the organizer's rotating QR code, or the organizer scanning a member's card.

The code on the organizer's screen changes every 30 seconds: `<window>-<HMAC(activity secret,
activity id + window)>`. A code of the current or the previous window is accepted (a scan that
straddles the change still works); an older one is `code_expired`, so a photo sent to a friend
who is not there stops working within a minute; anything not signed with the activity's secret
is `code_invalid`.

Checking in is allowed from 30 minutes before the start until the end, only for a confirmed
sign-up, once. The once-guarantee is the conditional `UPDATE … WHERE checked_in_at IS NULL`; the
activity's points for attending are paid in the same transaction, so two parallel scans can
neither check in twice nor pay twice. Points come from the activity org's budget; when it runs
dry the attendance still counts and the points wait (`pay_pending_rewards` pays them later).
An activity without its own points pays the union's earning rule for activity check-in, if any
(its caps apply; once per activity).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Forbidden, Invalid, NotFound
from points.models import EarnAction, MovementKind
from points.services import earning, ledger

from ..models import Activity, ActivityStatus, Signup, SignupStatus
from .errors import ActivityErrors

WINDOW_SECONDS = 30
EARLY = dt.timedelta(minutes=30)


def _window(at: dt.datetime) -> int:
    return int(at.timestamp()) // WINDOW_SECONDS


def _mac(activity: Activity, window: int) -> str:
    message = f"{activity.pk}:{window}".encode()
    return hmac.new(activity.checkin_secret.encode(), message, hashlib.sha256).hexdigest()[:16]


def rotating_code(activity: Activity, at: dt.datetime | None = None) -> tuple[str, int]:
    """(the code to show now, seconds until it changes)."""
    at = at or timezone.now()
    window = _window(at)
    return f"{window}-{_mac(activity, window)}", WINDOW_SECONDS - int(at.timestamp()) % WINDOW_SECONDS


def checkin_url(activity: Activity, code: str) -> str:
    """The member-end address the QR encodes (relative: pages make it absolute for their host)."""
    return f"/m/activities/{activity.pk}/checkin/?c={code}"


def check_code(activity: Activity, code: object, now: dt.datetime | None = None) -> None:
    """Accept a code of the current or the previous window; 422 code_expired / code_invalid otherwise."""
    now = now or timezone.now()
    text = str(code or "").strip()
    if "c=" in text:  # a scanner may hand over the whole link
        found = parse_qs(urlsplit(text).query).get("c")
        text = found[0].strip() if found else text
    window_text, _sep, mac = text.partition("-")
    invalid = Invalid(
        ActivityErrors.CODE_INVALID, _("签到码无效，请扫描活动现场的签到二维码"), fields={"code": _("无效")}
    )
    if not window_text.isdigit() or len(window_text) > 12 or len(mac) != 16:
        raise invalid
    window = int(window_text)
    if not hmac.compare_digest(mac, _mac(activity, window)):
        raise invalid
    current = _window(now)
    if window > current:
        raise invalid
    if window < current - 1:
        raise Invalid(
            ActivityErrors.CODE_EXPIRED, _("签到码已过期，请扫描现场屏幕上最新的二维码"), fields={"code": _("已过期")}
        )


def checkin_open_error(activity: Activity, now: dt.datetime) -> DomainError | None:
    if activity.status != ActivityStatus.PUBLISHED:
        return DomainError(ActivityErrors.CHECKIN_NOT_OPEN, _("活动未在进行中，不能签到"))
    if now < activity.starts_at - EARLY:
        return DomainError(ActivityErrors.CHECKIN_NOT_OPEN, _("签到将在活动开始前30分钟开放"))
    if now > activity.ends_at:
        return DomainError(ActivityErrors.CHECKIN_NOT_OPEN, _("活动已结束，签到已关闭"))
    return None


def check_in_by_code(user, activity_id: object, code: object) -> Signup:
    """The member scanned the organizer's screen. 409 checkin_not_open outside [start − 30 min,
    end]; 422 code_expired | code_invalid; 403 not_confirmed; 409 already_checked_in."""
    from .activities import activity_for_user

    activity = activity_for_user(user, activity_id)
    now = timezone.now()
    error = checkin_open_error(activity, now)
    if error is not None:
        raise error
    check_code(activity, code, now)
    return _check_in(activity, user.pk, "qr", now)


def _card_member(card_token: object):
    """The certified member a member-card QR names (the token members.services.card_token signs)."""
    from members.models import Member
    from members.services import _CARD_SALT

    text = str(card_token or "").strip()
    if "t=" in text and ("/" in text or text.startswith("?")):  # the whole link the card's QR encodes
        found = parse_qs(urlsplit(text).query).get("t")
        text = found[0].strip() if found else text
    try:
        data = signing.loads(text, salt=_CARD_SALT, max_age=settings.MEMBER_CARD_TTL_SECONDS)
    except signing.SignatureExpired:
        raise Invalid(
            ActivityErrors.CARD_EXPIRED,
            _("会员证二维码已过期，请会员刷新后重新出示"),
            fields={"card_token": _("已过期")},
        ) from None
    except signing.BadSignature:
        raise Invalid(
            ActivityErrors.CARD_INVALID, _("这不是有效的会员证二维码"), fields={"card_token": _("无效")}
        ) from None
    member = Member.objects.filter(pk=data.get("m") if isinstance(data, dict) else None).first()
    if member is None or not member.certified:
        raise Invalid(ActivityErrors.CARD_INVALID, _("该会员证无效"), fields={"card_token": _("无效")})
    return member


def check_in_by_card(actor, activity: Activity, card_token: object, *, ip: str | None = None) -> Signup:
    """The organizer (or a cadre of the org) scanned the member's card QR. Same rules as the
    rotating code; 422 card_expired | card_invalid for a bad card."""
    from .activities import can_manage, reaches

    if not can_manage(actor, activity):
        if reaches(actor, activity):
            raise Forbidden(ActivityErrors.NOT_ALLOWED, _("只有活动组织者或工会干部可以核验签到"))
        raise NotFound(_("未找到该活动"))
    now = timezone.now()
    error = checkin_open_error(activity, now)
    if error is not None:
        raise error
    member = _card_member(card_token)
    signup = _check_in(activity, member.user_id, "card", now)
    audit.record(
        actor,
        "activity.checkin_card",
        org=activity.org,
        target=activity,
        summary=f"{activity.title} · {member.name}",
        ip=ip,
    )
    return signup


def _check_in(activity: Activity, user_id: int, method: str, now: dt.datetime) -> Signup:
    with transaction.atomic():
        # The activity row first, like every transaction that touches an activity (signups.py).
        Activity.objects.filter(pk=activity.pk).update(checked_in_count=F("checked_in_count") + 1)
        done = Signup.objects.filter(
            activity_id=activity.pk, user_id=user_id, status=SignupStatus.CONFIRMED, checked_in_at__isnull=True
        ).update(checked_in_at=now, checkin_method=method)
        if not done:  # raising rolls the count back
            live = (
                Signup.objects.filter(activity_id=activity.pk, user_id=user_id)
                .exclude(status=SignupStatus.CANCELLED)
                .first()
            )
            if live is None:
                raise Forbidden(ActivityErrors.NOT_CONFIRMED, _("没有找到报名记录，报名成功的人才能签到"))
            if live.status != SignupStatus.CONFIRMED:
                raise Forbidden(ActivityErrors.NOT_CONFIRMED, _("您在候补名单中，尚未获得名额，不能签到"))
            at = timezone.localtime(live.checked_in_at).strftime("%H:%M")
            raise DomainError(ActivityErrors.ALREADY_CHECKED_IN, _("已于%(at)s签到，无需重复签到") % {"at": at})
        signup = Signup.objects.select_related("user").get(
            activity_id=activity.pk, user_id=user_id, status=SignupStatus.CONFIRMED
        )
        movement = _reward(activity, signup)
        if movement is not None:
            Signup.objects.filter(pk=signup.pk).update(reward=movement)
            signup.reward = movement
    return signup


def _reward(activity: Activity, signup: Signup):
    """Pay the points for attending (in a savepoint: a dry budget or a capped rule pays nothing now)."""
    if activity.points_reward:
        try:
            with transaction.atomic():
                return ledger.post(
                    MovementKind.EARN,
                    [(ledger.budget_account(activity.org), ledger.member_account(signup.user), activity.points_reward)],
                    reason=_("活动签到：%(title)s") % {"title": activity.title},
                    org=activity.org,
                    source=f"activity:{activity.pk}",
                )
        except DomainError as e:
            if e.code != ledger.PointsErrors.INSUFFICIENT_BUDGET:
                raise
            return None
    try:
        with transaction.atomic():
            return earning.earn(signup.user, EarnAction.ACTIVITY_CHECKIN, ref=f"activity:{activity.pk}")
    except DomainError:  # no rule, not a member, a cap reached, the budget used up: nothing to pay
        return None


def pay_pending_rewards(actor, activity: Activity, *, ip: str | None = None) -> int:
    """Pay the points for attending that a dry budget held back (organizer or admin cadre, after
    topping the budget up). Returns how many were paid; stops at the first one the budget cannot
    cover. Each is paid once: the sign-up's reward is set in the payment's transaction."""
    from .activities import _require_edit

    _require_edit(actor, activity)
    if not activity.points_reward:
        return 0
    paid = 0
    pending = Signup.objects.filter(
        activity_id=activity.pk, checked_in_at__isnull=False, reward__isnull=True
    ).select_related("user")
    for signup in pending.order_by("id"):
        with transaction.atomic():
            list(Activity.objects.select_for_update().filter(pk=activity.pk).values_list("pk"))  # the row first
            if not Signup.objects.select_for_update().filter(pk=signup.pk, reward__isnull=True).exists():
                continue
            movement = _reward(activity, signup) if activity.points_reward else None
            if movement is None:
                break
            Signup.objects.filter(pk=signup.pk).update(reward=movement)
            paid += 1
    if paid:
        audit.record(
            actor, "activity.rewards", org=activity.org, target=activity, summary=f"{activity.title} · {paid}人", ip=ip
        )
    return paid


def attendance(activity: Activity) -> dict:
    """Confirmed, checked in and the rate (0..1) for the console; `rewards_pending` counts check-ins
    whose points a dry budget held back."""
    from django.db.models import Count, Q

    got = Signup.objects.filter(activity_id=activity.pk, status=SignupStatus.CONFIRMED).aggregate(
        confirmed=Count("id"),
        checked_in=Count("id", filter=Q(checked_in_at__isnull=False)),
        pending=Count("id", filter=Q(checked_in_at__isnull=False, reward__isnull=True)),
    )
    confirmed, checked_in = got["confirmed"], got["checked_in"]
    return {
        "confirmed": confirmed,
        "checked_in": checked_in,
        "rate": round(checked_in / confirmed, 4) if confirmed else 0.0,
        "rewards_pending": got["pending"] if activity.points_reward else 0,
    }
