"""Seats under real parallel HTTP clients: never more confirmed than seats, one live sign-up per
person, the waitlist first come first served, promotions in the cancelling transaction, one
check-in and one payment per person.

Each test starts the live server and fires requests from a thread pool with urllib, every request
on its own connection, so the database sees truly concurrent transactions (run with DATABASE_URL
set for PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.services import issue_token
from activities.models import Activity, Signup, SignupStatus
from activities.services import checkin, signups
from notifications.models import Notification
from points.services import ledger
from points.tests.helpers import assert_ledger_sound, fund, give, many_members, reconcile

from .conftest import move, open_activity


def _call(method: str, url: str, token: str, body: bytes | None = b"{}") -> tuple[int, dict]:
    """One request like a careful client: with an Idempotency-Key, retried with the same key if
    the connection drops (the test server's listen backlog is small)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    for attempt in range(20):
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"raw": raw[:200].decode("utf-8", "replace")}
        except (urllib.error.URLError, ConnectionError, http.client.RemoteDisconnected):
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError(f"{url}: no answer after 20 attempts")


def _code(body: dict) -> str | None:
    return body.get("error", {}).get("code")


def _assert_consistent(activity: Activity) -> Activity:
    a = Activity.objects.get(pk=activity.pk)
    live = signups.signup_counts(a)
    assert (a.confirmed_count, a.waitlist_count) == (live["confirmed"], live["waitlisted"])
    assert a.confirmed_count <= a.capacity
    twice = Counter(Signup.objects.filter(activity=a).exclude(status="cancelled").values_list("user_id", flat=True))
    assert not [u for u, n in twice.items() if n > 1]
    return a


@pytest.mark.django_db(transaction=True)
def test_120_members_racing_for_30_seats_get_exactly_30_and_a_waitlist_in_arrival_order(district, live_server):
    members = many_members(district.union_a1, 120, "抢票")
    tokens = {m.user_id: issue_token(m.user)[0] for m in members}
    a = open_activity(district.admin_a, district.street_a, capacity=30, title="音乐会门票")
    url = f"{live_server.url}/api/v1/activities/{a.pk}/signups"

    with ThreadPoolExecutor(32) as pool:
        results = dict(zip(tokens, pool.map(lambda uid: _call("POST", url, tokens[uid]), tokens), strict=True))

    statuses = Counter((status, body.get("status")) for status, body in results.values())
    assert statuses == {(201, "confirmed"): 30, (201, "waitlisted"): 90}, statuses
    a = _assert_consistent(a)
    assert (a.confirmed_count, a.waitlist_count) == (30, 90)
    confirmed = list(Signup.objects.filter(activity=a, status="confirmed").order_by("id"))
    waitlisted = list(Signup.objects.filter(activity=a, status="waitlisted").order_by("id"))
    # First come, first served: every confirmed sign-up arrived (got its id) before every waitlisted one,
    # and the position each person was told is their place in id order.
    assert confirmed[-1].pk < waitlisted[0].pk
    told = {uid: body["position"] for uid, (status, body) in results.items() if body.get("status") == "waitlisted"}
    assert [told[s.user_id] for s in waitlisted] == list(range(1, 91))
    assert [signups.waitlist_position(s) for s in waitlisted[:3]] == [1, 2, 3]
    assert {s.user_id for s in confirmed} == {u for u, (st, b) in results.items() if b.get("status") == "confirmed"}


@pytest.mark.django_db(transaction=True)
def test_40_parallel_cancellations_and_sign_ups_promote_in_order_and_never_overbook(district, live_server):
    members = many_members(district.union_a1, 70, "候补")
    tokens = {m.user_id: issue_token(m.user)[0] for m in members}
    a = open_activity(district.admin_a, district.street_a, capacity=20, title="亲子运动会")
    early, late = members[:50], members[50:]
    for m in early:  # 20 confirmed, 30 waitlisted, in this order
        signups.sign_up(m.user, a.pk)
    leaving = [m.user_id for m in early[:20]]
    queue_before = list(
        Signup.objects.filter(activity=a, status="waitlisted").order_by("id").values_list("user_id", flat=True)
    )
    base = f"{live_server.url}/api/v1/activities/{a.pk}/signups"
    jobs = [("DELETE", base + "/me", u) for u in leaving] + [("POST", base, m.user_id) for m in late]
    jobs = [jobs[i // 2] if i % 2 == 0 else jobs[20 + i // 2] for i in range(40)]  # interleaved

    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda j: (j, _call(j[0], j[1], tokens[j[2]], None if j[0] == "DELETE" else b"{}")), jobs)
        )

    for (method, _url, _uid), (status, body) in results:
        assert status == (204 if method == "DELETE" else 201), (method, status, body)
    a = _assert_consistent(a)
    assert (a.confirmed_count, a.waitlist_count) == (20, 30)
    confirmed = set(Signup.objects.filter(activity=a, status="confirmed").values_list("user_id", flat=True))
    # Twenty seats freed: exactly the first twenty of the queue got them, nobody jumped it.
    assert confirmed == set(queue_before[:20])
    queue_after = list(
        Signup.objects.filter(activity=a, status="waitlisted").order_by("id").values_list("user_id", flat=True)
    )
    assert queue_after[:10] == queue_before[20:]
    assert set(queue_after[10:]) == {m.user_id for m in late}
    promoted_told = set(Notification.objects.filter(kind="activity.promoted").values_list("user_id", flat=True))
    assert promoted_told == set(queue_before[:20])


