"""Live sessions: scheduling rules, reach, heartbeats and attendance points, comments, reminders, figures."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import make_member, make_user
from core.errors import DomainError, Forbidden, Invalid, NotFound, Throttled
from live.models import AttendanceReward, Comment, Presence, Reminder
from live.services import comments, presence
from live.services import sessions as svc
from notifications.models import Notification
from points.models import Movement
from points.services import ledger
from points.tests.helpers import assert_ledger_sound, balance

from .helpers import STREAM, funded, live_session

pytestmark = pytest.mark.django_db


def _form(**kw):
    start = timezone.localtime() + dt.timedelta(days=1)
    data = {
        "title": "劳动法律知识讲座",
        "speaker": "李律师",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "stream_url": STREAM,
        "min_minutes": "15",
        "points_reward": "10",
        "audience": "members",
    }
    data.update(kw)
    return data


# --- scheduling -------------------------------------------------------------------------------


def test_an_admin_cadre_schedules_a_session_for_their_subtree(district):
    s = svc.create_session(district.admin_a, district.union_a1, _form())
    assert s.status == "scheduled" and s.min_minutes == 15 and s.points_reward == 10 and s.org == district.union_a1
    with pytest.raises(Forbidden):
        svc.create_session(district.staff_a, district.street_a, _form())
    with pytest.raises(Forbidden):
        svc.create_session(district.admin_b, district.union_a1, _form())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream_url", "ftp://live.example.com/a.m3u8"),
        ("stream_url", "https://live.example.com/video.mp4"),
        ("stream_url", "not a url"),
        ("stream_url", ""),
        ("title", ""),
        ("speaker", "讲" * 51),
        ("starts_at", "明天上午"),
        ("min_minutes", "0"),
        ("min_minutes", "abc"),
        ("points_reward", "-5"),
    ],
)
def test_bad_input_names_the_field(district, field, value):
    with pytest.raises(Invalid) as e:
        svc.create_session(district.admin_a, district.street_a, _form(**{field: value}))
    assert field in e.value.fields


def test_times_must_be_in_order_and_the_minimum_fit_the_session(district):
    start = timezone.localtime() + dt.timedelta(days=1)
    with pytest.raises(Invalid) as e:
        svc.create_session(
            district.admin_a,
            district.street_a,
            _form(ends_at=(start - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")),
        )
    assert "ends_at" in e.value.fields
    with pytest.raises(Invalid) as e:
        svc.create_session(district.admin_a, district.street_a, _form(min_minutes="90"))
    assert "min_minutes" in e.value.fields


def test_provider_hosts_may_serve_hls_without_the_extension(district, settings):
    url = "https://play.cdn-provider.example.net/live/union?auth=abc"
    with pytest.raises(Invalid):
        svc.create_session(district.admin_a, district.street_a, _form(stream_url=url))
    settings.LIVE_PROVIDER_HOSTS = ["cdn-provider.example.net"]
    assert svc.create_session(district.admin_a, district.street_a, _form(stream_url=url)).stream_url == url


def test_the_replay_may_be_hls_or_mp4_and_is_set_by_an_admin(district):
    s = live_session(district, starts_in=-dt.timedelta(hours=2))
    assert svc.set_replay(district.admin_a, s.pk, "https://vod.example.com/r/1.mp4").replay_url.endswith(".mp4")
    with pytest.raises(Invalid) as e:
        svc.set_replay(district.admin_a, s.pk, "https://vod.example.com/r/1.avi")
    assert "replay_url" in e.value.fields
    with pytest.raises(Forbidden):
        svc.set_replay(district.staff_a, s.pk, "https://vod.example.com/r/1.m3u8")
    with pytest.raises(NotFound):
        svc.set_replay(district.admin_b, s.pk, "https://vod.example.com/r/1.m3u8")


def test_status_follows_the_clock(district):
    s = live_session(district, starts_in=dt.timedelta(minutes=30))
    assert s.status == "scheduled"
    assert s.status_at(s.starts_at) == "live"
    assert s.status_at(s.ends_at) == "ended"
    s.cancelled_at = timezone.now()
    assert s.status == "cancelled"


# --- who sees a session -----------------------------------------------------------------------


def test_members_see_sessions_of_their_union_and_above_and_everyone_sessions_reach_followers(district):
    s = live_session(district, org=district.street_a)
    open_to_all = live_session(district, org=district.union_b1, audience="everyone")
    inside, outside, follower = make_member(district.union_a1), make_member(district.union_b1), make_user("粉丝")
    assert svc.session_for_user(inside.user, s.pk) == s
    for person in (outside.user, follower):
        with pytest.raises(NotFound):
            svc.session_for_user(person, s.pk)
    assert svc.session_for_user(follower, open_to_all.pk) == open_to_all
    assert set(svc.sessions_for_user(inside.user)) == {s, open_to_all}
    assert svc.session_for_user(district.admin_a, s.pk) == s  # a cadre checks the page


# --- heartbeats and attendance ----------------------------------------------------------------


def test_two_tabs_in_the_same_minute_count_one_minute(district):
    s = live_session(district)
    m = make_member(district.union_a1)
    now = timezone.now().replace(second=10, microsecond=0)
    if now < s.starts_at:
        now += dt.timedelta(minutes=1)
    first = presence.heartbeat(m.user, s.pk, now=now)
    second = presence.heartbeat(m.user, s.pk, now=now + dt.timedelta(seconds=1))
    assert first.counted and not second.counted
    assert second.minutes == 1
    third = presence.heartbeat(m.user, s.pk, now=now + dt.timedelta(seconds=61))
    assert third.counted and third.minutes == 2


def test_heartbeats_outside_the_live_window_count_nothing(district):
    m = make_member(district.union_a1)
    upcoming = live_session(district, starts_in=dt.timedelta(minutes=10))
    ended = live_session(district, starts_in=-dt.timedelta(hours=3))
    for s in (upcoming, ended):
        state = presence.heartbeat(m.user, s.pk)
        assert not state.counted and not state.live and state.minutes == 0
    assert not Presence.objects.exists()


def test_points_are_paid_once_when_the_minimum_is_reached_and_not_before(district):
    funded(district)
    s = live_session(district, min_minutes=3, points_reward=20)
    m = make_member(district.union_a1)
    now = timezone.now()
    for i in range(2):
        state = presence.heartbeat(m.user, s.pk, now=now + dt.timedelta(minutes=i))
        assert not state.rewarded
    assert balance(m.user) == 0
    state = presence.heartbeat(m.user, s.pk, now=now + dt.timedelta(minutes=2))
    assert state.minutes == 3 and state.rewarded
    assert balance(m.user) == 20
    for i in range(3, 8):
        assert presence.heartbeat(m.user, s.pk, now=now + dt.timedelta(minutes=i)).rewarded
    assert balance(m.user) == 20
    reward = AttendanceReward.objects.get()
    assert reward.minutes == 3 and reward.movement.source == f"live:{s.pk}" and reward.movement.org == s.org
    assert balance(ledger.budget_account(s.org)) == 10_000 - 20
    assert_ledger_sound()


def test_only_certified_members_of_the_subtree_earn_and_an_empty_budget_pays_nothing(district):
    s = live_session(district, org=district.street_a, audience="everyone", min_minutes=1, points_reward=5)
    follower = make_user("粉丝")
    state = presence.heartbeat(follower, s.pk)
    assert state.counted and not state.eligible and not state.rewarded
    outsider = make_member(district.union_b1)
    assert not presence.heartbeat(outsider.user, s.pk).eligible
    member = make_member(district.union_a1)  # eligible, but street A has no budget yet
    state = presence.heartbeat(member.user, s.pk)
    assert state.eligible and not state.rewarded and state.note
    assert not Movement.objects.exists() and not AttendanceReward.objects.exists()


def test_a_session_without_points_never_pays(district):
    funded(district)
    s = live_session(district, min_minutes=1, points_reward=0)
    m = make_member(district.union_a1)
    state = presence.heartbeat(m.user, s.pk)
    assert state.minutes == 1 and not state.eligible and not state.rewarded
    assert not AttendanceReward.objects.exists()


# --- comments ---------------------------------------------------------------------------------


def test_a_pending_comment_is_seen_only_by_its_author_until_approved(district):
    s = live_session(district)
    a, b = make_member(district.union_a1, "甲"), make_member(district.union_a1, "乙")
    c = comments.post_comment(a.user, s.pk, "  老师讲得好\n\n受益匪浅  ")
    assert c.status == "pending" and c.body == "老师讲得好 受益匪浅"
    assert comments.wall(a.user, s) == [c] and comments.wall(b.user, s) == []
    assert list(comments.queue(district.admin_a, s)) == [c]
    assert comments.moderate(district.staff_a, [c.pk], approve=True) == 1  # any cadre covering the org
    assert comments.wall(b.user, s) == [c]
    with pytest.raises(DomainError) as e:
        comments.moderate(district.admin_a, [c.pk], approve=False)
    assert e.value.code == "not_pending"


def test_rejected_comments_disappear_and_outside_cadres_cannot_moderate(district):
    s = live_session(district)
    a = make_member(district.union_a1)
    c = comments.post_comment(a.user, s.pk, "广告内容")
    with pytest.raises(NotFound):
        comments.moderate(district.admin_b, [c.pk], approve=True)
    comments.moderate(district.admin_a, [c.pk], approve=False)
    assert comments.wall(a.user, s) == []
    assert Comment.objects.get().status == "rejected"


def test_auto_approve_sessions_show_comments_at_once(district):
    s = live_session(district, auto_approve_comments=True)
    a, b = make_member(district.union_a1), make_member(district.union_a1)
    c = comments.post_comment(a.user, s.pk, "打卡")
    assert c.status == "approved" and comments.wall(b.user, s) == [c]


def test_comment_length_and_pace_are_checked(district):
    s = live_session(district)
    a = make_member(district.union_a1)
    with pytest.raises(Invalid) as e:
        comments.post_comment(a.user, s.pk, "字" * 301)
    assert e.value.code == "too_long" and "body" in e.value.fields
    with pytest.raises(Invalid):
        comments.post_comment(a.user, s.pk, "   ")
    comments.post_comment(a.user, s.pk, "字" * 300)
    with pytest.raises(Throttled) as e:
        comments.post_comment(a.user, s.pk, "再来一条")
    assert e.value.retry_after >= 1


# --- reminders --------------------------------------------------------------------------------


def test_a_reminder_is_sent_once_fifteen_minutes_before(district):
    s = live_session(district, starts_in=dt.timedelta(minutes=40))
    people = [make_member(district.union_a1, f"观众{i}") for i in range(3)]
    for p in people:
        assert svc.set_reminder(p.user, s.pk, True)
    assert svc.set_reminder(people[0].user, s.pk, True)  # a double tap changes nothing
    assert Reminder.objects.count() == 3
    assert svc.send_due_reminders() == 0  # 40 minutes before: too early
    at = s.starts_at - dt.timedelta(minutes=14)
    assert svc.send_due_reminders(now=at) == 3
    assert svc.send_due_reminders(now=at + dt.timedelta(minutes=1)) == 0
    call_command("send_live_reminders")
    notes = Notification.objects.filter(kind="live.reminder")
    assert sorted(notes.values_list("user_id", flat=True)) == sorted(p.user_id for p in people)
    assert all(n.url == f"/m/live/{s.pk}/" for n in notes)


def test_reminders_are_for_sessions_not_yet_started_and_can_be_withdrawn(district):
    m = make_member(district.union_a1)
    live_now = live_session(district)
    with pytest.raises(DomainError) as e:
        svc.set_reminder(m.user, live_now.pk, True)
    assert e.value.code == "not_scheduled"
    s = live_session(district, starts_in=dt.timedelta(minutes=10))
    svc.set_reminder(m.user, s.pk, True)
    assert not svc.set_reminder(m.user, s.pk, False)
    assert svc.send_due_reminders() == 0


def test_a_cancelled_session_sends_no_reminder_but_tells_who_waited(district):
    s = live_session(district, starts_in=dt.timedelta(minutes=10))
    m = make_member(district.union_a1)
    svc.set_reminder(m.user, s.pk, True)
    svc.cancel_session(district.admin_a, s.pk)
    assert svc.send_due_reminders() == 0
    assert Notification.objects.filter(user=m.user, kind="live.cancelled").exists()
    with pytest.raises(NotFound):
        svc.session_for_user(make_member(district.union_b1).user, s.pk)
    assert not svc.sessions_for_user(m.user).filter(pk=s.pk).exists()


# --- the console's figures --------------------------------------------------------------------


def test_viewers_and_comments_per_minute(district):
    s = live_session(district, starts_in=-dt.timedelta(minutes=10), minutes=60)
    people = [make_member(district.union_a1, f"观众{i}") for i in range(3)]
    t0 = s.starts_at.replace(second=0, microsecond=0) + dt.timedelta(minutes=2)  # on a minute boundary
    for i, p in enumerate(people):
        for k in range(i + 1):  # person i watches minutes 1..i+1
            presence.heartbeat(p.user, s.pk, now=t0 + dt.timedelta(minutes=k, seconds=5))
            presence.heartbeat(p.user, s.pk, now=t0 + dt.timedelta(minutes=k, seconds=35))  # a second tab
    Comment.objects.create(session=s, user=people[0].user, body="a", minute=presence.epoch_minute(t0))
    Comment.objects.create(session=s, user=people[1].user, body="b", minute=presence.epoch_minute(t0))
    line = presence.timeline(s, now=s.starts_at + dt.timedelta(minutes=5))
    m0 = presence.epoch_minute(s.starts_at)
    assert line["minutes"][0] == m0
    by_minute = dict(zip(line["minutes"], line["viewers"], strict=True))
    first = presence.epoch_minute(t0)
    assert [by_minute[first + k] for k in range(4)] == [3, 2, 1, 0]
    assert dict(zip(line["minutes"], line["comments"], strict=True))[first] == 2
    assert len(line["labels"]) == len(line["minutes"])
    summary = presence.summary(s)
    assert summary["peak"] == 3 and summary["watchers"] == 3 and summary["comments"] == 2
