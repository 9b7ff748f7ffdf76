"""Console activities pages: the list with status filters and attendance, create/edit (cover, extra
fields, points, club), detail with the sign-up tabs and waitlist positions, .xlsx export, messages,
cancelling with a reason, the proposals queue, scope (outsiders 404) and CSRF."""

import datetime as dt
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook
from PIL import Image

from activities.models import Activity, ActivityStatus, SignupStatus
from activities.services import activities as activities_svc
from activities.services import signups as signups_svc
from clubs.models import Club, ClubStatus
from conftest import make_member
from notifications.models import Notification

pytestmark = pytest.mark.django_db


def _when(days: float, hours: float = 0) -> str:
    return (timezone.localtime() + dt.timedelta(days=days, hours=hours)).strftime("%Y-%m-%dT%H:%M")


def _form(**kw) -> dict:
    data = {
        "title": "职工篮球联赛",
        "category": "sports",
        "place": "区体育馆",
        "description": "以工会为单位组队参赛",
        "starts_at": _when(5),
        "ends_at": _when(5, 3),
        "capacity": "40",
        "waitlist": "1",
        "eligibility": "members",
        "points_cost": "0",
        "points_reward": "10",
        "xf_count": "3",
        "xf_label_0": "T恤尺码",
        "xf_required_0": "1",
        "xf_choices_0": "S、M、L",
        "xf_label_1": "",
        "xf_label_2": "",
    }
    data.update(kw)
    return data


def _png() -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", (320, 180), (200, 40, 40)).save(buf, "PNG")
    return SimpleUploadedFile("cover.png", buf.getvalue(), content_type="image/png")


def _activity(district, **kw) -> Activity:
    start = timezone.now() + dt.timedelta(days=3)
    args = {"title": "工会书法展", "starts_at": start, "ends_at": start + dt.timedelta(hours=2), "capacity": 2}
    args.update(kw)
    return activities_svc.create_activity(district.admin_a1, district.union_a1, **args)


