"""Scheduling live sessions, who sees them, and reminders.

A session belongs to an org. Its audience is the certified members of that org's subtree, or
everyone signed in; cadres whose roles reach the org see it too (to check the page). An admin
cadre of the org's subtree schedules, edits, cancels and sets the replay; any cadre covering
the org moderates its comments. Outside that, a session answers 404 like a missing one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Forbidden, Invalid, NotFound
from members.services import standing_of
from notifications.services.notices import notify
from orgs import scoping

from .. import streams
from ..models import Audience, LiveSession, Reminder, SessionStatus

REMIND_BEFORE = dt.timedelta(minutes=15)
MAX_DURATION = dt.timedelta(hours=12)
MAX_POINTS = 10_000
MAX_MIN_MINUTES = 600


class LiveErrors:
    NOT_SCHEDULED = "not_scheduled"  # a reminder for a session that already started
    CANCELLED = "session_cancelled"
    NOT_LIVE = "not_live"
    ALREADY_ENDED = "already_ended"


# --- who sees what ----------------------------------------------------------------------------


def _audience_q(user) -> Q:
    if not getattr(user, "is_authenticated", False):
        return Q(pk__in=[])
    q = Q(audience=Audience.EVERYONE)
    st = standing_of(user)
    if st.certified and st.org_path:
        q |= Q(org__path__in=scoping.self_and_ancestor_paths(st.org_path))
    if scoping.is_cadre(user):
        q |= scoping.path_q(user, "org__path")
    return q


def sessions_for_user(user) -> QuerySet[LiveSession]:
    """Sessions the person may watch (cancelled ones excluded)."""
    return LiveSession.objects.filter(_audience_q(user), cancelled_at__isnull=True).select_related("org")


def session_for_user(user, session_id: object) -> LiveSession:
    try:
        pk = int(session_id)
    except (TypeError, ValueError):
        raise NotFound(_("未找到该直播")) from None
    session = LiveSession.objects.filter(_audience_q(user), pk=pk).select_related("org").first()
    if session is None:
        raise NotFound(_("未找到该直播"))
    return session


def sessions_for_cadre(user) -> QuerySet[LiveSession]:
    return scoping.scoped(LiveSession.objects.select_related("org"), user, "org__path")


def session_for_cadre(user, session_id: object, *, admin: bool = False) -> LiveSession:
    try:
        pk = int(session_id)
    except (TypeError, ValueError):
        raise NotFound(_("未找到该直播")) from None
    session = sessions_for_cadre(user).filter(pk=pk).first()
    if session is None:
        raise NotFound(_("未找到该直播"))
    if admin and not scoping.covers(user, session.org, admin=True):
        raise Forbidden("admin_required", _("此操作需要该组织或上级组织的管理员权限"))
    return session


def can_moderate(user, session: LiveSession) -> bool:
    return scoping.covers(user, session.org)


def earns_points(user, session: LiveSession) -> bool:
    """Points for attending go to certified members of the session org's subtree (its budget pays)."""
    st = standing_of(user)
    return bool(st.certified and st.org_path and st.org_path.startswith(session.org.path))


def split_for_list(qs: QuerySet[LiveSession], now=None) -> dict[str, list[LiveSession]]:
    """{"live": …, "upcoming": …, "ended": …} in the order a list shows them."""
    now = now or timezone.now()
    live = list(qs.filter(starts_at__lte=now, ends_at__gt=now).order_by("starts_at", "id"))
    upcoming = list(qs.filter(starts_at__gt=now).order_by("starts_at", "id")[:100])
    ended = list(qs.filter(ends_at__lte=now).order_by("-starts_at", "-id")[:100])
    return {"live": live, "upcoming": upcoming, "ended": ended}


# --- scheduling -------------------------------------------------------------------------------


@dataclasses.dataclass
class SessionData:
    title: str
    speaker: str
    description: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    stream_url: str
    audience: str
    min_minutes: int
    points_reward: int
    auto_approve_comments: bool


