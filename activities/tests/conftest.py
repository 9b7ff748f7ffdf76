"""Builders for the activities tests: an activity open for sign-up now, members, moving it in time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from activities.models import Activity
from activities.services import activities as svc


def open_activity(actor, org, **kw) -> Activity:
    """A published activity whose sign-up is open now, starting in two days (kw override)."""
    now = timezone.now()
    values = {
        "title": "职工羽毛球赛",
        "starts_at": now + dt.timedelta(days=2),
        "ends_at": now + dt.timedelta(days=2, hours=3),
        "capacity": 5,
        "waitlist": True,
    }
    values.update(kw)
    return svc.create_activity(actor, org, **values)


def move(activity: Activity, *, starts_in: dt.timedelta, hours: float = 2) -> Activity:
    """Shift the activity so it starts `starts_in` from now (negative: already started), keeping
    the sign-up window before the start (the model's CHECKs hold)."""
    now = timezone.now()
    starts = now + starts_in
    Activity.objects.filter(pk=activity.pk).update(
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=hours),
        signup_opens_at=min(activity.signup_opens_at, starts - dt.timedelta(days=3)),
        signup_closes_at=starts,
        cancel_until=starts,
    )
    activity.refresh_from_db()
    return activity


@pytest.fixture
def media(settings, tmp_path):
    """Uploads go to a temporary folder."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    settings.MEDIA_ROOT = tmp_path
    return tmp_path