def test_create_with_cover_and_extra_fields(client, district, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    client.force_login(district.admin_a1)
    url = reverse("console:activity_new") + f"?org={district.union_a1.pk}"
    assert 'id="activity-form"' in client.get(url).content.decode()
    resp = client.post(url, {**_form(), "org": district.union_a1.pk, "cover": _png()})
    a = Activity.objects.get(title="职工篮球联赛")
    assert resp.status_code == 302 and resp["Location"].startswith(reverse("console:activity", args=[a.pk]))
    assert a.status == ActivityStatus.PUBLISHED and a.org == district.union_a1 and a.points_reward == 10
    assert a.extra_fields == [{"key": "f1", "label": "T恤尺码", "required": True, "choices": ["S", "M", "L"]}]
    assert a.cover.name
    html = client.get(resp["Location"]).content.decode()
    assert "活动已发布" in html and 'id="no-signups"' not in html and "还没有人报名" in html


def test_create_errors_show_beside_fields_and_keep_input(client, district):
    client.force_login(district.admin_a1)
    url = reverse("console:activity_new")
    data = _form(title="", capacity="0", ends_at=_when(4), place="工人文化宫", org=district.union_a1.pk)
    resp = client.post(url, data)
    html = resp.content.decode()
    assert resp.status_code == 422
    assert html.count('class="field-error"') >= 3 and 'value="工人文化宫"' in html and 'value="T恤尺码"' in html
    resp = client.post(url, _form(starts_at="not a time", org=district.union_a1.pk))
    assert resp.status_code == 422 and "时间格式无效" in resp.content.decode()
    resp = client.post(url, _form(org=district.union_a1.pk, cover=SimpleUploadedFile("x.png", b"not an image")))
    assert resp.status_code == 422
    assert not Activity.objects.exists()


def test_club_only_activity(client, district):
    club = Club.objects.create(
        org=district.union_a1, name="羽毛球联盟", status=ClubStatus.ACTIVE, proposed_by=district.admin_a1
    )
    client.force_login(district.admin_a1)
    url = reverse("console:activity_new")
    resp = client.post(url, _form(eligibility="club", org=district.union_a1.pk))
    assert resp.status_code == 422 and "请选择兴趣联盟" in resp.content.decode()
    client.post(url, _form(eligibility="club", club=club.pk, org=district.union_a1.pk))
    a = Activity.objects.get()
    assert a.club == club and a.eligibility == "club"


def test_staff_cadre_cannot_create(client, district):
    client.force_login(district.staff_a)
    resp = client.post(reverse("console:activity_new"), _form(org=district.street_a.pk))
    assert resp.status_code == 403 and not Activity.objects.exists()


def test_list_filters_by_status_and_shows_attendance(client, district):
    a = _activity(district, title="已发布的活动")
    b = _activity(district, title="将被取消的活动")
    activities_svc.cancel_activity(district.admin_a1, b, reason="场地维修")
    client.force_login(district.admin_a1)
    html = client.get(reverse("console:activities")).content.decode()
    assert f'id="activity-{a.pk}"' in html and f'id="activity-{b.pk}"' in html and "出勤率" in html
    html = client.get(reverse("console:activities") + "?status=cancelled").content.decode()
    assert f'id="activity-{a.pk}"' not in html and f'id="activity-{b.pk}"' in html
    html = client.get(reverse("console:activities") + "?status=proposed").content.decode()
    assert "没有该状态的活动" in html
    client.force_login(district.admin_b)
    html = client.get(reverse("console:activities")).content.decode()
    assert f'id="activity-{a.pk}"' not in html and "还没有活动" in html


def test_outsider_gets_404_everywhere(client, district):
    a = _activity(district)
    client.force_login(district.admin_b)
    for name in ("console:activity", "console:activity_edit", "console:activity_export"):
        assert client.get(reverse(name, args=[a.pk])).status_code == 404
    assert client.post(reverse("console:activity_cancel", args=[a.pk]), {"reason": "x"}).status_code == 404
    assert client.post(reverse("console:activity_message", args=[a.pk]), {"title": "x", "body": "y"}).status_code == 404
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED


def test_detail_tabs_waitlist_positions_and_masked_phones(client, district):
    a = _activity(district, capacity=1, extra_fields=[{"key": "phone2", "label": "紧急联系人电话", "required": False}])
    people = [make_member(district.union_a1, n) for n in ("甲报名", "乙候补", "丙候补")]
    signups_svc.sign_up(people[0].user, a.pk, {"phone2": "13912345678"})
    for p in people[1:]:
        signups_svc.sign_up(p.user, a.pk)
    client.force_login(district.admin_a1)
    html = client.get(reverse("console:activity", args=[a.pk])).content.decode()
    assert "甲报名" in html and "乙候补" not in html and "13912345678" not in html and "139****5678" in html
    html = client.get(reverse("console:activity", args=[a.pk]) + "?tab=waitlisted").content.decode()
    assert "候补顺位" in html and "乙候补" in html and "丙候补" in html
    assert html.index("乙候补") < html.index("丙候补")
    html = client.get(reverse("console:activity", args=[a.pk]) + "?tab=cancelled").content.decode()
    assert "没有取消的报名" in html


def test_export_is_an_xlsx_of_the_signups(client, district):
    a = _activity(district)
    signups_svc.sign_up(make_member(district.union_a1, "导出人").user, a.pk)
    client.force_login(district.admin_a1)
    resp = client.get(reverse("console:activity_export", args=[a.pk]))
    assert resp.status_code == 200 and "spreadsheetml" in resp["Content-Type"]
    ws = load_workbook(io.BytesIO(resp.content)).active
    assert any("导出人" in str(c.value) for row in ws.iter_rows() for c in row)


def test_message_participants_and_its_errors(client, district):
    a = _activity(district)
    m = make_member(district.union_a1, "收通知")
    signups_svc.sign_up(m.user, a.pk)
    client.force_login(district.admin_a1)
    url = reverse("console:activity_message", args=[a.pk])
    resp = client.post(url, {"title": "", "body": "", "statuses": ["confirmed"]})
    assert resp.status_code == 422 and "请填写标题" in resp.content.decode()
    html = client.post(
        url, {"title": "集合时间提前", "body": "请于8:30到场", "statuses": ["confirmed"]}, follow=True
    ).content.decode()
    assert "通知已发送给 1 人" in html
    assert Notification.objects.filter(user=m.user, title="集合时间提前").exists()


def test_cancel_needs_a_reason_then_tells_everyone(client, district):
    a = _activity(district)
    m = make_member(district.union_a1)
    signups_svc.sign_up(m.user, a.pk)
    client.force_login(district.admin_a1)
    url = reverse("console:activity_cancel", args=[a.pk])
    resp = client.post(url, {"reason": ""})
    assert resp.status_code == 422 and "请填写取消原因" in resp.content.decode()
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED
    html = client.post(url, {"reason": "暴雨预警"}, follow=True).content.decode()
    assert 'id="cancelled-note"' in html and "暴雨预警" in html
    a.refresh_from_db()
    assert a.status == ActivityStatus.CANCELLED
    assert a.signups.get().status == SignupStatus.CANCELLED


def test_edit_saves_changes_and_reports_locked_fields(client, district):
    a = _activity(district, capacity=5)
    client.force_login(district.admin_a1)
    url = reverse("console:activity_edit", args=[a.pk])
    html = client.get(url).content.decode()
    assert 'value="工会书法展"' in html
    values = {
        "title": "工会书法展（延期）",
        "category": a.category,
        "place": "文化宫二楼",
        "description": "",
        "starts_at": timezone.localtime(a.starts_at).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": timezone.localtime(a.ends_at).strftime("%Y-%m-%dT%H:%M"),
        "signup_opens_at": timezone.localtime(a.signup_opens_at).strftime("%Y-%m-%dT%H:%M"),
        "signup_closes_at": timezone.localtime(a.signup_closes_at).strftime("%Y-%m-%dT%H:%M"),
        "cancel_until": timezone.localtime(a.cancel_until).strftime("%Y-%m-%dT%H:%M"),
        "capacity": "8",
        "waitlist": "1",
        "eligibility": a.eligibility,
        "points_cost": "0",
        "points_reward": "0",
        "xf_count": "1",
        "xf_label_0": "",
    }
    resp = client.post(url, values)
    assert resp.status_code == 302
    a.refresh_from_db()
    assert (a.title, a.capacity, a.place) == ("工会书法展（延期）", 8, "文化宫二楼")
    signups_svc.sign_up(make_member(district.union_a1).user, a.pk)
    resp = client.post(url, {**values, "points_cost": "30"})
    assert resp.status_code == 409 and "已有人报名" in resp.content.decode()
    a.refresh_from_db()
    assert a.points_cost == 0


def test_proposals_queue_approve_reject_and_edit_then_approve(client, district):
    m = make_member(district.union_a1, "蒋发起")
    start = timezone.now() + dt.timedelta(days=6)
    made = [
        activities_svc.create_activity(
            m.user, district.union_a1, title=t, starts_at=start, ends_at=start + dt.timedelta(hours=2), capacity=10
        )
        for t in ("摄影沙龙", "茶艺体验", "亲子手工")
    ]
    client.force_login(district.admin_a1)
    html = client.get(reverse("console:activity_proposals")).content.decode()
    assert all(f'id="proposal-{a.pk}"' in html for a in made)
    resp = client.post(reverse("console:activity_decide", args=[made[1].pk]), {"decision": "reject", "reason": ""})
    assert resp.status_code == 422 and 'id="decide-error"' in resp.content.decode()
    client.post(reverse("console:activity_decide", args=[made[1].pk]), {"decision": "reject", "reason": "经费不足"})
    client.post(reverse("console:activity_decide", args=[made[0].pk]), {"decision": "approve"})
    edit = reverse("console:activity_edit", args=[made[2].pk])
    assert "保存修改并通过发布" in client.get(edit).content.decode()
    values = {
        "title": "亲子手工（周六上午）",
        "category": "family",
        "starts_at": timezone.localtime(start).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": timezone.localtime(start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "capacity": "16",
        "eligibility": "members",
        "xf_count": "0",
    }
    assert client.post(edit, values).status_code == 302
    for a in made:
        a.refresh_from_db()
    assert [a.status for a in made] == ["published", "rejected", "published"]
    assert made[1].decision_reason == "经费不足"
    assert (made[2].title, made[2].capacity, made[2].category) == ("亲子手工（周六上午）", 16, "family")
    html = client.get(reverse("console:activity_proposals")).content.decode()
    assert "没有待审核的会员活动" in html


def test_the_proposals_queue_shows_every_field_that_costs_the_org(client, district):
    m = make_member(district.union_a1, "蒋发起")
    start = timezone.now() + dt.timedelta(days=6)
    a = activities_svc.create_activity(
        m.user, district.union_a1, title="摄影沙龙", starts_at=start, ends_at=start + dt.timedelta(hours=2),
        capacity=10, points_cost=4,
    )
    # A proposal made before members were refused a reward still carries one: it must show.
    Activity.objects.filter(pk=a.pk).update(points_reward=9)
    client.force_login(district.admin_a1)
    html = client.get(reverse("console:activity_proposals")).content.decode()
    assert "签到奖励积分" in html and "报名所需积分" in html
    assert re.search(rf'id="points-reward-{a.pk}"[^>]*><strong>9</strong>.*预算最多 90', html)
    assert f'id="points-cost-{a.pk}">4<' in html and f'id="capacity-{a.pk}">10' in html


def test_console_forms_need_csrf(district):
    a = _activity(district)
    c = Client(enforce_csrf_checks=True)
    c.force_login(district.admin_a1)
    assert c.post(reverse("console:activity_cancel", args=[a.pk]), {"reason": "x"}).status_code == 403
    assert c.post(reverse("console:activity_new"), _form(org=district.union_a1.pk)).status_code == 403
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED


def test_nav_link(client, district):
    client.force_login(district.admin_a1)
    assert 'id="nav-activities"' in client.get(reverse("console:activities")).content.decode()
