"""Publishing activities: who may publish or propose, every bad value named, nothing half-saved,
proposals decided, edits, covers re-encoded, cancelling with refunds, and who sees what."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from activities.models import Activity, ActivityStatus, Signup, SignupStatus
from activities.services import activities as svc
from activities.services import signups
from clubs.models import Club, ClubMembership, ClubStatus
from conftest import make_member, make_user
from core.errors import DomainError, Forbidden, Invalid, NotFound
from core.models import AuditLog
from notifications.models import Notification, OutboxMessage
from points.services import ledger
from points.tests.helpers import assert_ledger_sound, counts, give, reconcile

from .conftest import move, open_activity

pytestmark = pytest.mark.django_db


def _later(days: float = 2, hours: float = 0) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days, hours=hours)


# --- who publishes --------------------------------------------------------------------------------


def test_an_admin_cadre_publishes_for_an_org_in_their_subtree(district):
    a = open_activity(district.admin_a, district.union_a1, title="  职工健步走  ", category="sports", place="江滩公园")
    assert a.status == ActivityStatus.PUBLISHED
    assert a.title == "职工健步走" and a.organizer == district.admin_a and not a.member_initiated
    assert a.signup_closes_at == a.starts_at and a.cancel_until == a.signup_closes_at
    assert a.signup_opens_at <= timezone.now()
    assert len(a.checkin_secret) == 64
    assert AuditLog.objects.filter(action="activity.create", target_id=str(a.pk)).exists()


def test_a_cadre_outside_the_subtree_or_a_staff_cadre_cannot_publish(district):
    with pytest.raises(Forbidden) as e:
        open_activity(district.admin_b, district.union_a1)
    assert e.value.code == "not_allowed"
    with pytest.raises(Forbidden):
        open_activity(district.staff_a, district.street_a)
    assert not Activity.objects.exists()


def test_a_certified_member_proposes_and_the_nearest_admins_are_told(district):
    m = make_member(district.union_a1, "发起人")
    a = open_activity(m.user, district.union_a1, title="周末骑行")
    assert a.status == ActivityStatus.PROPOSED and a.member_initiated and a.organizer == m.user
    told = set(Notification.objects.filter(kind="activity.proposed").values_list("user_id", flat=True))
    assert told == {district.admin_a1.pk}  # the union's own admin, not every admin above
    assert OutboxMessage.objects.filter(notification__kind="activity.proposed").count() == 1


def test_a_members_proposal_cannot_carry_a_points_reward(district):
    """A reward is paid from the org's budget at check-in, so only the approving cadre sets it."""
    m = make_member(district.union_a1, "发起人")
    for reward in (10, "10", "x", -1):
        with pytest.raises(Invalid) as e:
            open_activity(m.user, district.union_a1, points_reward=reward)
        assert set(e.value.fields) == {"points_reward"} and "工会干部" in e.value.fields["points_reward"]
    assert not Activity.objects.exists()
    # No reward (0 or absent) is a proposal like any other.
    assert open_activity(m.user, district.union_a1, points_reward=0).points_reward == 0


def test_the_approving_cadre_sets_the_reward_and_the_proposer_cannot_add_one_later(district):
    m = make_member(district.union_a1, "发起人")
    a = open_activity(m.user, district.union_a1, title="周末骑行")
    with pytest.raises(Invalid) as e:
        svc.update_activity(m.user, a, points_reward=30)  # the organizer edits the pending proposal
    assert set(e.value.fields) == {"points_reward"}
    a = svc.decide_proposal(district.admin_a1, a, approve=True, edits={"points_reward": 20})
    a.refresh_from_db()
    assert a.status == ActivityStatus.PUBLISHED and a.points_reward == 20


def test_followers_uncertified_members_and_members_of_other_unions_cannot_propose(district):
    follower = make_user("粉丝")
    uncertified = make_member(district.union_a1, "未认证", certified=False)
    other = make_member(district.union_b1, "乙会员")
    for user in (follower, uncertified.user, other.user):
        with pytest.raises(Forbidden):
            open_activity(user, district.union_a1)
    assert not Activity.objects.exists()


