"""Club pages: the member end (list, page, join/leave, propose, admin tools) and the console."""

from __future__ import annotations

import pytest

from clubs.models import Club
from clubs.services import clubs as svc
from conftest import make_member, make_user

from .helpers import active_club

pytestmark = pytest.mark.django_db


def _as(client, user):
    client.force_login(user)
    return client


def test_the_list_shows_my_clubs_and_all_in_reach(client, district):
    club = active_club(district, "长名字的登山徒步与户外摄影爱好者联盟")
    other = active_club(district, "乙街道书法", org=district.union_b1)
    m = make_member(district.union_a1)
    c = _as(client, m.user)
    mine = c.get("/m/clubs/")
    assert mine.status_code == 200 and 'id="no-clubs"' in mine.text
    every = c.get("/m/clubs/?tab=all")
    assert f'id="club-{club.pk}"' in every.text and f'id="club-{other.pk}"' not in every.text
    svc.join(m.user, club.pk)
    assert f'id="club-{club.pk}"' in c.get("/m/clubs/").text


def test_joining_and_leaving_from_the_club_page(client, district):
    club = active_club(district)
    m = make_member(district.union_a1)
    c = _as(client, m.user)
    page = c.get(f"/m/clubs/{club.pk}/")
    assert 'id="join-btn"' in page.text and 'id="members-count">1<' in page.text
    r = c.post(f"/m/clubs/{club.pk}/join/")
    assert r.status_code == 302
    page = c.get(f"/m/clubs/{club.pk}/")
    assert 'id="leave-btn"' in page.text and 'id="members-count">2<' in page.text
    c.post(f"/m/clubs/{club.pk}/leave/")
    club.refresh_from_db()
    assert club.members_count == 1


def test_a_pending_request_shows_and_can_be_withdrawn(client, district):
    club = active_club(district, policy="approval")
    m = make_member(district.union_a1)
    c = _as(client, m.user)
    c.post(f"/m/clubs/{club.pk}/join/")
    page = c.get(f"/m/clubs/{club.pk}/")
    assert 'id="pending-note"' in page.text and 'id="withdraw-btn"' in page.text
    c.post(f"/m/clubs/{club.pk}/leave/")
    assert svc.membership_of(m.user, club) is None


def test_the_last_admin_sees_why_they_cannot_leave(client, district):
    admin = make_member(district.union_a1, "管理员")
    club = active_club(district, proposer=admin.user)
    r = _as(client, admin.user).post(f"/m/clubs/{club.pk}/leave/")
    assert r.status_code == 409 and 'id="club-error"' in r.text and "唯一的管理员" in r.text


def test_clubs_out_of_reach_answer_404(client, district):
    club = active_club(district)
    c = _as(client, make_member(district.union_b1).user)
    assert c.get(f"/m/clubs/{club.pk}/").status_code == 404
    assert c.post(f"/m/clubs/{club.pk}/join/").status_code == 404
    assert c.get(f"/m/clubs/{club.pk}/manage/").status_code == 404
    assert c.get("/m/clubs/999999/").status_code == 404


def test_proposing_keeps_what_was_typed_when_something_is_wrong(client, district):
    m = make_member(district.union_a1)
    c = _as(client, m.user)
    r = c.post("/m/clubs/new/", {"name": "", "category": "摄影", "description": "周末扫街", "join_policy": "approval"})
    assert r.status_code == 422 and 'id="name-error"' in r.text and "周末扫街" in r.text and 'value="摄影"' in r.text
    r = c.post("/m/clubs/new/", {"name": "摄影联盟", "description": "周末扫街", "join_policy": "approval"})
    club = Club.objects.get(name="摄影联盟")
    assert r.status_code == 302 and r.url == f"/m/clubs/{club.pk}/"
    page = c.get(r.url)
    assert 'id="club-state"' in page.text and "审核中" in page.text


def test_followers_are_asked_to_certify(client, district):
    c = _as(client, make_user("粉丝"))
    assert "去实名认证" in c.get("/m/clubs/new/").text
    assert c.post("/m/clubs/new/", {"name": "x", "description": "y"}).status_code == 403


