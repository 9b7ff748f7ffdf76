"""At phone size: a cadre approves a member's proposal in the cadre end, and the member, now the
organizer, opens the check-in page from the member end and checks a participant in by card."""

import datetime as dt
import io
from pathlib import Path

import pytest
import segno
from django.utils import timezone
from PIL import Image

from activities.models import Activity, ActivityStatus
from activities.services import activities as activities_svc
from activities.services import signups as signups_svc
from conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, PHONE, make_member, screenshot
from members.services import card_token


def _login(page, phone, path):
    page.goto(path)
    page.fill("#phone", phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cadre_approves_and_member_organizer_checks_in_by_card(page_factory, district):
    m = make_member(district.union_a1, "上官组织者")
    start = timezone.now() + dt.timedelta(days=3)
    a = activities_svc.create_activity(
        m.user,
        district.union_a1,
        title="龙泉山城市森林公园徒步（需自备饮用水与防晒用品）",
        place="龙泉山丹景台景区北门停车场集合",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=5),
        capacity=15,
        description="沿山脊步道徒步约8公里。",
    )
    cadre = page_factory(PHONE)
    _login(cadre, district.admin_a1.phone, "/c/login/?next=/c/activities/")
    cadre.wait_for_selector(f"#proposal-{a.pk}")
    screenshot(cadre, "cadre-activity-proposals-phone")
    cadre.click(f"#review-{a.pk}")
    cadre.wait_for_selector("#review-form")
    cadre.fill("#capacity", "0")
    cadre.click("#approve-edited")
    cadre.wait_for_selector("#capacity-error")
    screenshot(cadre, "cadre-activity-review-error-phone")
    cadre.fill("#capacity", "18")
    cadre.click("#approve-edited")
    cadre.wait_for_selector("#no-proposals")
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED and a.capacity == 18

    joiner = make_member(district.union_a1, "诸葛参加")
    signups_svc.sign_up(joiner.user, a.pk)
    now = timezone.now()
    Activity.objects.filter(pk=a.pk).update(
        signup_opens_at=now - dt.timedelta(days=1),
        signup_closes_at=now - dt.timedelta(minutes=30),
        cancel_until=now - dt.timedelta(minutes=30),
        starts_at=now - dt.timedelta(minutes=5),
        ends_at=now + dt.timedelta(hours=3),
    )
    page = page_factory(PHONE)
    _login(page, m.user.phone, f"/m/login/?tab=password&next=/m/activities/{a.pk}/")
    page.wait_for_selector("#organizer-link")
    screenshot(page, "member-activity-organizer-phone")
    page.click("#organizer-link")
    page.wait_for_selector("#checkin-qr svg")
    assert page.locator(".m-tabbar").count() == 0
    # Without a QR decoder in this browser (no BarcodeDetector, jsQR not set up) there is no camera button.
    has_decoder = page.evaluate("'BarcodeDetector' in window || !!window.jsQR")
    assert page.locator("#scan-btn").is_visible() == has_decoder
    page.fill("#card", "https://example.org/c/verify/?t=" + card_token(joiner))
    page.click("#card-btn")
    page.wait_for_selector("#card-ok")
    assert "诸**加" in page.inner_text("#card-ok") and page.inner_text("#checked-in").strip() == "1"
    screenshot(page, "member-organizer-card-checkin-phone")
    page.fill("#card", "not a card")
    page.click("#card-btn")
    page.wait_for_selector("#card-fail")
    screenshot(page, "member-organizer-card-refused-phone")
    # The QR turns over by itself (htmx asks for the next code when the current one changes).
    first = page.get_attribute("#checkin-qr", "data-checkin-url")
    page.wait_for_function(
        "old => document.querySelector('#checkin-qr').dataset.checkinUrl !== old", arg=first, timeout=35000
    )
    assert page.inner_text("#checked-in").strip() == "1"


JSQR = Path(__file__).resolve().parents[3] / "assets" / "node_modules" / "jsqr" / "dist" / "jsQR.js"


def _y4m_with_qr(path: Path, text: str) -> None:
    """A short YUV4MPEG2 clip of a QR code on white: what Chromium's fake camera shows."""
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=6, border=4)
    qr = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    frame = Image.new("RGB", (640, 480), "white")
    frame.paste(qr, ((640 - qr.width) // 2, (480 - qr.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    planes = y.tobytes() + cb.resize((320, 240)).tobytes() + cr.resize((320, 240)).tobytes()
    with path.open("wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(10):
            f.write(b"FRAME\n" + planes)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not JSQR.exists(), reason="jsqr not installed from assets/package.json (scripts/setup.sh)")
def test_camera_scans_a_member_card(chromium, live_server, district, tmp_path):
    """The camera button with the jsQR decoder: Chromium's fake camera shows a member card's QR."""
    start = timezone.now() + dt.timedelta(days=2)
    a = activities_svc.create_activity(
        district.admin_a1,
        district.union_a1,
        title="摄影展",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        capacity=5,
    )
    joiner = make_member(district.union_a1, "东方扫码")
    signups_svc.sign_up(joiner.user, a.pk)
    now = timezone.now()
    Activity.objects.filter(pk=a.pk).update(
        signup_opens_at=now - dt.timedelta(days=1),
        signup_closes_at=now - dt.timedelta(minutes=30),
        cancel_until=now - dt.timedelta(minutes=30),
        starts_at=now - dt.timedelta(minutes=5),
    )
    clip = tmp_path / "card.y4m"
    _y4m_with_qr(clip, live_server.url + "/c/verify/?t=" + card_token(joiner))
    camera_args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + camera_args, headless=True)
    try:
        ctx = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=live_server.url, permissions=["camera"])
        ctx.add_init_script(path=str(JSQR))  # as if set-up had vendored it into the static files
        page = ctx.new_page()
        _login(page, district.admin_a1.phone, f"/c/login/?next=/c/activities/{a.pk}/checkin/")
        page.wait_for_selector("#scan-btn", state="visible")
        page.click("#scan-btn")
        page.wait_for_selector("#card-ok", timeout=20000)
        assert "东**码" in page.inner_text("#card-ok")
        screenshot(page, "cadre-activity-camera-checkin-phone")
    finally:
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_review_shows_what_a_proposal_costs_and_the_cadre_sets_the_reward(page_factory, district):
    m = make_member(district.union_a1, "欧阳发起人")
    start = timezone.now() + dt.timedelta(days=3)
    a = activities_svc.create_activity(
        m.user,
        district.union_a1,
        title="职工亲子植树活动",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=3),
        capacity=40,
        points_cost=5,
    )
    # A proposal made before members were refused a reward still carries one: the approver sees it.
    Activity.objects.filter(pk=a.pk).update(points_reward=20)
    cadre = page_factory(PHONE)
    _login(cadre, district.admin_a1.phone, "/c/login/?next=/c/activities/")
    cadre.wait_for_selector(f"#proposal-{a.pk}")
    assert "最多 800 分" in cadre.inner_text(f"#cost-points-reward-{a.pk}")
    screenshot(cadre, "cadre-activity-proposal-costs-phone")
    cadre.click(f"#review-{a.pk}")
    cadre.wait_for_selector("#proposal-costs")
    assert "每人 5 分" in cadre.inner_text("#proposal-costs")
    assert cadre.input_value("#points_reward") == "20"
    cadre.fill("#points_reward", "2")
    screenshot(cadre, "cadre-activity-review-costs-phone")
    cadre.click("#approve-edited")
    cadre.wait_for_selector("#no-proposals")
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED and a.points_reward == 2 and a.points_cost == 5
