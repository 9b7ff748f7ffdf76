"""The demo activities: consistent counters, points through the ledger, deterministic per generator."""

from __future__ import annotations

import random

import pytest
from django.db import transaction
from django.utils import timezone

from activities import demo
from activities.models import Activity, ActivityStatus, Signup
from activities.services import activities as svc
from activities.services import signups
from demo import district
from orgs.models import CadreRole, Org
from points.tests.helpers import assert_ledger_sound, reconcile


class _Undo(Exception):
    pass


def _snapshot() -> list[tuple]:
    return [
        (
            a.title,
            a.org.path,
            a.status,
            a.starts_at,
            a.confirmed_count,
            a.waitlist_count,
            a.checked_in_count,
            tuple(Signup.objects.filter(activity=a).order_by("id").values_list("user_id", "status", "checked_in_at")),
        )
        for a in Activity.objects.select_related("org").order_by("id")
    ]


@pytest.mark.django_db
def test_demo_activities_are_consistent_reconcile_and_repeat_for_the_same_generator():
    # seed_demo's district already runs activities.demo.seed; what it made is checked below.
    district.seed(300, 5, "Demo@2026", progress=lambda m: None)
    root = Org.objects.get(depth=1)
    streets = list(Org.objects.filter(depth=2).order_by("path"))
    admin = CadreRole.objects.filter(org=root, role="admin").first().user
    now = timezone.now()
    seeded = _snapshot()

    # The same generator on the same database makes the same activities (each run rolled back).
    runs = []
    for _ in range(2):
        try:
            with transaction.atomic():
                demo.seed(random.Random(3), root=root, streets=streets, admin=admin, now=now)
                runs.append(_snapshot()[len(seeded) :])
                raise _Undo
        except _Undo:
            pass
    assert runs[0] == runs[1] and len(runs[0]) == len(demo.PLANS) + 1
    assert _snapshot() == seeded

    activities = list(Activity.objects.all())
    statuses = {a.status for a in activities}
    assert statuses == {ActivityStatus.PUBLISHED, ActivityStatus.PROPOSED}
    assert len({a.category for a in activities}) >= 5
    assert any(a.waitlist_count > 0 and a.confirmed_count == a.capacity for a in activities)  # a full one
    assert any(a.ends_at < now and a.checked_in_count > 0 for a in activities)  # a past one
    assert any(a.signup_opens_at <= now < a.signup_closes_at and a.confirmed_count < a.capacity for a in activities)
    for a in activities:
        live = signups.signup_counts(a)
        assert (a.confirmed_count, a.waitlist_count) == (live["confirmed"], live["waitlisted"])
        assert a.checked_in_count == Signup.objects.filter(activity=a, checked_in_at__isnull=False).count()
    paid = Signup.objects.filter(reward__isnull=False).count()
    assert paid > 0
    assert reconcile()[0] == 0
    assert_ledger_sound()
    # The proposal shows to its union's cadres.
    proposal = Activity.objects.get(status=ActivityStatus.PROPOSED)
    union_admin = CadreRole.objects.filter(org=proposal.org, role="admin").first().user
    assert list(svc.proposals_for_cadre(union_admin)) == [proposal]
