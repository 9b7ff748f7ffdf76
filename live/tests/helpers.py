"""Builders for the live tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from live.models import LiveSession
from points.tests.helpers import fund

STREAM = "https://live.example.com/app/union.m3u8"


def live_session(district, *, org=None, starts_in: dt.timedelta = -dt.timedelta(minutes=5), minutes: int = 60, **kw):
    """A session (live now by default) created directly, skipping the form rules (e.g. a past start)."""
    org = org or district.street_a
    start = timezone.now() + starts_in
    values = {
        "title": "职工心理健康讲座",
        "speaker": "王老师",
        "stream_url": STREAM,
        "min_minutes": 3,
        "points_reward": 20,
        **kw,
    }
    return LiveSession.objects.create(
        org=org, starts_at=start, ends_at=start + dt.timedelta(minutes=minutes), created_by=district.admin_a, **values
    )


def funded(district, org=None, amount: int = 10_000):
    org = org or district.street_a
    fund(org, amount, district.district_admin)
    return org