def test_admin_tools_approve_requests_post_and_promote(client, district):
    admin = make_member(district.union_a1, "管理员")
    club = active_club(district, policy="approval", proposer=admin.user)
    applicant = make_member(district.union_a1, "申请人")
    svc.join(applicant.user, club.pk)
    c = _as(client, admin.user)
    page = c.get(f"/m/clubs/{club.pk}/")
    assert 'id="admin-tools"' in page.text and f'href="/m/activities/new/?club={club.pk}"' in page.text
    manage = c.get(f"/m/clubs/{club.pk}/manage/")
    assert f'id="request-{applicant.user_id}"' in manage.text
    assert applicant.user.phone not in manage.text  # names only
    c.post(f"/m/clubs/{club.pk}/manage/requests/{applicant.user_id}/", {"decision": "approve"})
    assert svc.is_club_member(applicant.user, club)
    r = c.post(f"/m/clubs/{club.pk}/manage/posts/", {"title": "", "body": "周六集合"})
    assert r.status_code == 422 and 'id="title-error"' in r.text and "周六集合" in r.text
    r = c.post(f"/m/clubs/{club.pk}/manage/posts/", {"title": "活动通知", "body": "周六集合"})
    assert r.status_code == 302
    assert "活动通知" in c.get(f"/m/clubs/{club.pk}/").text
    c.post(f"/m/clubs/{club.pk}/manage/members/{applicant.user_id}/promote/")
    assert svc.is_club_admin(applicant.user, club)


def test_plain_members_cannot_open_the_admin_tools(client, district):
    club = active_club(district)
    m = make_member(district.union_a1)
    svc.join(m.user, club.pk)
    c = _as(client, m.user)
    assert c.get(f"/m/clubs/{club.pk}/manage/").status_code == 404
    assert c.post(f"/m/clubs/{club.pk}/manage/posts/", {"title": "x", "body": "y"}).status_code == 404


# --- console ----------------------------------------------------------------------------------


def test_console_lists_proposals_and_approves_one(client, district):
    m = make_member(district.union_a1, "发起人")
    club = svc.propose(m.user, name="羽毛球联盟", description="每周二打球")
    c = _as(client, district.admin_a)
    page = c.get("/console/clubs/")
    assert page.status_code == 200 and f'id="proposal-{club.pk}"' in page.text
    r = c.post(f"/console/clubs/{club.pk}/decide/", {"decision": "approve", "org": district.street_a.pk})
    assert r.status_code == 302
    club.refresh_from_db()
    assert club.status == "active"
    assert 'id="decide-ok"' in c.get(r.url).text


def test_console_rejection_without_a_reason_is_shown_beside_the_form(client, district):
    club = svc.propose(make_member(district.union_a1).user, name="钓鱼联盟", description="x")
    c = _as(client, district.admin_a)
    r = c.post(f"/console/clubs/{club.pk}/decide/", {"decision": "reject", "reason": ""})
    assert r.status_code == 422 and "驳回时请填写原因" in r.text
    club.refresh_from_db()
    assert club.status == "proposed"


def test_console_scope_hides_other_subtrees(client, district):
    club = active_club(district)
    c = _as(client, district.admin_b)
    assert f'id="proposal-{club.pk}"' not in c.get("/console/clubs/").text
    assert club.name not in c.get("/console/clubs/?status=all").text
    assert c.get(f"/console/clubs/{club.pk}/").status_code == 404
    assert c.post(f"/console/clubs/{club.pk}/decide/", {"decision": "approve"}).status_code == 404
    page = _as(client, district.admin_a).get(f"/console/clubs/{club.pk}/")
    assert page.status_code == 200 and 'id="club-members"' in page.text


def test_api_join_leave_and_errors(api, district):
    club = active_club(district)
    m = make_member(district.union_a1)
    me = api(m.user)
    r = me.post(f"/api/v1/clubs/{club.pk}/members")
    assert r.status_code == 201 and r.json() == {"status": "active", "role": "member", "members_count": 2}
    r = me.post(f"/api/v1/clubs/{club.pk}/members")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_member"
    assert me.get(f"/api/v1/clubs/{club.pk}").json()["my_membership"] == {"status": "active", "role": "member"}
    assert me.delete(f"/api/v1/clubs/{club.pk}/members/me").status_code == 204
    assert api(make_member(district.union_b1).user).get(f"/api/v1/clubs/{club.pk}").status_code == 404
    r = api(make_user("粉丝")).post(f"/api/v1/clubs/{club.pk}/members")
    assert r.status_code in (403, 404)
    r = me.post("/api/v1/clubs", {"name": "", "description": "x"})
    assert r.status_code == 422 and "name" in r.json()["error"]["fields"]
    r = me.post("/api/v1/clubs", {"description": "x"})
    assert r.status_code == 422 and "name" in r.json()["error"]["fields"]
    listed = me.get("/api/v1/clubs").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == club.pk