def test_a_club_admin_publishes_club_only_activities_and_cannot_promise_points(district):
    admin = make_member(district.union_a1, "联盟管理员")
    club = Club.objects.create(
        org=district.union_a1, name="羽毛球联盟", status=ClubStatus.ACTIVE, proposed_by=admin.user
    )
    ClubMembership.objects.create(club=club, user=admin.user, role="admin")
    a = open_activity(admin.user, district.street_a, club=club, eligibility="club")
    assert a.status == ActivityStatus.PUBLISHED and a.org == district.union_a1 and a.club == club
    with pytest.raises(Invalid) as e:
        open_activity(admin.user, district.union_a1, club=club, eligibility="club", points_reward=50)
    assert set(e.value.fields) == {"points_reward"}
    # A club that is not active yet cannot take activities.
    club.status = ClubStatus.PROPOSED
    club.save()
    with pytest.raises(Invalid) as e:
        open_activity(district.admin_a1, district.union_a1, club=club, eligibility="club")
    assert "club" in e.value.fields
    assert Activity.objects.count() == 1


# --- bad values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"capacity": 0}, "invalid_capacity", "capacity"),
        ({"capacity": -5}, "invalid_capacity", "capacity"),
        ({"capacity": "很多"}, "invalid_capacity", "capacity"),
        ({"capacity": True}, "invalid_capacity", "capacity"),
        ({"ends_at": _later(1)}, "ends_before_start", "ends_at"),
        ({"starts_at": _later(-1), "ends_at": _later(1)}, "starts_in_past", "starts_at"),
        ({"signup_opens_at": _later(3)}, "invalid_signup_window", "signup_opens_at"),
        ({"signup_closes_at": _later(2, 1)}, "invalid_signup_window", "signup_closes_at"),
        ({"signup_opens_at": _later(1), "signup_closes_at": _later(0.5)}, "invalid_signup_window", "signup_closes_at"),
        ({"cancel_until": _later(2, 1)}, "invalid_signup_window", "cancel_until"),
        ({"title": ""}, "invalid", "title"),
        ({"title": "长" * 101}, "invalid", "title"),
        ({"category": "party"}, "invalid", "category"),
        ({"eligibility": "vip"}, "invalid", "eligibility"),
        ({"eligibility": "club"}, "invalid", "club"),
        ({"points_cost": -1}, "invalid", "points_cost"),
        ({"points_reward": "x"}, "invalid", "points_reward"),
        ({"starts_at": "明天"}, "invalid", "starts_at"),
        ({"extra_fields": [{"label": ""}]}, "invalid", "extra_fields"),
        ({"extra_fields": [{"key": "a", "label": "甲"}, {"key": "a", "label": "乙"}]}, "invalid", "extra_fields"),
    ],
)
def test_each_bad_value_is_named_and_nothing_is_saved(district, change, code, field):
    with pytest.raises(Invalid) as e:
        open_activity(district.admin_a, district.street_a, **change)
    assert e.value.code == code, e.value.fields
    assert field in e.value.fields
    assert not Activity.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="activity.").exists()


def test_several_bad_values_are_all_named_at_once(district):
    with pytest.raises(Invalid) as e:
        open_activity(district.admin_a, district.street_a, title="", capacity=0, ends_at=_later(1), category="x")
    assert e.value.code == "invalid"
    assert set(e.value.fields) == {"title", "capacity", "ends_at", "category"}


def test_extra_fields_are_normalized(district):
    a = open_activity(
        district.admin_a,
        district.street_a,
        extra_fields=[{"label": "T恤尺码", "required": True, "choices": "S, M，L"}, "紧急联系人"],
    )
    assert a.extra_fields == [
        {"key": "f1", "label": "T恤尺码", "required": True, "choices": ["S", "M", "L"]},
        {"key": "f2", "label": "紧急联系人", "required": False, "choices": []},
    ]


# --- proposals ------------------------------------------------------------------------------------


