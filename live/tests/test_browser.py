"""In Chromium: the session page attaches the player with hls.js from our static files and asks
our local HLS stream for its playlist; the comment wall posts over htmx; the console shows the chart."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import PASSWORD, PHONE, console_login, make_member, screenshot
from live.models import Comment
from live.services import comments, presence

from .helpers import funded, live_session
from .hls_stream import Stream

DESKTOP = {"width": 1366, "height": 900}


def _member_login(page, user):
    page.goto("/m/login/?tab=password")
    page.fill("#phone", user.phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_selector(".m-hero")


NO_NATIVE_HLS = """
const real = HTMLMediaElement.prototype.canPlayType;
HTMLMediaElement.prototype.canPlayType = function (type) {
  return /mpegurl/i.test(type) ? "" : real.call(this, type);
};
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_without_native_hls_the_page_plays_through_hls_js_from_our_static_files(page_factory, district):
    """Browsers without HLS of their own (desktop Firefox, older Chrome) get hls.js on Media Source."""
    m = make_member(district.union_a1, "火狐用户")
    with Stream() as stream:
        s = live_session(district, stream_url=stream.url)
        page = page_factory(PHONE)
        page.add_init_script(NO_NATIVE_HLS)
        scripts = []
        page.on("response", lambda r: scripts.append((r.url, r.status)) if r.url.endswith(".js") else None)
        _member_login(page, m.user)
        page.goto(f"/m/live/{s.pk}/")
        page.wait_for_selector("#live-video[data-engine]", state="attached")
        assert page.get_attribute("#live-video", "data-engine") == "hls.js"
        assert any(u.endswith("/static/vendor/hls.min.js") and st == 200 for u, st in scripts), scripts
        assert page.evaluate(
            "document.getElementById('live-video')._hls.media === document.getElementById('live-video')"
        )
        for _ in range(80):
            if "/live.m3u8" in stream.requests and any(r.endswith(".ts") for r in stream.requests):
                break
            page.wait_for_timeout(100)
        assert "/live.m3u8" in stream.requests, stream.requests
        assert "/seg0.ts" in stream.requests, stream.requests  # hls.js parsed the playlist and fetched a segment


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_session_page_plays_hls_with_our_hls_js_and_posts_comments(page_factory, district):
    funded(district)
    m = make_member(district.union_a1, "欧阳观众")
    with Stream() as stream:
        s = live_session(
            district,
            title="新就业形态劳动者权益保障政策解读（第二期）",
            stream_url=stream.url,
            min_minutes=10,
            points_reward=20,
            description="主讲人结合案例解读劳动合同、社会保险与工伤认定。",
        )
        other = make_member(district.union_a1, "诸葛同事")
        approved = comments.post_comment(other.user, s.pk, "老师讲得很清楚，点赞！")
        comments.moderate(district.admin_a, [approved.pk], approve=True)

        page = page_factory(PHONE)
        scripts = []
        page.on("response", lambda r: scripts.append((r.url, r.status)) if r.url.endswith(".js") else None)
        _member_login(page, m.user)
        page.goto(f"/m/live/{s.pk}/")
        page.wait_for_selector("#live-video[data-engine]", state="attached")
        engine = page.get_attribute("#live-video", "data-engine")
        assert any(u.endswith("/static/vendor/hls.min.js") and st == 200 for u, st in scripts), scripts
        assert page.evaluate("typeof window.Hls === 'function' && window.Hls.isSupported()")
        assert engine in ("hls.js", "native")
        if engine == "native":  # a browser with HLS of its own loads on play
            page.evaluate("v => { v.muted = true; v.play().catch(() => {}); }", page.query_selector("#live-video"))
        else:
            assert page.evaluate("!!document.getElementById('live-video')._hls")
        page.wait_for_function("document.getElementById('live-video').readyState >= 0")
        for _ in range(50):
            if "/live.m3u8" in stream.requests:
                break
            page.wait_for_timeout(100)
        assert "/live.m3u8" in stream.requests, stream.requests
        assert "已观看 0 分钟，满 10 分钟得 20 积分" in page.inner_text("#attendance")
        assert "老师讲得很清楚" in page.inner_text("#wall")

        # A heartbeat from the page counts this minute (what the player sends every 30 s).
        page.evaluate("htmx.trigger(document.getElementById('attendance'), 'heartbeat')")
        page.wait_for_function("document.getElementById('attendance').dataset.minutes === '1'")
        assert "已观看 1 分钟" in page.inner_text("#attendance")

        # A comment waits for moderation and shows only to its author.
        page.fill("#comment-input", "请问灵活就业人员怎么参加工伤保险？")
        page.click("#comment-btn")
        page.wait_for_selector("#comment-sent")
        assert "审核" in page.inner_text("#wall")
        assert Comment.objects.filter(user=m.user, status="pending").count() == 1
        box = page.locator("#live-video").bounding_box()
        assert box["width"] <= PHONE["width"] and box["height"] > 150
        screenshot(page, "member-live-session-phone")

        page.goto("/m/live/")
        page.wait_for_selector(f"#session-{s.pk}")
        screenshot(page, "member-live-list-phone")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_console_charts_viewers_and_moderates(page_factory, district):
    s = live_session(district, starts_in=-dt.timedelta(minutes=20), minutes=90, title="职工书法公开课")
    viewers = [make_member(district.union_a1, f"观众{i}") for i in range(6)]
    t0 = s.starts_at
    for i, v in enumerate(viewers):
        for k in range(2 + i * 3):
            presence.heartbeat(v.user, s.pk, now=t0 + dt.timedelta(minutes=k, seconds=10))
    pending = comments.post_comment(viewers[0].user, s.pk, "请问回放在哪里看？")
    page = page_factory(DESKTOP)
    console_login(page, district.admin_a)
    page.click("#nav-live")
    page.wait_for_selector("#session-table")
    page.click(f"text={s.title}")
    page.wait_for_selector("#live-chart canvas")
    assert page.inner_text("#s-peak") == "6" and page.inner_text("#s-watchers") == "6"
    assert page.locator(f"#pending-{pending.pk}").count() == 1
    screenshot(page, "console-live-detail-desktop")
    page.check(f"#pending-{pending.pk} input")
    page.click("#approve-selected")
    page.wait_for_selector("#moderate-ok")
    pending.refresh_from_db()
    assert pending.status == "approved"
    page.fill("#lv-replay", "not a url")
    page.click("#save-replay")
    page.wait_for_selector("#replay-form .field-error")
    assert page.input_value("#lv-replay") == "not a url"
    page.goto(f"/console/live/new/?org={district.street_a.pk}")
    page.click("#save-session")
    page.wait_for_selector(".field-error")
    screenshot(page, "console-live-form-errors-desktop")
