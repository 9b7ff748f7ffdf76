"""The demo seeds: clubs and live sessions made through the rules, the same for the same rng."""

from __future__ import annotations

import random

import pytest

from clubs import demo as clubs_demo
from clubs.models import Club
from live import demo as live_demo
from live.models import Comment, LiveSession, Presence
from live.services import presence
from points.tests.helpers import many_members

from .helpers import count_matches

pytestmark = pytest.mark.django_db


def _people(district):
    for org in (district.union_a1, district.union_a2, district.union_b1):
        many_members(org, 14, org.name[:2])


def test_demo_clubs_are_active_with_members_posts_and_one_proposal(district):
    _people(district)
    made = clubs_demo.seed(random.Random(3), district.district_admin)
    clubs = list(Club.objects.filter(pk__in=made["clubs"]))
    assert len(clubs) == 3 and len({c.org_id for c in clubs}) == 3
    for c in clubs:
        assert c.status == "active" and c.members_count >= 4 and c.posts.exists()
        count_matches(c)
    assert Club.objects.get(pk=made["proposal"]).status == "proposed"
    approval = [c for c in clubs if c.join_policy == "approval"]
    assert approval and approval[0].memberships.filter(status="pending").count() == 2


def test_demo_live_sessions_have_an_upcoming_one_and_a_replay_with_figures(district):
    _people(district)
    made = live_demo.seed(random.Random(3), district.root, district.district_admin)
    upcoming, ended = LiveSession.objects.get(pk=made["upcoming"]), LiveSession.objects.get(pk=made["ended"])
    assert upcoming.status == "scheduled" and upcoming.reminders.exists()
    assert ended.status == "ended" and ended.replay_url.endswith(".m3u8")
    assert Presence.objects.filter(session=ended).count() == made["presence_rows"] > 0
    assert Comment.objects.filter(session=ended, status="approved").exists()
    assert presence.summary(ended)["peak"] > 0


def test_the_same_rng_makes_the_same_demo(district):
    _people(district)
    clubs_demo.seed(random.Random(5), district.district_admin)
    first = list(Club.objects.order_by("id").values_list("name", "org_id", "members_count"))

    def relative_rows():
        start = presence.epoch_minute(LiveSession.objects.get(replay_url__gt="").starts_at)
        return sorted((u, m - start) for u, m in Presence.objects.values_list("user_id", "minute"))

    live_demo.seed(random.Random(5), district.root, district.district_admin)
    rows = relative_rows()
    Club.objects.all().delete()
    LiveSession.objects.all().delete()
    clubs_demo.seed(random.Random(5), district.district_admin)
    assert list(Club.objects.order_by("id").values_list("name", "org_id", "members_count")) == first
    live_demo.seed(random.Random(5), district.root, district.district_admin)
    assert rows and relative_rows() == rows
