"""Reminders before an activity starts: once per person and activity, however often the job runs."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.models import Notification
from notifications.services.notices import notify

from ..models import Activity, ActivityStatus, Signup, SignupStatus

KIND = "activity.reminder"


def send_reminders(*, hours: int = 24, now: dt.datetime | None = None) -> tuple[int, int]:
    """Remind the confirmed participants of published activities starting within `hours` who have
    not been reminded yet. Returns (activities with someone reminded, people reminded)."""
    now = now or timezone.now()
    due = Activity.objects.filter(
        status=ActivityStatus.PUBLISHED, starts_at__gt=now, starts_at__lte=now + dt.timedelta(hours=hours)
    ).order_by("starts_at", "id")
    activities = people = 0
    for activity_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            # The activity row serializes two runs of the job (and cancellations) for this activity.
            activity = (
                Activity.objects.select_for_update().filter(pk=activity_id, status=ActivityStatus.PUBLISHED).first()
            )
            if activity is None:
                continue
            ref = f"activity:{activity.pk}"
            confirmed = set(
                Signup.objects.filter(activity=activity, status=SignupStatus.CONFIRMED).values_list(
                    "user_id", flat=True
                )
            )
            if not confirmed:
                continue
            done = set(
                Notification.objects.filter(kind=KIND, ref=ref, user_id__in=confirmed).values_list("user_id", flat=True)
            )
            todo = sorted(confirmed - done)
            if not todo:
                continue
            local = timezone.localtime(activity.starts_at)
            notify(
                todo,
                kind=KIND,
                title=_("活动提醒：%(title)s") % {"title": activity.title},
                body=_("活动将于%(when)s开始，地点：%(place)s。请准时参加，现场扫码签到。")
                % {"when": local.strftime("%m月%d日 %H:%M"), "place": activity.place or _("见活动详情")},
                url=f"/m/activities/{activity.pk}/",
                ref=ref,
            )
            activities += 1
            people += len(todo)
    return activities, people
