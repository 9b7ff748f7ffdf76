"""Check-in: rotating signed codes (current and previous window only), the card scan, only inside
the time window, only for confirmed sign-ups, once, with the points paid once."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from activities.models import Signup
from activities.services import checkin, signups
from conftest import make_member
from core.errors import DomainError, Forbidden, Invalid, NotFound
from members.services import card_token
from points.models import EarningRule, Movement
from points.services import ledger
from points.tests.helpers import assert_ledger_sound, counts, fund, reconcile

from .conftest import move, open_activity

pytestmark = pytest.mark.django_db


def _fresh_window() -> None:
    """Wait until the current 30-second window has a few seconds left, so a code made from
    `now - 30 s` is still of the previous window when it is checked."""
    while 30 - int(time.time()) % 30 < 3:
        time.sleep(0.5)


def _ready(district, *, reward: int = 0, capacity: int = 2):
    """An activity starting in 10 minutes (check-in open), with a confirmed and a waitlisted member."""
    a = open_activity(district.admin_a, district.street_a, capacity=capacity, points_reward=reward)
    confirmed, waitlisted = make_member(district.union_a1, "已报名"), make_member(district.union_a1, "候补")
    signups.sign_up(confirmed.user, a.pk)
    for i in range(capacity - 1):
        signups.sign_up(make_member(district.union_a1, f"占位{i}").user, a.pk)
    signups.sign_up(waitlisted.user, a.pk)
    move(a, starts_in=dt.timedelta(minutes=10))
    return a, confirmed, waitlisted


# --- the codes ------------------------------------------------------------------------------------


def test_codes_rotate_every_30_seconds_and_differ_per_activity(district):
    a = open_activity(district.admin_a, district.street_a)
    b = open_activity(district.admin_a, district.street_a)
    at = timezone.now()
    code, left = checkin.rotating_code(a, at)
    assert 1 <= left <= 30
    assert checkin.rotating_code(a, at + dt.timedelta(seconds=left))[0] != code
    assert checkin.rotating_code(a, at + dt.timedelta(seconds=left - 1))[0] == code
    assert checkin.rotating_code(b, at)[0] != code
    assert checkin.checkin_url(a, code) == f"/m/activities/{a.pk}/checkin/?c={code}"


def test_the_current_and_previous_window_pass_older_is_expired_forged_is_invalid(district):
    a = open_activity(district.admin_a, district.street_a)
    now = timezone.now()
    window = int(now.timestamp()) // 30
    checkin.check_code(a, checkin.rotating_code(a, now)[0], now)
    checkin.check_code(a, checkin.rotating_code(a, now - dt.timedelta(seconds=30))[0], now)
    with pytest.raises(Invalid) as e:
        checkin.check_code(a, checkin.rotating_code(a, now - dt.timedelta(seconds=61))[0], now)
    assert e.value.code == "code_expired"
    forged = f"{window}-{'0' * 16}"
    for bad in (forged, "", "garbage", f"{window}", checkin.rotating_code(a, now + dt.timedelta(seconds=31))[0]):
        with pytest.raises(Invalid) as e:
            checkin.check_code(a, bad, now)
        assert e.value.code == "code_invalid"
    # Another activity's code is not this one's.
    b = open_activity(district.admin_a, district.street_a)
    with pytest.raises(Invalid) as e:
        checkin.check_code(a, checkin.rotating_code(b, now)[0], now)
    assert e.value.code == "code_invalid"
    # The whole scanned link works as well as the bare code.
    code = checkin.rotating_code(a, now)[0]
    checkin.check_code(a, "https://union.example.org" + checkin.checkin_url(a, code), now)


# --- checking in by code --------------------------------------------------------------------------


def test_a_confirmed_member_checks_in_once_with_points_paid_once(district):
    a, confirmed, _w = _ready(district, reward=15)
    fund(district.street_a, 1000, district.district_admin)
    code, _left = checkin.rotating_code(a)
    s = checkin.check_in_by_code(confirmed.user, a.pk, code)
    assert s.checked_in_at is not None and s.checkin_method == "qr" and s.reward_id
    assert ledger.balance_of(confirmed.user) == 15
    before = counts()
    with pytest.raises(DomainError) as e:
        checkin.check_in_by_code(confirmed.user, a.pk, checkin.rotating_code(a)[0])
    assert (e.value.code, e.value.status) == ("already_checked_in", 409)
    assert counts() == before and ledger.balance_of(confirmed.user) == 15
    a.refresh_from_db()
    assert a.checked_in_count == 1
    assert checkin.attendance(a) == {"confirmed": 2, "checked_in": 1, "rate": 0.5, "rewards_pending": 0}
    assert reconcile()[0] == 0
    assert_ledger_sound()


def test_the_previous_windows_code_is_accepted(district):
    a, confirmed, _w = _ready(district)
    _fresh_window()
    code, _ = checkin.rotating_code(a, timezone.now() - dt.timedelta(seconds=30))
    assert checkin.check_in_by_code(confirmed.user, a.pk, code).checked_in_at


def test_an_expired_code_is_refused_and_nothing_changes(district):
    a, confirmed, _w = _ready(district, reward=15)
    fund(district.street_a, 1000, district.district_admin)
    photo = checkin.rotating_code(a, timezone.now() - dt.timedelta(minutes=3))[0]
    before = counts()
    with pytest.raises(Invalid) as e:
        checkin.check_in_by_code(confirmed.user, a.pk, photo)
    assert (e.value.code, e.value.status) == ("code_expired", 422)
    assert Signup.objects.get(user=confirmed.user).checked_in_at is None
    assert counts() == before


def test_waitlisted_and_unsigned_people_are_not_confirmed(district):
    a, _c, waitlisted = _ready(district)
    stranger = make_member(district.union_a1, "没报名")
    code = checkin.rotating_code(a)[0]
    for user in (waitlisted.user, stranger.user):
        with pytest.raises(Forbidden) as e:
            checkin.check_in_by_code(user, a.pk, code)
        assert (e.value.code, e.value.status) == ("not_confirmed", 403)
    a.refresh_from_db()
    assert a.checked_in_count == 0
    assert not Signup.objects.filter(checked_in_at__isnull=False).exists()


@pytest.mark.parametrize(
    "starts_in", [dt.timedelta(minutes=31), dt.timedelta(hours=-3)], ids=["too_early", "after_the_end"]
)
def test_check_in_only_inside_the_time_window(district, starts_in):
    a, confirmed, _w = _ready(district)
    move(a, starts_in=starts_in, hours=2)
    with pytest.raises(DomainError) as e:
        checkin.check_in_by_code(confirmed.user, a.pk, checkin.rotating_code(a)[0])
    assert (e.value.code, e.value.status) == ("checkin_not_open", 409)
    assert Signup.objects.get(user=confirmed.user).checked_in_at is None


def test_check_in_during_the_activity_works(district):
    a, confirmed, _w = _ready(district)
    move(a, starts_in=dt.timedelta(minutes=-45), hours=2)
    assert checkin.check_in_by_code(confirmed.user, a.pk, checkin.rotating_code(a)[0]).checked_in_at


# --- points ---------------------------------------------------------------------------------------


def test_a_dry_budget_keeps_the_attendance_and_the_points_wait(district):
    a, confirmed, _w = _ready(district, reward=20)
    s = checkin.check_in_by_code(confirmed.user, a.pk, checkin.rotating_code(a)[0])
    assert s.checked_in_at and s.reward_id is None
    assert checkin.attendance(a)["rewards_pending"] == 1
    assert checkin.pay_pending_rewards(district.admin_a, a) == 0
    fund(district.street_a, 100, district.district_admin)
    assert checkin.pay_pending_rewards(district.admin_a, a) == 1
    assert checkin.pay_pending_rewards(district.admin_a, a) == 0
    assert ledger.balance_of(confirmed.user) == 20
    assert checkin.attendance(a)["rewards_pending"] == 0
    assert reconcile()[0] == 0


def test_without_its_own_points_the_unions_activity_rule_pays_once(district):
    EarningRule.objects.create(org=district.root, action="activity_checkin", amount=8, daily_cap=2)
    fund(district.root, 100, district.district_admin)
    a, confirmed, _w = _ready(district)
    s = checkin.check_in_by_code(confirmed.user, a.pk, checkin.rotating_code(a)[0])
    assert s.reward_id and ledger.balance_of(confirmed.user) == 8
    assert Movement.objects.get(pk=s.reward_id).source.startswith("rule:")


# --- the card -------------------------------------------------------------------------------------


def test_the_organizer_scans_a_members_card(district):
    a, confirmed, waitlisted = _ready(district)
    token = card_token(confirmed)
    s = checkin.check_in_by_card(district.admin_a, a, "http://x/c/verify/?t=" + token)
    assert s.user_id == confirmed.user.pk and s.checkin_method == "card"
    with pytest.raises(DomainError) as e:
        checkin.check_in_by_card(district.admin_a, a, token)
    assert e.value.code == "already_checked_in"
    with pytest.raises(Forbidden) as e:
        checkin.check_in_by_card(district.admin_a, a, card_token(waitlisted))
    assert e.value.code == "not_confirmed"


def test_a_bad_or_expired_card_and_strangers_are_refused(district, settings):
    a, confirmed, _w = _ready(district)
    with pytest.raises(Invalid) as e:
        checkin.check_in_by_card(district.admin_a, a, "not-a-card")
    assert e.value.code == "card_invalid"
    token = card_token(confirmed)
    settings.MEMBER_CARD_TTL_SECONDS = -1
    with pytest.raises(Invalid) as e:
        checkin.check_in_by_card(district.admin_a, a, token)
    assert e.value.code == "card_expired"
    settings.MEMBER_CARD_TTL_SECONDS = 300
    with pytest.raises(Forbidden):
        checkin.check_in_by_card(confirmed.user, a, token)  # a participant is not the organizer
    with pytest.raises(NotFound):
        checkin.check_in_by_card(district.admin_b, a, token)
    assert not Signup.objects.filter(checked_in_at__isnull=False).exists()


def test_a_member_organizer_may_scan_cards(district):
    proposer = make_member(district.union_a1, "发起人")
    from activities.services import activities as svc

    a = open_activity(proposer.user, district.union_a1, capacity=3)
    a = svc.decide_proposal(district.admin_a1, a, approve=True)
    guest = make_member(district.union_a1, "来宾")
    signups.sign_up(guest.user, a.pk)
    move(a, starts_in=dt.timedelta(minutes=5))
    assert checkin.check_in_by_card(proposer.user, a, card_token(guest)).checked_in_at