def test_approving_with_edits_publishes_with_the_member_as_organizer(district):
    m = make_member(district.union_a1, "发起人")
    a = open_activity(m.user, district.union_a1, title="周末骑行", capacity=10)
    # Others do not see a proposal; the proposer and the union's cadres do.
    other = make_member(district.union_a1, "旁人")
    with pytest.raises(NotFound):
        svc.activity_for_user(other.user, a.pk)
    assert svc.activity_for_user(m.user, a.pk) == a
    assert list(svc.proposals_for_cadre(district.admin_a1)) == [a]
    assert list(svc.proposals_for_cadre(district.admin_b)) == []
    with pytest.raises(Forbidden):
        svc.decide_proposal(district.staff_a, a, approve=True)
    with pytest.raises(NotFound):
        svc.decide_proposal(district.admin_b, a, approve=True)
    a = svc.decide_proposal(district.admin_a1, a, approve=True, edits={"capacity": 20, "place": "绿道驿站"})
    assert (a.status, a.capacity, a.place, a.organizer, a.decided_by) == (
        "published",
        20,
        "绿道驿站",
        m.user,
        district.admin_a1,
    )
    assert Notification.objects.filter(user=m.user, kind="activity.approved").exists()
    assert svc.activity_for_user(other.user, a.pk) == a
    with pytest.raises(DomainError) as e:
        svc.decide_proposal(district.admin_a1, a, approve=False, reason="重复")
    assert e.value.code == "not_proposed"


def test_rejecting_needs_a_reason_and_tells_the_proposer(district):
    m = make_member(district.union_a1, "发起人")
    a = open_activity(m.user, district.union_a1)
    with pytest.raises(Invalid) as e:
        svc.decide_proposal(district.admin_a1, a, approve=False, reason="  ")
    assert e.value.code == "reason_required"
    assert Activity.objects.get(pk=a.pk).status == ActivityStatus.PROPOSED
    a = svc.decide_proposal(district.admin_a1, a, approve=False, reason="场地不具备条件")
    assert a.status == ActivityStatus.REJECTED and a.decision_reason == "场地不具备条件"
    note = Notification.objects.get(user=m.user, kind="activity.rejected")
    assert "场地不具备条件" in note.body


def test_bad_edits_on_approval_leave_the_proposal_as_it_was(district):
    m = make_member(district.union_a1, "发起人")
    a = open_activity(m.user, district.union_a1)
    with pytest.raises(Invalid) as e:
        svc.decide_proposal(district.admin_a1, a, approve=True, edits={"capacity": 0})
    assert "capacity" in e.value.fields
    a.refresh_from_db()
    assert a.status == ActivityStatus.PROPOSED and a.capacity == 5
    assert not Notification.objects.filter(kind="activity.approved").exists()


# --- editing --------------------------------------------------------------------------------------


def test_capacity_cannot_go_below_the_confirmed_and_more_seats_promote_the_waitlist(district):
    a = open_activity(district.admin_a, district.street_a, capacity=2)
    people = [make_member(district.union_a1, f"会员{i}") for i in range(4)]
    for p in people:
        signups.sign_up(p.user, a.pk)
    with pytest.raises(Invalid) as e:
        svc.update_activity(district.admin_a, a, capacity=1)
    assert e.value.code == "invalid_capacity"
    a = svc.update_activity(district.admin_a, a, capacity=3)
    assert (a.confirmed_count, a.waitlist_count) == (3, 1)
    assert Signup.objects.get(user=people[2].user).status == SignupStatus.CONFIRMED
    assert Signup.objects.get(user=people[3].user).status == SignupStatus.WAITLISTED
    assert Notification.objects.filter(user=people[2].user, kind="activity.promoted").exists()


def test_points_cost_and_fields_are_fixed_once_someone_signed_up_and_moves_are_announced(district):
    a = open_activity(district.admin_a, district.street_a)
    m = make_member(district.union_a1)
    signups.sign_up(m.user, a.pk)
    with pytest.raises(DomainError) as e:
        svc.update_activity(district.admin_a, a, points_cost=10)
    assert e.value.code == "locked_after_signups"
    svc.update_activity(district.admin_a, a, place="区文化宫二楼")
    assert Notification.objects.filter(user=m.user, kind="activity.changed").exists()
    with pytest.raises(Forbidden):
        svc.update_activity(m.user, a, title="改名")
    with pytest.raises(Invalid) as e:
        svc.update_activity(district.admin_a, a, organizer=1)
    assert "organizer" in e.value.fields


# --- covers ---------------------------------------------------------------------------------------


def _image(fmt: str, size=(2000, 1000), mode="RGB") -> bytes:
    out = io.BytesIO()
    img = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128))
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x010F] = "Secret Camera"
        img.save(out, fmt, exif=exif)
    else:
        img.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "mode"), [("JPEG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGB"), ("GIF", "RGB")])