@pytest.mark.django_db(transaction=True)
def test_one_members_20_parallel_sign_ups_make_one_sign_up(district, live_server):
    (member,) = many_members(district.union_a1, 1, "手快")
    give(district.union_a1, district.district_admin, [member], 100)
    token, _ = issue_token(member.user)
    a = open_activity(district.admin_a, district.street_a, capacity=10, points_cost=30)
    url = f"{live_server.url}/api/v1/activities/{a.pk}/signups"

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: _call("POST", url, token), range(20)))

    statuses = Counter((status, _code(body) or body.get("status")) for status, body in results)
    assert statuses == {(201, "confirmed"): 1, (409, "already_signed_up"): 19}, statuses
    a = _assert_consistent(a)
    assert a.confirmed_count == 1
    assert Signup.objects.filter(activity=a, user=member.user).count() == 1
    assert ledger.balance_of(member.user) == 70  # paid once
    assert reconcile()[0] == 0
    assert_ledger_sound()


@pytest.mark.django_db(transaction=True)
def test_parallel_scans_check_in_once_and_pay_once(district, live_server):
    members = many_members(district.union_a1, 3, "签到")
    fund(district.street_a, 1000, district.district_admin)
    a = open_activity(district.admin_a, district.street_a, capacity=3, points_reward=12)
    for m in members:
        signups.sign_up(m.user, a.pk)
    a = move(a, starts_in=dt.timedelta(minutes=5))
    tokens = {m.user_id: issue_token(m.user)[0] for m in members}
    url = f"{live_server.url}/api/v1/activities/{a.pk}/checkins"
    jobs = [uid for uid in tokens for _ in range(8)]

    with ThreadPoolExecutor(24) as pool:
        results = list(
            pool.map(
                lambda uid: (
                    uid,
                    _call("POST", url, tokens[uid], json.dumps({"code": checkin.rotating_code(a)[0]}).encode()),
                ),
                jobs,
            )
        )

    per_person = Counter((uid, status, _code(body)) for uid, (status, body) in results)
    for uid in tokens:
        assert per_person[(uid, 201, None)] == 1, per_person
        assert per_person[(uid, 409, "already_checked_in")] == 7, per_person
    a.refresh_from_db()
    assert a.checked_in_count == 3
    assert [ledger.balance_of(m.user) for m in members] == [12, 12, 12]
    assert Signup.objects.filter(activity=a, reward__isnull=False).count() == 3
    assert reconcile()[0] == 0
    assert_ledger_sound()


@pytest.mark.django_db(transaction=True)
def test_a_cancellation_racing_sign_ups_with_points_keeps_the_ledger_sound(district, live_server):
    members = many_members(district.union_a1, 30, "积分")
    give(district.union_a1, district.district_admin, members, 100)
    a = open_activity(district.admin_a, district.street_a, capacity=10, points_cost=20)
    for m in members[:15]:
        signups.sign_up(m.user, a.pk)  # 10 confirmed (paid), 5 waitlisted
    tokens = {m.user_id: issue_token(m.user)[0] for m in members}
    base = f"{live_server.url}/api/v1/activities/{a.pk}/signups"
    jobs = [("DELETE", base + "/me", m.user_id) for m in members[:10]] + [
        ("POST", base, m.user_id) for m in members[15:]
    ]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda j: _call(j[0], j[1], tokens[j[2]], None if j[0] == "DELETE" else b"{}"), jobs))

    assert all(status in (201, 204) for status, _ in results), Counter(s for s, _ in results)
    a = _assert_consistent(a)
    assert a.confirmed_count == 10
    confirmed = Signup.objects.filter(activity=a, status=SignupStatus.CONFIRMED)
    for s in confirmed:
        assert s.payment_id is not None
        assert ledger.balance_of(s.user) == 80
    for m in members[:10]:
        assert ledger.balance_of(m.user) == 100
    assert reconcile()[0] == 0
    assert_ledger_sound()