def _text(raw: object, field: str, limit: int, label: str, *, required: bool = True) -> str:
    value = str(raw or "").strip()
    if required and not value:
        raise Invalid("required", _("请填写%(label)s") % {"label": label}, fields={field: _("必填")})
    if len(value) > limit:
        msg = _("不能超过%(n)s个字") % {"n": limit}
        raise Invalid("too_long", _("%(label)s不能超过%(n)s个字") % {"label": label, "n": limit}, fields={field: msg})
    return value


def _int(raw: object, field: str, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raw = None
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except (TypeError, ValueError):
        value = None
    if value is None or not low <= value <= high:
        msg = _("请填写%(low)s到%(high)s之间的整数") % {"low": low, "high": high}
        raise Invalid("invalid_number", msg, fields={field: msg})
    return value


def _when(raw: object, field: str) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        value = raw
    else:
        text = str(raw or "").strip()
        if not text:
            raise Invalid("required", _("请填写时间"), fields={field: _("必填")})
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise Invalid("invalid_time", _("时间格式无效"), fields={field: _("时间格式无效")}) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


def clean(data: dict, *, creating: bool) -> SessionData:
    """Every field checked at once is nicer for a form; here the first bad field wins, named."""
    errors: dict[str, str] = {}
    out: dict = {}

    def take(name, fn):
        try:
            out[name] = fn()
        except Invalid as e:
            errors.update(e.fields or {name: e.message})

    take("title", lambda: _text(data.get("title"), "title", 100, _("标题")))
    take("speaker", lambda: _text(data.get("speaker"), "speaker", 50, _("主讲人")))
    take("description", lambda: _text(data.get("description"), "description", 5000, _("简介"), required=False))
    take("starts_at", lambda: _when(data.get("starts_at"), "starts_at"))
    take("ends_at", lambda: _when(data.get("ends_at"), "ends_at"))
    take("stream_url", lambda: streams.clean_url(data.get("stream_url"), "stream_url"))
    take("min_minutes", lambda: _int(data.get("min_minutes", 10), "min_minutes", 1, MAX_MIN_MINUTES))
    take("points_reward", lambda: _int(data.get("points_reward", 0) or 0, "points_reward", 0, MAX_POINTS))
    audience = data.get("audience") or Audience.MEMBERS
    if audience not in Audience.values:
        errors["audience"] = _("请选择观看范围")
    starts, ends = out.get("starts_at"), out.get("ends_at")
    if starts and ends:
        if ends <= starts:
            errors["ends_at"] = _("结束时间应晚于开始时间")
        elif ends - starts > MAX_DURATION:
            errors["ends_at"] = _("一场直播不能超过12小时")
        elif creating and ends <= timezone.now():
            errors["ends_at"] = _("结束时间应晚于现在")
        elif "min_minutes" in out and out["min_minutes"] > (ends - starts).total_seconds() // 60:
            errors["min_minutes"] = _("不能超过直播时长")
    if errors:
        first = next(iter(errors.values()))
        raise Invalid("invalid", _("请检查填写的内容：") + first, fields=errors)
    return SessionData(audience=audience, auto_approve_comments=bool(data.get("auto_approve_comments")), **out)


def create_session(cadre, org, data: dict, *, ip: str | None = None) -> LiveSession:
    """An admin cadre of the org's subtree schedules a session."""
    if not scoping.covers(cadre, org, admin=True):
        raise Forbidden("admin_required", _("此操作需要该组织或上级组织的管理员权限"))
    values = dataclasses.asdict(clean(data, creating=True))
    with transaction.atomic():
        session = LiveSession.objects.create(org=org, created_by=cadre, **values)
        audit.record(cadre, "live.create", org=org, target=session, summary=session.title, ip=ip)
    return session


def update_session(cadre, session_id: object, data: dict, *, ip: str | None = None) -> LiveSession:
    session = session_for_cadre(cadre, session_id, admin=True)
    if session.cancelled_at is not None:
        raise DomainError(LiveErrors.CANCELLED, _("该直播已取消"))
    values = dataclasses.asdict(clean(data, creating=False))
    with transaction.atomic():
        for k, v in values.items():
            setattr(session, k, v)
        session.save()
        # Reminders already sent for the old time are sent again if the session moved later.
        if session.starts_at > timezone.now() + REMIND_BEFORE:
            Reminder.objects.filter(session=session, sent_at__isnull=False).update(sent_at=None)
        audit.record(cadre, "live.update", org=session.org, target=session, summary=session.title, ip=ip)
    return session


def set_replay(cadre, session_id: object, url: object, *, ip: str | None = None) -> LiveSession:
    session = session_for_cadre(cadre, session_id, admin=True)
    session.replay_url = streams.clean_url(url, "replay_url", replay=True, required=False)
    session.save(update_fields=["replay_url", "updated_at"])
    audit.record(cadre, "live.replay", org=session.org, target=session, summary=session.title, ip=ip)
    return session


def cancel_session(cadre, session_id: object, *, ip: str | None = None) -> LiveSession:
    session = session_for_cadre(cadre, session_id, admin=True)
    now = timezone.now()
    with transaction.atomic():
        if (
            LiveSession.objects.filter(pk=session.pk, cancelled_at__isnull=True, ends_at__gt=now).update(
                cancelled_at=now
            )
            != 1
        ):
            raise DomainError(LiveErrors.ALREADY_ENDED, _("该直播已结束或已取消"))
        session.cancelled_at = now
        waiting = Reminder.objects.filter(session=session).values_list("user_id", flat=True)
        notify(
            waiting,
            kind="live.cancelled",
            title=_("直播“%(t)s”已取消") % {"t": session.title},
            url=f"/m/live/{session.pk}/",
            ref=f"live:{session.pk}",
        )
        audit.record(cadre, "live.cancel", org=session.org, target=session, summary=session.title, ip=ip)
    return session


# --- reminders --------------------------------------------------------------------------------


def has_reminder(user, session: LiveSession) -> bool:
    return Reminder.objects.filter(session=session, user=user).exists()


def set_reminder(user, session_id: object, on: bool) -> bool:
    """Ask (or stop asking) to be told 15 minutes before the start; idempotent. Returns the new state."""
    session = session_for_user(user, session_id)
    if on:
        if session.status != SessionStatus.SCHEDULED:
            raise DomainError(LiveErrors.NOT_SCHEDULED, _("直播已经开始或结束，无需提醒"))
        try:
            with transaction.atomic():
                Reminder.objects.create(session=session, user=user)
        except IntegrityError:
            pass  # already set (a double tap): the same outcome
        return True
    Reminder.objects.filter(session=session, user=user).delete()
    return False


def send_due_reminders(now=None) -> int:
    """Notify everyone who asked, once, when a session starts within REMIND_BEFORE. Returns how
    many were notified. Rows are taken with a skip-locked lock and marked in the same transaction
    as the notices, so parallel runs never send one twice (SQLite runs write transactions one at
    a time)."""
    now = now or timezone.now()
    due = LiveSession.objects.filter(
        cancelled_at__isnull=True,
        starts_at__gt=now,
        starts_at__lte=now + REMIND_BEFORE,
        reminders__sent_at__isnull=True,
    ).distinct()
    sent = 0
    for session in due:
        try:
            sent += _send_for(session, now)
        except _Raced:
            continue  # another run took them; it sends them
    return sent


class _Raced(Exception):
    pass


def _send_for(session: LiveSession, now) -> int:
    with transaction.atomic():
        rows = list(
            Reminder.objects.select_for_update(skip_locked=True)
            .filter(session=session, sent_at__isnull=True)
            .values_list("pk", "user_id")
        )
        if not rows:
            return 0
        ids = [r[0] for r in rows]
        if Reminder.objects.filter(pk__in=ids, sent_at__isnull=True).update(sent_at=now) != len(ids):
            raise _Raced  # rolls back this session's marks
        local = timezone.localtime(session.starts_at)
        return notify(
            [r[1] for r in rows],
            kind="live.reminder",
            title=_("直播“%(t)s”将于%(at)s开始") % {"t": session.title, "at": local.strftime("%H:%M")},
            body=_("主讲：%(s)s") % {"s": session.speaker},
            url=f"/m/live/{session.pk}/",
            ref=f"live:{session.pk}",
        )
