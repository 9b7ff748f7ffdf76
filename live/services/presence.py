"""Attendance from heartbeats, points for attending, and viewers over time.

The player page sends a heartbeat every 30 s while the video plays. Each heartbeat during the
live window writes the (session, person, minute) row with INSERT … ON CONFLICT DO NOTHING: two
tabs, a retry or a double send within one minute count once. Attended minutes are the person's
rows. When they reach the session's `min_minutes`, the points are paid from the session org's
budget together with the UNIQUE `AttendanceReward` row, in one savepoint: parallel heartbeats
can both try, only one row (and so one movement) survives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError
from points.models import MovementKind
from points.services import ledger

from ..models import AttendanceReward, Comment, LiveSession, Presence, SessionStatus
from .sessions import earns_points, session_for_user

MAX_CHART_MINUTES = 12 * 60 + 30


def epoch_minute(when: dt.datetime) -> int:
    return int(when.timestamp()) // 60


def minute_time(minute: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(minute * 60, tz=dt.UTC)


@dataclasses.dataclass
class Attendance:
    minutes: int
    min_minutes: int
    points_reward: int
    eligible: bool  # this person can earn the session's points
    rewarded: bool
    counted: bool = False  # this heartbeat added a minute
    live: bool = False
    note: str = ""  # why points were not paid although earned (e.g. the budget ran out)

    @property
    def remaining(self) -> int:
        return max(0, self.min_minutes - self.minutes)

    def as_dict(self) -> dict:
        return {
            "minutes": self.minutes,
            "min_minutes": self.min_minutes,
            "points_reward": self.points_reward,
            "eligible": self.eligible,
            "rewarded": self.rewarded,
            "counted": self.counted,
            "live": self.live,
            "note": self.note,
        }


def attended_minutes(session: LiveSession, user) -> int:
    return Presence.objects.filter(session=session, user=user).count()


def attendance(user, session: LiveSession) -> Attendance:
    return Attendance(
        minutes=attended_minutes(session, user),
        min_minutes=session.min_minutes,
        points_reward=session.points_reward,
        eligible=session.points_reward > 0 and earns_points(user, session),
        rewarded=AttendanceReward.objects.filter(session=session, user=user).exists(),
        live=session.status == SessionStatus.LIVE,
    )


_INSERT = "INSERT INTO live_presence (session_id, user_id, minute) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"


def heartbeat(user, session_id: object, now: dt.datetime | None = None) -> Attendance:
    """Count this minute for the person (once), and pay the points when they are due. Outside the
    live window a heartbeat counts nothing and answers the current attendance."""
    session = session_for_user(user, session_id)
    now = now or timezone.now()
    live = session.status_at(now) == SessionStatus.LIVE
    counted = False
    if live:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_INSERT, [session.pk, user.pk, epoch_minute(now)])
            counted = cursor.rowcount == 1
    state = attendance(user, session)
    state.counted, state.live = counted, live
    if counted and state.eligible and not state.rewarded and state.minutes >= session.min_minutes:
        state.rewarded, state.note = _pay(user, session, state.minutes)
    return state


def _pay(user, session: LiveSession, minutes: int) -> tuple[bool, str]:
    """(rewarded, note). Once per person and session, whoever gets there first."""
    try:
        with transaction.atomic():
            movement = ledger.post(
                MovementKind.EARN,
                [(ledger.budget_account(session.org), ledger.member_account(user), session.points_reward)],
                reason=_("观看直播：%(t)s") % {"t": session.title},
                org=session.org,
                source=f"live:{session.pk}",
            )
            AttendanceReward.objects.create(session=session, user=user, minutes=minutes, movement=movement)
    except IntegrityError:
        return True, ""  # a parallel heartbeat paid it
    except DomainError as e:
        if e.code == ledger.PointsErrors.INSUFFICIENT_BUDGET:
            return False, _("工会积分预算不足，积分暂未发放，请联系工会")
        raise
    return True, ""


# --- the console's figures --------------------------------------------------------------------


def _window(session: LiveSession, first: int | None, last: int | None, now: dt.datetime) -> range:
    start = epoch_minute(session.starts_at)
    end = epoch_minute(min(now, session.ends_at)) if now > session.starts_at else start
    if first is not None:
        start = min(start, first)
    if last is not None:
        end = max(end, last)
    end = min(end, start + MAX_CHART_MINUTES)
    return range(start, end + 1)


def timeline(session: LiveSession, now: dt.datetime | None = None) -> dict:
    """Per minute: concurrent viewers (distinct people with a heartbeat) and comments posted.
    {"minutes": [epoch minutes], "labels": ["HH:MM"], "viewers": [...], "comments": [...]}."""
    now = now or timezone.now()
    viewers = dict(
        Presence.objects.filter(session=session).values("minute").annotate(n=Count("id")).values_list("minute", "n")
    )
    comments = dict(
        Comment.objects.filter(session=session).values("minute").annotate(n=Count("id")).values_list("minute", "n")
    )
    keys = list(viewers) + list(comments)
    window = _window(session, min(keys) if keys else None, max(keys) if keys else None, now)
    return {
        "minutes": list(window),
        "labels": [timezone.localtime(minute_time(m)).strftime("%H:%M") for m in window],
        "viewers": [viewers.get(m, 0) for m in window],
        "comments": [comments.get(m, 0) for m in window],
    }


def summary(session: LiveSession, now: dt.datetime | None = None) -> dict:
    """Headline figures: viewers now (the last two minutes), peak, people who watched, rewarded, comments."""
    now = now or timezone.now()
    m = epoch_minute(now)
    per_minute = (
        Presence.objects.filter(session=session).values("minute").annotate(n=Count("id")).order_by("-n").first()
    )
    return {
        "current": Presence.objects.filter(session=session, minute__gte=m - 1).values("user_id").distinct().count(),
        "peak": per_minute["n"] if per_minute else 0,
        "peak_at": minute_time(per_minute["minute"]) if per_minute else None,
        "watchers": Presence.objects.filter(session=session).values("user_id").distinct().count(),
        "rewarded": AttendanceReward.objects.filter(session=session).count(),
        "comments": Comment.objects.filter(session=session).count(),
    }