def test_a_cover_is_resized_and_re_encoded_as_jpeg(district, media, fmt, mode):
    a = open_activity(district.admin_a, district.street_a)
    upload = SimpleUploadedFile("cover.bin", _image(fmt, mode=mode), content_type="image/png")
    svc.set_cover(district.admin_a, a, upload)
    a.refresh_from_db()
    assert a.cover.name.endswith(".jpg") and "cover.bin" not in a.cover.name
    with Image.open(a.cover.path) as img:
        assert img.format == "JPEG" and max(img.size) == 1280
        assert not img.getexif()  # the camera's metadata is gone


def test_a_new_cover_replaces_the_old_file(district, media):
    a = open_activity(district.admin_a, district.street_a)
    svc.set_cover(district.admin_a, a, SimpleUploadedFile("a.png", _image("PNG", (300, 200))))
    first = a.cover.path
    svc.set_cover(district.admin_a, a, SimpleUploadedFile("b.png", _image("PNG", (300, 200))))
    import os

    assert not os.path.exists(first) and os.path.exists(a.cover.path)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"%PDF-1.4 not an image", "invalid_image"),
        (b"", "invalid_image"),
        (b"GIF89a" + b"\x00" * 20, "invalid_image"),
        ("BMP", "unsupported_image_type"),
        ("TIFF", "unsupported_image_type"),
        (b"\xff\xd8" + b"0" * (5 * 1024 * 1024), "image_too_large"),
    ],
)
def test_wrong_image_types_and_oversized_uploads_are_refused(district, media, data, code):
    a = open_activity(district.admin_a, district.street_a)
    if isinstance(data, str):
        data = _image(data, (50, 50))
    with pytest.raises(Invalid) as e:
        svc.set_cover(district.admin_a, a, SimpleUploadedFile("x.jpg", data, content_type="image/jpeg"))
    assert e.value.code == code and "cover" in e.value.fields
    a.refresh_from_db()
    assert not a.cover
    assert not list(media.rglob("*.jpg"))


def test_only_the_organizer_or_an_admin_sets_the_cover(district, media):
    a = open_activity(district.admin_a, district.street_a)
    m = make_member(district.union_a1)
    with pytest.raises(Forbidden):
        svc.set_cover(m.user, a, SimpleUploadedFile("a.png", _image("PNG", (30, 30))))


# --- cancelling -----------------------------------------------------------------------------------


def test_cancelling_refunds_points_notifies_everyone_in_one_go(district):
    a = open_activity(district.admin_a, district.street_a, capacity=2, points_cost=30)
    people = [make_member(district.union_a1, f"会员{i}") for i in range(3)]
    give(district.union_a1, district.district_admin, people, 100)
    for p in people:
        signups.sign_up(p.user, a.pk)
    assert [ledger.balance_of(p.user) for p in people] == [70, 70, 100]  # the waitlisted has not paid
    with pytest.raises(Invalid) as e:
        svc.cancel_activity(district.admin_a, a, reason="")
    assert e.value.code == "reason_required"
    a = svc.cancel_activity(district.admin_a, a, reason="暴雨预警")
    assert a.status == ActivityStatus.CANCELLED and (a.confirmed_count, a.waitlist_count) == (0, 0)
    assert [ledger.balance_of(p.user) for p in people] == [100, 100, 100]
    assert set(Signup.objects.values_list("status", "cancelled_by_activity")) == {("cancelled", True)}
    assert Notification.objects.filter(kind="activity.cancelled").count() == 3
    assert "暴雨预警" in Notification.objects.filter(kind="activity.cancelled").first().body
    assert reconcile()[0] == 0
    assert_ledger_sound()
    with pytest.raises(DomainError) as e:
        svc.cancel_activity(district.admin_a, a, reason="再取消")
    assert e.value.code == "already_cancelled"
    with pytest.raises(DomainError) as e:
        signups.sign_up(make_member(district.union_a1).user, a.pk)
    assert e.value.code == "signup_closed"


