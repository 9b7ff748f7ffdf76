"""Signing up and cancelling: every refusal with its code and nothing half-saved, the waitlist in
order, promotions in the cancelling transaction, points costs paid and refunded, the list, its
export, messages and reminders."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from openpyxl import load_workbook

from activities.models import Activity, Signup, SignupStatus
from activities.services import signups
from activities.services.reminders import send_reminders
from clubs.models import Club, ClubMembership, ClubStatus
from conftest import make_member, make_user
from core.errors import DomainError, Forbidden, Invalid, NotFound
from notifications.models import Notification, OutboxMessage
from points.services import ledger
from points.tests.helpers import assert_ledger_sound, counts, give, reconcile

from .conftest import move, open_activity

pytestmark = pytest.mark.django_db


def _state(activity: Activity) -> tuple:
    """What a refusal must leave as it was: sign-ups, the counters, notices and the points."""
    a = Activity.objects.get(pk=activity.pk)
    rows = list(Signup.objects.order_by("id").values_list("id", "user_id", "status", "payment_id", "refund_id"))
    return rows, a.confirmed_count, a.waitlist_count, Notification.objects.count(), counts()


def _members(org, n: int, name: str = "会员") -> list:
    return [make_member(org, f"{name}{i}") for i in range(n)]


def _assert_counters_match(activity: Activity) -> None:
    a = Activity.objects.get(pk=activity.pk)
    live = signups.signup_counts(a)
    assert (a.confirmed_count, a.waitlist_count) == (live["confirmed"], live["waitlisted"])
    assert a.confirmed_count <= a.capacity


# --- signing up -----------------------------------------------------------------------------------


def test_seats_then_the_waitlist_in_order_with_positions(district):
    a = open_activity(district.admin_a, district.street_a, capacity=2)
    people = _members(district.union_a1, 5)
    made = [signups.sign_up(p.user, a.pk) for p in people]
    assert [s.status for s in made] == ["confirmed", "confirmed", "waitlisted", "waitlisted", "waitlisted"]
    assert [s.position for s in made] == [None, None, 1, 2, 3]
    assert [signups.waitlist_position(Signup.objects.get(pk=s.pk)) for s in made] == [None, None, 1, 2, 3]
    assert made[0].confirmed_at is not None and made[2].confirmed_at is None
    _assert_counters_match(a)


def test_without_a_waitlist_a_full_activity_refuses(district):
    a = open_activity(district.admin_a, district.street_a, capacity=1, waitlist=False)
    first, second = _members(district.union_a1, 2)
    signups.sign_up(first.user, a.pk)
    before = _state(a)
    with pytest.raises(DomainError) as e:
        signups.sign_up(second.user, a.pk)
    assert (e.value.code, e.value.status) == ("full", 409)
    assert _state(a) == before


def test_signing_up_twice_is_refused(district):
    a = open_activity(district.admin_a, district.street_a)
    (m,) = _members(district.union_a1, 1)
    signups.sign_up(m.user, a.pk)
    before = _state(a)
    with pytest.raises(DomainError) as e:
        signups.sign_up(m.user, a.pk)
    assert e.value.code == "already_signed_up"
    assert _state(a) == before


def test_after_cancelling_one_may_sign_up_again(district):
    a = open_activity(district.admin_a, district.street_a)
    (m,) = _members(district.union_a1, 1)
    signups.sign_up(m.user, a.pk)
    signups.cancel_signup(m.user, a.pk)
    again = signups.sign_up(m.user, a.pk)
    assert again.status == "confirmed"
    assert Signup.objects.filter(user=m.user).count() == 2
    assert signups.my_signup(m.user, a).pk == again.pk
    _assert_counters_match(a)


def test_outside_the_window_is_refused(district):
    now = timezone.now()
    later = open_activity(
        district.admin_a, district.street_a, signup_opens_at=now + dt.timedelta(hours=5), title="明早开抢"
    )
    closed = open_activity(district.admin_a, district.street_a, title="已截止")
    Activity.objects.filter(pk=closed.pk).update(
        signup_opens_at=now - dt.timedelta(days=2), signup_closes_at=now - dt.timedelta(minutes=1)
    )
    (m,) = _members(district.union_a1, 1)
    before = _state(later)
    with pytest.raises(DomainError) as e:
        signups.sign_up(m.user, later.pk)
    assert e.value.code == "signup_not_open"
    with pytest.raises(DomainError) as e:
        signups.sign_up(m.user, closed.pk)
    assert e.value.code == "signup_closed"
    assert _state(later) == before


@pytest.mark.parametrize("who", ["follower", "uncertified", "club_outsider"])
def test_ineligible_people_are_refused_with_403(district, who):
    founder = make_member(district.union_a1, "创始人")
    club = Club.objects.create(
        org=district.union_a1, name="书法联盟", status=ClubStatus.ACTIVE, proposed_by=founder.user
    )
    if who == "follower":
        user = make_user("粉丝")
        a = open_activity(district.admin_a, district.street_a)
        # A follower reaches only what is open to everyone: for them a members-only activity is not there.
        with pytest.raises(NotFound):
            signups.sign_up(user, a.pk)
        return
    if who == "uncertified":
        user = make_member(district.union_a1, "未认证", certified=False).user
        a = open_activity(district.admin_a, district.street_a)
    else:
        user = make_member(district.union_a1, "非成员").user
        a = open_activity(district.admin_a1, district.union_a1, club=club, eligibility="club")
    before = _state(a)
    with pytest.raises(Forbidden) as e:
        signups.sign_up(user, a.pk)
    assert (e.value.code, e.value.status) == ("not_eligible", 403)
    assert _state(a) == before
    if who == "club_outsider":
        ClubMembership.objects.create(club=club, user=user)
        assert signups.sign_up(user, a.pk).status == "confirmed"


@pytest.mark.parametrize("edit", ["window", "cancelled", "club_only", "points_cost", "capacity", "fields"])
def test_an_edit_right_after_a_sign_up_applies_to_the_next_one(district, edit):
    # On PostgreSQL the sign-ups that follow a read skip it for a few seconds (signups._remember):
    # their statement re-checks the live row, so no edit made meanwhile is missed.
    from django.db import connection

    a = open_activity(district.admin_a, district.street_a, capacity=5)
    first, second = _members(district.union_a1, 2)
    give(district.union_a1, district.district_admin, [second], 500)
    assert signups.sign_up(first.user, a.pk).status == "confirmed"
    assert (a.pk in signups._open) == (connection.vendor == "postgresql")
    now = timezone.now()
    change = {
        "window": {"signup_opens_at": now - dt.timedelta(days=1), "signup_closes_at": now - dt.timedelta(seconds=1)},
        "cancelled": {"status": "cancelled"},
        "club_only": {
            "eligibility": "club",
            "club": Club.objects.create(
                org=district.street_a, name="摄影联盟", status=ClubStatus.ACTIVE, proposed_by=first.user
            ),
        },
        "points_cost": {"points_cost": 100},
        "capacity": {"capacity": 1},
        "fields": {"extra_fields": [{"key": "size", "label": "尺码", "required": True}]},
    }[edit]
    Activity.objects.filter(pk=a.pk).update(**change)
    if edit == "points_cost":  # taken the usual way: the seat is paid for
        s = signups.sign_up(second.user, a.pk)
        assert s.status == "confirmed" and s.payment_id is not None
        assert_ledger_sound()
        return
    if edit == "capacity":  # no seat left: the waitlist
        assert signups.sign_up(second.user, a.pk).status == "waitlisted"
        _assert_counters_match(a)
        return
    before = _state(a)
    expected = {
        "window": "signup_closed",
        "cancelled": "signup_closed",
        "club_only": "not_eligible",
        "capacity": "full",
        "fields": "answers_required",
    }[edit]
    with pytest.raises((DomainError, Invalid)) as e:
        signups.sign_up(second.user, a.pk)
    assert e.value.code == expected
    assert _state(a) == before


def test_signing_up_again_the_quick_way_is_already_signed_up(district):
    a = open_activity(district.admin_a, district.street_a, eligibility="everyone")
    (m,) = _members(district.union_a1, 1)
    signups.sign_up(m.user, a.pk)
    before = _state(a)
    for _ in range(2):
        with pytest.raises(DomainError) as e:
            signups.sign_up(m.user, a.pk)
        assert e.value.code == "already_signed_up"
    assert _state(a) == before


def test_everyone_activities_take_followers(district):
    a = open_activity(district.admin_a, district.street_a, eligibility="everyone")
    assert signups.sign_up(make_user("粉丝"), a.pk).status == "confirmed"


def test_out_of_reach_unknown_and_proposed_activities_are_404(district):
    a = open_activity(district.admin_b, district.union_b1)
    (m,) = _members(district.union_a1, 1)
    proposal = open_activity(make_member(district.union_a1, "发起人").user, district.union_a1)
    for target in (a.pk, 999999, "abc", 2**70, proposal.pk):
        with pytest.raises(NotFound):
            signups.sign_up(m.user, target)
    assert not Signup.objects.exists()


def test_missing_required_answers_are_named_and_choices_checked(district):
    a = open_activity(
        district.admin_a,
        district.street_a,
        extra_fields=[
            {"key": "size", "label": "T恤尺码", "required": True, "choices": ["S", "M", "L"]},
            {"key": "contact", "label": "紧急联系人", "required": True},
            {"key": "note", "label": "备注"},
        ],
    )
    (m,) = _members(district.union_a1, 1)
    before = _state(a)
    with pytest.raises(Invalid) as e:
        signups.sign_up(m.user, a.pk, {"size": "M"})
    assert e.value.code == "answers_required"
    assert set(e.value.fields) == {"answers.contact"}
    assert "紧急联系人" in e.value.message
    with pytest.raises(Invalid) as e:
        signups.sign_up(m.user, a.pk, {"size": "XXL", "contact": "张三"})
    assert e.value.code == "invalid_answers" and set(e.value.fields) == {"answers.size"}
    with pytest.raises(Invalid):
        signups.sign_up(m.user, a.pk, ["not", "a", "dict"])
    assert _state(a) == before
    s = signups.sign_up(m.user, a.pk, {"size": "L", "contact": "李四 13912345678", "unknown": "x"})
    assert Signup.objects.get(pk=s.pk).answers == {"size": "L", "contact": "李四 13912345678"}


# --- points cost ----------------------------------------------------------------------------------


def test_a_points_cost_is_paid_into_the_org_budget_and_refunded_on_cancel(district):
    a = open_activity(district.admin_a, district.street_a, capacity=1, points_cost=40)
    rich, poor = _members(district.union_a1, 2)
    give(district.union_a1, district.district_admin, [rich], 100)
    budget_before = ledger.budget_account(district.street_a).balance
    s = signups.sign_up(rich.user, a.pk)
    assert s.payment_id is not None and ledger.balance_of(rich.user) == 60
    assert ledger.budget_account(district.street_a).balance == budget_before + 40
    # The poor member joins the waitlist without paying; their turn comes when they cannot pay.
    assert signups.sign_up(poor.user, a.pk).status == "waitlisted"
    promoted = signups.cancel_signup(rich.user, a.pk)
    assert promoted is None
    assert ledger.balance_of(rich.user) == 100
    assert Signup.objects.get(user=poor.user).status == SignupStatus.CANCELLED
    assert Notification.objects.filter(user=poor.user, kind="activity.waitlist_dropped").exists()
    _assert_counters_match(a)
    assert Activity.objects.get(pk=a.pk).confirmed_count == 0
    assert reconcile()[0] == 0
    assert_ledger_sound()


def test_insufficient_points_refuses_and_takes_no_seat(district):
    a = open_activity(district.admin_a, district.street_a, capacity=1, points_cost=40)
    (m,) = _members(district.union_a1, 1)
    give(district.union_a1, district.district_admin, [m], 39)
    before = _state(a)
    with pytest.raises(DomainError) as e:
        signups.sign_up(m.user, a.pk)
    assert (e.value.code, e.value.status) == ("insufficient_points", 409)
    assert _state(a) == before
    assert ledger.balance_of(m.user) == 39


def test_a_promoted_person_pays_when_confirmed(district):
    a = open_activity(district.admin_a, district.street_a, capacity=1, points_cost=25)
    first, second = _members(district.union_a1, 2)
    give(district.union_a1, district.district_admin, [first, second], 100)
    signups.sign_up(first.user, a.pk)
    signups.sign_up(second.user, a.pk)
    assert ledger.balance_of(second.user) == 100
    promoted = signups.cancel_signup(first.user, a.pk)
    assert promoted.user_id == second.user.pk and promoted.status == "confirmed" and promoted.payment_id
    assert (ledger.balance_of(first.user), ledger.balance_of(second.user)) == (100, 75)
    assert reconcile()[0] == 0


# --- cancelling -----------------------------------------------------------------------------------


def test_cancelling_promotes_the_first_on_the_waitlist_and_tells_them(district):
    a = open_activity(district.admin_a, district.street_a, capacity=2)
    people = _members(district.union_a1, 5)
    for p in people:
        signups.sign_up(p.user, a.pk)
    promoted = signups.cancel_signup(people[1].user, a.pk)
    assert promoted.user_id == people[2].user.pk
    assert Signup.objects.get(pk=promoted.pk).status == "confirmed"
    note = Notification.objects.get(user=people[2].user, kind="activity.promoted")
    assert OutboxMessage.objects.filter(notification=note, channel="wechat").exists()
    assert [signups.waitlist_position(Signup.objects.get(user=p.user)) for p in people[3:]] == [1, 2]
    # A waitlisted person leaving promotes nobody and moves the others up.
    assert signups.cancel_signup(people[3].user, a.pk) is None
    assert signups.waitlist_position(Signup.objects.get(user=people[4].user)) == 1
    _assert_counters_match(a)


def test_cancelling_after_the_cut_off_is_refused(district):
    now = timezone.now()
    a = open_activity(district.admin_a, district.street_a, capacity=1, cancel_until=now + dt.timedelta(hours=1))
    first, second = _members(district.union_a1, 2)
    signups.sign_up(first.user, a.pk)
    signups.sign_up(second.user, a.pk)
    Activity.objects.filter(pk=a.pk).update(cancel_until=now - dt.timedelta(minutes=1))
    before = _state(a)
    with pytest.raises(DomainError) as e:
        signups.cancel_signup(first.user, a.pk)
    assert e.value.code == "cancel_closed"
    assert _state(a) == before
    # A waitlisted person may still leave the queue before the start: it frees no seat.
    assert signups.cancel_signup(second.user, a.pk) is None


def test_cancelling_without_a_sign_up_is_404_not_signed_up(district):
    a = open_activity(district.admin_a, district.street_a)
    (m,) = _members(district.union_a1, 1)
    with pytest.raises(NotFound) as e:
        signups.cancel_signup(m.user, a.pk)
    assert e.value.code == "not_signed_up"


def test_a_checked_in_person_cannot_cancel(district):
    a = open_activity(district.admin_a, district.street_a)
    (m,) = _members(district.union_a1, 1)
    s = signups.sign_up(m.user, a.pk)
    move(a, starts_in=dt.timedelta(minutes=10))
    Signup.objects.filter(pk=s.pk).update(checked_in_at=timezone.now())
    with pytest.raises(DomainError) as e:
        signups.cancel_signup(m.user, a.pk)
    assert e.value.code == "cancel_closed"


# --- the list, export, messages -------------------------------------------------------------------


def test_the_list_and_export_mask_phones_and_show_the_order(district):
    a = open_activity(
        district.admin_a,
        district.street_a,
        capacity=1,
        extra_fields=[{"key": "contact", "label": "紧急联系人", "required": True}],
    )
    first, second = make_member(district.union_a1, "张一"), make_member(district.union_a2, "李二")
    signups.sign_up(first.user, a.pk, {"contact": "王五 13987654321"})
    signups.sign_up(second.user, a.pk, {"contact": "赵六"})
    rows = list(signups.signups_of(district.admin_a, a))
    assert [r.user_id for r in rows] == [first.user.pk, second.user.pk]
    with pytest.raises(Forbidden):
        signups.signups_of(first.user, a)
    with pytest.raises(NotFound):
        signups.signups_of(district.admin_b, a)
    data = signups.export_signups_xlsx(district.admin_a, a)
    ws = load_workbook(io.BytesIO(data)).active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0][:7] == ["序号", "姓名", "手机号", "所在工会", "状态", "候补顺位", "报名时间"]
    assert "紧急联系人" in values[0]
    assert values[1][1] == "张一" and values[1][3] == "甲一公司工会"
    assert values[2][5] == 1
    text = repr(values)
    assert first.user.phone not in text and "13987654321" not in text
    assert first.user.phone_masked in text and "139****4321" in text


def test_messages_go_to_the_chosen_participants(district):
    a = open_activity(district.admin_a, district.street_a, capacity=1)
    first, second = _members(district.union_a1, 2)
    signups.sign_up(first.user, a.pk)
    signups.sign_up(second.user, a.pk)
    n = signups.message_participants(district.admin_a, a, title="集合地点变更", body="改到北门集合")
    assert n == 1
    assert list(Notification.objects.filter(kind="activity.message").values_list("user_id", flat=True)) == [
        first.user.pk
    ]
    n = signups.message_participants(district.admin_a, a, title="候补提醒", body="请留意", statuses=["waitlisted"])
    assert n == 1
    with pytest.raises(Invalid) as e:
        signups.message_participants(district.admin_a, a, title="", body="", statuses=["cancelled"])
    assert set(e.value.fields) == {"title", "body", "statuses"}
    with pytest.raises(Forbidden):
        signups.message_participants(first.user, a, title="我也想发", body="x")


# --- reminders ------------------------------------------------------------------------------------


def test_reminders_go_once_to_the_confirmed_of_activities_starting_within_a_day(district):
    soon = open_activity(district.admin_a, district.street_a, capacity=1, place="区工人文化宫")
    far = open_activity(district.admin_a, district.street_a, title="下个月")
    first, second, third = _members(district.union_a1, 3)
    signups.sign_up(first.user, soon.pk)
    signups.sign_up(second.user, soon.pk)  # waitlisted: no reminder
    signups.sign_up(third.user, far.pk)
    move(soon, starts_in=dt.timedelta(hours=5))
    move(far, starts_in=dt.timedelta(days=20))
    assert send_reminders() == (1, 1)
    assert send_reminders() == (0, 0)
    out = io.StringIO()
    call_command("send_activity_reminders", stdout=out)
    assert "reminded 0 people" in out.getvalue()
    notes = Notification.objects.filter(kind="activity.reminder")
    assert list(notes.values_list("user_id", flat=True)) == [first.user.pk]
    assert "区工人文化宫" in notes.get().body
    assert OutboxMessage.objects.filter(notification__kind="activity.reminder").count() == 1
    # Someone promoted later still gets their reminder on the next run.
    Activity.objects.filter(pk=soon.pk).update(cancel_until=timezone.now() + dt.timedelta(hours=1))
    signups.cancel_signup(first.user, soon.pk)
    assert send_reminders() == (1, 1)
    assert set(notes.values_list("user_id", flat=True)) == {first.user.pk, second.user.pk}


def test_the_returned_sign_up_equals_the_stored_row(district):
    """sign_up builds its answer without Model.__init__ (hot path): it must be the row as loaded."""
    a = open_activity(district.admin_a, district.street_a, capacity=1, points_cost=5)
    first, second = _members(district.union_a1, 2)
    give(district.union_a1, district.district_admin, [first], 10)
    fields = [f.attname for f in Signup._meta.concrete_fields]
    for m in (first, second):
        s = signups.sign_up(m.user, a.pk)
        stored = Signup.objects.get(pk=s.pk)
        assert {f: getattr(s, f) for f in fields} == {f: getattr(stored, f) for f in fields}
        assert s.user == m.user and s._state.adding is False and s._state.db == "default"
    assert s.position == 1 and s.get_status_display() == "候补中"
    s.answers = {"note": "x"}
    s.save(update_fields=["answers"])
    assert Signup.objects.get(pk=s.pk).answers == {"note": "x"}
