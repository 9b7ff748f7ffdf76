"""Live pages: the member end (list, session page per state, reminder, heartbeat, comments), the
console (schedule, edit, replay, moderation, figures) and the API's error shapes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from conftest import make_member, make_user
from live.models import Comment, LiveSession, Presence, Reminder
from live.services import comments

from .helpers import STREAM, live_session

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _as(client, user):
    client.force_login(user)
    return client


def test_the_list_groups_live_upcoming_and_replays(client, district):
    now_on = live_session(district, title="正在直播的讲座")
    later = live_session(district, title="下周的讲座", starts_in=dt.timedelta(days=7))
    past = live_session(
        district, title="上周的讲座", starts_in=-dt.timedelta(days=7), replay_url="https://vod.example.com/a.mp4"
    )
    page = _as(client, make_member(district.union_a1).user).get("/m/live/")
    text = page.text
    assert (
        text.index(f'id="session-{now_on.pk}"')
        < text.index(f'id="session-{later.pk}"')
        < text.index(f'id="session-{past.pk}"')
    )


def test_the_session_page_shows_what_fits_the_state(client, district):
    c = _as(client, make_member(district.union_a1).user)
    upcoming = live_session(district, starts_in=dt.timedelta(hours=2))
    page = c.get(f"/m/live/{upcoming.pk}/").text
    assert 'id="poster"' in page and 'id="reminder-btn"' in page and "live-video" not in page
    on = live_session(district)
    page = c.get(f"/m/live/{on.pk}/").text
    assert f'data-src="{STREAM}"' in page and 'data-live="1"' in page and "vendor/hls.min.js" in page
    replay = live_session(district, starts_in=-dt.timedelta(days=1), replay_url="https://vod.example.com/r.mp4")
    page = c.get(f"/m/live/{replay.pk}/").text
    assert 'data-kind="mp4"' in page and "data-live" not in page and STREAM not in page
    no_replay = live_session(district, starts_in=-dt.timedelta(days=1))
    assert "回放整理中" in c.get(f"/m/live/{no_replay.pk}/").text


def test_sessions_out_of_reach_answer_404(client, district):
    s = live_session(district)
    c = _as(client, make_member(district.union_b1).user)
    for path in ("", "comments/"):
        assert c.get(f"/m/live/{s.pk}/{path}").status_code == 404
    for path in ("heartbeat/", "reminder/", "comments/"):
        assert c.post(f"/m/live/{s.pk}/{path}").status_code == 404
    assert not Presence.objects.exists()


def test_the_reminder_toggles_over_htmx(client, district):
    s = live_session(district, starts_in=dt.timedelta(hours=1))
    m = make_member(district.union_a1)
    c = _as(client, m.user)
    r = c.post(f"/m/live/{s.pk}/reminder/", {"on": "1"}, **HX)
    assert r.status_code == 200 and 'aria-pressed="true"' in r.text
    assert Reminder.objects.filter(user=m.user, session=s).exists()
    r = c.post(f"/m/live/{s.pk}/reminder/", {"on": "0"}, **HX)
    assert 'aria-pressed="false"' in r.text and not Reminder.objects.exists()
    r = c.post(f"/m/live/{s.pk}/reminder/", {"on": "1"})  # without htmx: back to the page
    assert r.status_code == 302


def test_the_page_heartbeat_answers_the_attendance_line(client, district):
    s = live_session(district, min_minutes=5, points_reward=8)
    c = _as(client, make_member(district.union_a1).user)
    r = c.post(f"/m/live/{s.pk}/heartbeat/", **HX)
    assert r.status_code == 200 and 'data-minutes="1"' in r.text and "满 5 分钟得 8 积分" in r.text
    r = c.post(f"/m/live/{s.pk}/heartbeat/", **HX)
    assert 'data-minutes="1"' in r.text
    assert c.get(f"/m/live/{s.pk}/heartbeat/").status_code == 405


def test_comments_from_the_page(client, district):
    s = live_session(district)
    m = make_member(district.union_a1, "评论者")
    c = _as(client, m.user)
    r = c.post(f"/m/live/{s.pk}/comments/", {"body": "字" * 301}, **HX)
    assert r.status_code == 200 and 'id="comment-error"' in r.text and "字" * 301 in r.text  # kept
    r = c.post(f"/m/live/{s.pk}/comments/", {"body": "讲得好"}, **HX)
    assert 'id="comment-sent"' in r.text and "讲得好" in r.text and "审核中" in r.text
    r = c.post(f"/m/live/{s.pk}/comments/", {"body": "太快了"})
    assert r.status_code == 429 and "发言太快" in r.text
    other = _as(client, make_member(district.union_a1).user)
    assert "讲得好" not in other.get(f"/m/live/{s.pk}/comments/").text


# --- console ----------------------------------------------------------------------------------


def _form(**kw):
    start = timezone.localtime() + dt.timedelta(days=2)
    data = {
        "org": "",
        "title": "工匠精神分享会",
        "speaker": "全国劳模 张师傅",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "stream_url": STREAM,
        "min_minutes": "20",
        "points_reward": "15",
        "audience": "members",
    }
    data.update(kw)
    return data


def test_console_schedules_and_edits_a_session(client, district):
    c = _as(client, district.admin_a)
    r = c.post("/console/live/new/", _form(org=district.street_a.pk))
    s = LiveSession.objects.get()
    assert r.status_code == 302 and r.url == f"/console/live/{s.pk}/" and s.org == district.street_a
    assert c.get(f"/console/live/{s.pk}/").status_code == 200
    assert 'value="工匠精神分享会"' in c.get(f"/console/live/{s.pk}/edit/").text
    r = c.post(f"/console/live/{s.pk}/edit/", _form(org=district.street_a.pk, title="工匠精神分享会（改期）"))
    assert r.status_code == 302
    s.refresh_from_db()
    assert s.title == "工匠精神分享会（改期）"


def test_console_form_errors_keep_what_was_typed(client, district):
    c = _as(client, district.admin_a)
    r = c.post("/console/live/new/", _form(org=district.street_a.pk, stream_url="https://x.example.com/a.flv"))
    assert r.status_code == 422 and "直播地址应为 HLS" in r.text and "工匠精神分享会" in r.text
    assert not LiveSession.objects.exists()


def test_console_scope_and_roles(client, district):
    s = live_session(district)
    outside = _as(client, district.admin_b)
    assert s.title not in outside.get("/console/live/").text
    for path in ("", "edit/", "timeline/"):
        assert outside.get(f"/console/live/{s.pk}/{path}").status_code == 404
    staff = _as(client, district.staff_a)
    assert staff.get(f"/console/live/{s.pk}/").status_code == 200
    assert staff.post(f"/console/live/{s.pk}/replay/", {"replay_url": "https://v.example.com/a.mp4"}).status_code == 403
    assert staff.get(f"/console/live/new/?org={district.street_a.pk}").status_code == 403


def test_console_moderation_and_figures(client, district):
    s = live_session(district)
    m = make_member(district.union_a1)
    a = comments.post_comment(m.user, s.pk, "第一条")
    Comment.objects.create(session=s, user=make_user(), body="第二条", minute=a.minute)
    c = _as(client, district.staff_a)
    r = c.post(f"/console/live/{s.pk}/moderate/", {"decision": "approve", "comment": [a.pk]})
    assert r.status_code == 302
    assert Comment.objects.get(pk=a.pk).status == "approved"
    r = c.post(f"/console/live/{s.pk}/moderate/", {"decision": "reject"})
    assert r.status_code == 409 and "请先勾选" in r.text
    c.post(f"/console/live/{s.pk}/moderate/", {"decision": "approve", "all": "1"})
    assert not Comment.objects.filter(status="pending").exists()
    data = c.get(f"/console/live/{s.pk}/timeline/").json()
    assert sum(data["timeline"]["comments"]) == 2 and data["summary"]["comments"] == 2


# --- API --------------------------------------------------------------------------------------


def test_api_heartbeats_comments_and_reminders(api, district):
    s = live_session(district, min_minutes=1, points_reward=0)
    me = api(make_member(district.union_a1).user)
    r = me.post(f"/api/v1/live/{s.pk}/heartbeats")
    assert r.status_code == 200 and r.json()["minutes"] == 1 and r.json()["counted"] is True
    assert me.post(f"/api/v1/live/{s.pk}/heartbeats").json()["counted"] is False
    r = me.post(f"/api/v1/live/{s.pk}/comments", {"body": "x" * 301})
    assert r.status_code == 422 and "body" in r.json()["error"]["fields"]
    r = me.post(f"/api/v1/live/{s.pk}/comments", {})
    assert r.status_code == 422 and "body" in r.json()["error"]["fields"]
    assert me.post(f"/api/v1/live/{s.pk}/comments", {"body": "好"}).json()["status"] == "pending"
    r = me.post(f"/api/v1/live/{s.pk}/comments", {"body": "再来"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and "Retry-After" in r.headers
    r = me.get(f"/api/v1/live/{s.pk}")
    assert r.json()["stream_url"] == STREAM and r.json()["attendance"]["minutes"] == 1
    up = live_session(district, starts_in=dt.timedelta(hours=3))
    assert me.get(f"/api/v1/live/{up.pk}").json()["stream_url"] is None
    assert api(make_member(district.union_b1).user).post(f"/api/v1/live/{s.pk}/heartbeats").status_code == 404
    assert me.get("/api/v1/live?status=scheduled").json()["count"] == 1