def test_an_activity_that_started_cannot_be_cancelled(district):
    a = open_activity(district.admin_a, district.street_a)
    signups.sign_up(make_member(district.union_a1).user, a.pk)
    move(a, starts_in=dt.timedelta(minutes=-5))
    before = counts()
    with pytest.raises(DomainError) as e:
        svc.cancel_activity(district.admin_a, a, reason="太晚了")
    assert e.value.code == "already_started"
    assert Activity.objects.get(pk=a.pk).status == ActivityStatus.PUBLISHED
    assert Signup.objects.get().status == SignupStatus.CONFIRMED
    assert counts() == before


def test_only_the_organizer_or_an_admin_cancels(district):
    a = open_activity(district.admin_a, district.street_a)
    with pytest.raises(Forbidden):
        svc.cancel_activity(make_member(district.union_a1).user, a, reason="不想办了")
    with pytest.raises(NotFound):
        svc.cancel_activity(district.admin_b, a, reason="不是我的")


# --- who sees what --------------------------------------------------------------------------------


def test_members_see_their_unions_chain_clubs_and_open_to_everyone(district):
    mine = open_activity(district.admin_a1, district.union_a1, title="本单位")
    street = open_activity(district.admin_a, district.street_a, title="街道")
    top = open_activity(district.district_admin, district.root, title="全区", category="lecture")
    sibling = open_activity(district.admin_a, district.union_a2, title="兄弟单位")
    elsewhere = open_activity(district.admin_b, district.union_b1, title="乙街道")
    everyone = open_activity(district.admin_b, district.union_b1, title="乙街道开放日", eligibility="everyone")
    m = make_member(district.union_a1)
    seen = list(svc.activities_for_user(m.user))
    assert set(seen) == {mine, street, top, everyone}
    assert seen == sorted(seen, key=lambda a: (a.starts_at, a.pk))
    assert list(svc.activities_for_user(m.user, category="lecture")) == [top]
    assert set(svc.activities_for_user(m.user, scope="org")) == {mine, street, top}
    for hidden in (sibling, elsewhere):
        with pytest.raises(NotFound):
            svc.activity_for_user(m.user, hidden.pk)
    follower = make_user("粉丝")
    assert list(svc.activities_for_user(follower)) == [everyone]
    # A cadre reaches everything in their subtree.
    assert svc.activity_for_user(district.admin_a, sibling.pk) == sibling
    assert set(svc.activities_for_cadre(district.admin_a)) == {mine, street, sibling}


def test_date_filters_mine_and_ended_activities(district):
    soon = open_activity(district.admin_a, district.street_a, title="后天")
    later = open_activity(district.admin_a, district.street_a, title="下周", starts_at=_later(8), ends_at=_later(8, 2))
    ended = open_activity(district.admin_a, district.street_a, title="结束了")
    m = make_member(district.union_a1)
    signups.sign_up(m.user, ended.pk)
    move(ended, starts_in=dt.timedelta(days=-1))
    today = timezone.localdate()
    assert list(svc.activities_for_user(m.user, date_from=today + dt.timedelta(days=5))) == [later]
    assert list(svc.activities_for_user(m.user, date_to=today + dt.timedelta(days=3))) == [soon]
    assert list(svc.activities_for_user(m.user, scope="mine")) == [ended]
    assert ended not in list(svc.activities_for_user(m.user))


def test_club_activities_show_for_club_members_in_the_clubs_scope(district):
    founder = make_member(district.union_a2, "创始人")
    club = Club.objects.create(
        org=district.union_a2, name="摄影联盟", status=ClubStatus.ACTIVE, proposed_by=founder.user
    )
    a = open_activity(district.admin_a, district.union_a2, club=club, eligibility="club", title="外拍")
    outsider = make_member(district.union_a1, "外人")
    with pytest.raises(NotFound):
        svc.activity_for_user(outsider.user, a.pk)
    ClubMembership.objects.create(club=club, user=outsider.user)
    assert list(svc.activities_for_user(outsider.user, scope="clubs")) == [a]
    assert svc.activity_for_user(outsider.user, a.pk) == a


def test_the_members_list_is_a_fixed_number_of_queries(district):
    for i in range(30):
        open_activity(district.admin_a, district.street_a, title=f"活动{i}")
    m = make_member(district.union_a1)
    with CaptureQueriesContext(connection) as ctx:
        page = list(svc.activities_for_user(m.user)[:20])
    assert len(page) == 20
    assert len(ctx.captured_queries) <= 5, [q["sql"] for q in ctx.captured_queries]
