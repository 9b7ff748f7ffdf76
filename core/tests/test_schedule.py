"""The schedule runs every app's time-driven job, and a due poll gets closed by it."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import make_member
from core.management.commands.run_schedule import JOBS
from votes.models import Poll
from votes.services import polls


@pytest.mark.django_db
def test_every_scheduled_job_is_a_command_and_a_due_poll_is_sealed(district):
    now = timezone.now()
    poll = polls.create_poll(
        district.district_admin,
        district.root,
        title="到期的投票",
        options=[{"title": "甲"}, {"title": "乙"}],
        max_choices=1,
        opens_at=now - dt.timedelta(hours=2),
        closes_at=now + dt.timedelta(hours=1),
    )
    voter = make_member(district.union_a1, "投票人")
    polls.cast_ballot(voter.user, poll.pk, [poll.options.first().pk])
    Poll.objects.filter(pk=poll.pk).update(closes_at=now - dt.timedelta(minutes=1))

    out = io.StringIO()
    call_command("run_schedule", "--once", stdout=out, stderr=out)

    poll.refresh_from_db()
    assert poll.closed_at is not None
    assert poll.published_tally["total_ballots"] == 1
    # Every job names a management command (a typo would only show in the schedule's log).
    from django.core.management import get_commands

    assert {name for name, _every in JOBS} <= set(get_commands())
