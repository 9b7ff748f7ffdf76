"""Clubs: proposing and deciding, joining and leaving (the count), approvals, admins, posts, reach."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from clubs.models import Club, ClubMembership
from clubs.services import clubs as svc
from conftest import make_member, make_user
from core.errors import DomainError, Forbidden, Invalid, NotFound
from notifications.models import Notification

from .helpers import active_club, count_matches

pytestmark = pytest.mark.django_db


# --- proposing and deciding -------------------------------------------------------------------


def test_a_proposal_belongs_to_the_proposers_union_and_waits_for_a_cadre(district):
    m = make_member(district.union_a1, "周发起")
    club = svc.propose(m.user, name="摄影联盟", description="扫街、人像、风光", category="摄影", join_policy="approval")
    assert club.org == district.union_a1 and club.status == "proposed" and club.members_count == 0
    assert not ClubMembership.objects.filter(club=club).exists()
    # Not listed for others until approved; the proposer sees it as theirs.
    other = make_member(district.union_a1, "同事")
    assert not svc.clubs_for_user(other.user).filter(pk=club.pk).exists()
    assert svc.my_clubs(m.user).filter(pk=club.pk).exists()
    with pytest.raises(NotFound):
        svc.club_for_user(other.user, club.pk)


def test_followers_cannot_propose_and_bad_input_names_the_field(district):
    with pytest.raises(Forbidden) as e:
        svc.propose(make_user("粉丝"), name="羽毛球", description="打球")
    assert e.value.code == "not_a_member"
    m = make_member(district.union_a1)
    with pytest.raises(Invalid) as e:
        svc.propose(m.user, name="", description="x")
    assert "name" in e.value.fields
    with pytest.raises(Invalid) as e:
        svc.propose(m.user, name="名" * 51, description="x")
    assert "name" in e.value.fields
    with pytest.raises(Invalid) as e:
        svc.propose(m.user, name="书法", description="x", join_policy="secret")
    assert "join_policy" in e.value.fields


def test_the_same_name_twice_in_one_union_is_refused_but_a_rejected_name_can_be_reused(district):
    a = make_member(district.union_a1, "甲")
    b = make_member(district.union_a1, "乙")
    first = svc.propose(a.user, name="书法联盟", description="写字")
    with pytest.raises(DomainError) as e:
        svc.propose(b.user, name="书法联盟", description="也写字")
    assert e.value.code == "name_taken" and "name" in e.value.fields
    # Another union may use the name.
    svc.propose(make_member(district.union_b1).user, name="书法联盟", description="写字")
    svc.decide(district.admin_a, first.pk, approve=False, reason="请与工会文体委员沟通后再申请")
    assert svc.propose(b.user, name="书法联盟", description="再来").status == "proposed"


def test_open_proposals_per_person_are_capped(district):
    m = make_member(district.union_a1)
    for i in range(svc.MAX_OPEN_PROPOSALS):
        svc.propose(m.user, name=f"联盟{i}", description="x")
    with pytest.raises(DomainError) as e:
        svc.propose(m.user, name="再一个", description="x")
    assert e.value.code == "too_many_proposals"


def test_approval_makes_the_proposer_the_first_admin_and_tells_them(district):
    m = make_member(district.union_a1, "钱发起")
    club = svc.propose(m.user, name="篮球联盟", description="周三晚上打球")
    club = svc.decide(district.admin_a1, club.pk, approve=True)
    assert club.status == "active" and club.members_count == 1 and club.decided_by == district.admin_a1
    assert svc.is_club_admin(m.user, club) and svc.is_club_member(m.user, club)
    note = Notification.objects.get(user=m.user, kind="club.approved")
    assert "篮球联盟" in note.title and note.url == f"/m/clubs/{club.pk}/"
    count_matches(club)
    with pytest.raises(DomainError) as e:  # deciding twice
        svc.decide(district.admin_a1, club.pk, approve=False, reason="重复")
    assert e.value.code == "not_proposed"


def test_rejection_needs_a_reason_and_tells_the_proposer_why(district):
    m = make_member(district.union_a1)
    club = svc.propose(m.user, name="钓鱼联盟", description="周末钓鱼")
    with pytest.raises(Invalid) as e:
        svc.decide(district.admin_a, club.pk, approve=False, reason="  ")
    assert e.value.code == "reason_required" and "reason" in e.value.fields
    svc.decide(district.admin_a, club.pk, approve=False, reason="安全风险较高")
    club.refresh_from_db()
    assert club.status == "rejected" and club.members_count == 0
    assert "安全风险较高" in Notification.objects.get(user=m.user, kind="club.rejected").body
    assert not ClubMembership.objects.filter(club=club).exists()


def test_a_cadre_outside_the_clubs_subtree_gets_404(district):
    club = svc.propose(make_member(district.union_a1).user, name="舞蹈联盟", description="广场舞")
    with pytest.raises(NotFound):
        svc.decide(district.admin_b, club.pk, approve=True)
    with pytest.raises(NotFound):
        svc.club_for_cadre(district.admin_b, club.pk)
    assert svc.club_for_cadre(district.district_admin, club.pk) == club
    assert not svc.clubs_for_cadre(district.admin_b).filter(pk=club.pk).exists()


# --- joining and leaving ----------------------------------------------------------------------


def test_joining_an_open_club_is_immediate_and_counted(district):
    club = active_club(district)
    m = make_member(district.union_a1, "孙加入")
    ms = svc.join(m.user, club.pk)
    assert ms.status == "active" and svc.is_club_member(m.user, club) and not svc.is_club_admin(m.user, club)
    club.refresh_from_db()
    assert club.members_count == 2
    with pytest.raises(DomainError) as e:
        svc.join(m.user, club.pk)
    assert e.value.code == "already_member"
    count_matches(club)


def test_a_club_needing_approval_holds_the_request_until_an_admin_decides(district):
    admin = make_member(district.union_a1, "管理员")
    club = active_club(district, "摄影联盟", policy="approval", proposer=admin.user)
    m = make_member(district.union_a1, "李申请")
    ms = svc.join(m.user, club.pk)
    assert ms.status == "pending" and not svc.is_club_member(m.user, club)
    club.refresh_from_db()
    assert club.members_count == 1
    assert Notification.objects.filter(user=admin.user, kind="club.join_request").exists()
    with pytest.raises(DomainError) as e:
        svc.join(m.user, club.pk)
    assert e.value.code == "already_pending"
    # Only a club admin decides.
    with pytest.raises(Forbidden):
        svc.decide_join(make_member(district.union_a1).user, club.pk, m.user_id, approve=True)
    svc.decide_join(admin.user, club.pk, m.user_id, approve=True)
    assert svc.is_club_member(m.user, club)
    assert Notification.objects.filter(user=m.user, kind="club.join_decided").exists()
    count_matches(club)
    with pytest.raises(DomainError) as e:
        svc.decide_join(admin.user, club.pk, m.user_id, approve=True)
    assert e.value.code == "not_pending"
    club.refresh_from_db()
    assert club.members_count == 2


def test_a_declined_request_leaves_no_membership_and_a_withdrawn_one_does_not_touch_the_count(district):
    admin = make_member(district.union_a1, "管理员")
    club = active_club(district, "书画联盟", policy="approval", proposer=admin.user)
    a, b = make_member(district.union_a1, "甲"), make_member(district.union_a1, "乙")
    svc.join(a.user, club.pk)
    svc.join(b.user, club.pk)
    svc.decide_join(admin.user, club.pk, a.user_id, approve=False)
    assert svc.membership_of(a.user, club) is None
    svc.leave(b.user, club.pk)  # withdraw
    assert svc.membership_of(b.user, club) is None
    club.refresh_from_db()
    assert club.members_count == 1


def test_leaving_lowers_the_count_and_a_second_leave_is_refused(district):
    club = active_club(district)
    m = make_member(district.union_a1)
    svc.join(m.user, club.pk)
    svc.leave(m.user, club.pk)
    club.refresh_from_db()
    assert club.members_count == 1 and not svc.is_club_member(m.user, club)
    with pytest.raises(DomainError) as e:
        svc.leave(m.user, club.pk)
    assert e.value.code == "not_in_club"
    # and may join again
    svc.join(m.user, club.pk)
    count_matches(club)


def test_the_only_admin_cannot_leave_until_another_member_is_promoted(district):
    admin = make_member(district.union_a1, "老管理员")
    club = active_club(district, proposer=admin.user)
    m = make_member(district.union_a1, "新管理员")
    svc.join(m.user, club.pk)
    with pytest.raises(DomainError) as e:
        svc.leave(admin.user, club.pk)
    assert e.value.code == "last_admin"
    with pytest.raises(Forbidden):
        svc.promote(m.user, club.pk, m.user_id)  # a plain member can't promote
    svc.promote(admin.user, club.pk, m.user_id)
    assert svc.is_club_admin(m.user, club)
    svc.leave(admin.user, club.pk)
    club.refresh_from_db()
    assert club.members_count == 1
    count_matches(club)


def test_followers_cannot_join_and_members_of_other_unions_cannot_see_the_club(district):
    club = active_club(district)
    with pytest.raises(Forbidden):
        svc.join(make_user("粉丝"), club.pk)
    outsider = make_member(district.union_b1, "乙一会员")
    with pytest.raises(NotFound):
        svc.join(outsider.user, club.pk)
    with pytest.raises(NotFound):
        svc.club_for_user(outsider.user, club.pk)
    neighbour = make_member(district.union_a2, "甲二会员")  # same street, another union
    with pytest.raises(NotFound):
        svc.club_for_user(neighbour.user, club.pk)
    with pytest.raises(NotFound):
        svc.club_for_user(outsider.user, "not-a-number")


def test_a_street_level_club_is_open_to_every_union_under_the_street(district):
    street_member = make_member(district.street_a, "街道会员")
    club = active_club(district, "街道合唱团", org=district.street_a, proposer=street_member.user)
    assert club.org == district.street_a
    for org in (district.union_a1, district.union_a2):
        m = make_member(org)
        assert svc.clubs_for_user(m.user).filter(pk=club.pk).exists()
        svc.join(m.user, club.pk)
    assert not svc.clubs_for_user(make_member(district.union_b1).user).filter(pk=club.pk).exists()
    count_matches(club)


def test_the_count_cannot_go_below_zero_in_the_database(district):
    from django.db import IntegrityError, transaction

    club = active_club(district)
    with pytest.raises(IntegrityError), transaction.atomic():
        Club.objects.filter(pk=club.pk).update(members_count=-1)


def test_a_pending_request_cannot_hold_admin_rights_in_the_database(district):
    from django.db import IntegrityError, transaction

    club = active_club(district)
    with pytest.raises(IntegrityError), transaction.atomic():
        ClubMembership.objects.create(club=club, user=make_user(), role="admin", status="pending")


# --- posts and activities ---------------------------------------------------------------------


def test_an_admins_post_notifies_every_other_member(district):
    admin = make_member(district.union_a1, "管理员")
    club = active_club(district, proposer=admin.user)
    members = [make_member(district.union_a1, f"成员{i}") for i in range(3)]
    for m in members:
        svc.join(m.user, club.pk)
    p = svc.post(admin.user, club.pk, title="周六登山集合", body="早上八点地铁站A口集合")
    assert set(Notification.objects.filter(kind="club.post").values_list("user_id", flat=True)) == {
        m.user_id for m in members
    }
    assert Notification.objects.filter(kind="club.post").first().url.endswith(f"#post-{p.pk}")
    with pytest.raises(Forbidden):
        svc.post(members[0].user, club.pk, title="我也发", body="不行")
    with pytest.raises(Invalid) as e:
        svc.post(admin.user, club.pk, title="", body="x")
    assert "title" in e.value.fields


def test_upcoming_activities_are_the_clubs_published_future_ones(district):
    from activities.models import Activity

    club = active_club(district)
    now = timezone.now()

    def activity(title, starts, status="published", with_club=True):
        return Activity.objects.create(
            org=district.union_a1,
            club=club if with_club else None,
            eligibility="club" if with_club else "members",
            title=title,
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=3),
            signup_opens_at=starts - dt.timedelta(days=20),
            signup_closes_at=starts - dt.timedelta(hours=1),
            cancel_until=starts - dt.timedelta(hours=2),
            capacity=20,
            status=status,
            organizer=district.admin_a1,
            created_by=district.admin_a1,
            checkin_secret="x" * 32,
        )

    soon = activity("青城山徒步", now + dt.timedelta(days=3))
    later = activity("龙泉山夜爬", now + dt.timedelta(days=10))
    activity("上月活动", now - dt.timedelta(days=30))
    activity("已取消", now + dt.timedelta(days=5), status="cancelled")
    activity("工会活动", now + dt.timedelta(days=2), with_club=False)
    assert list(svc.upcoming_activities(club)) == [soon, later]
