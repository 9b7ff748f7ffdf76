"""Redemption under real parallel HTTP clients: no oversell, no double debit, no negative balance.

Each test starts the live server and fires requests from a thread pool with urllib, every
request on its own connection, so the database sees truly concurrent transactions (SQLite and
PostgreSQL alike: run with DATABASE_URL set for the latter).
"""

from __future__ import annotations

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
from points.services import budgets, ledger
from points.tests.helpers import assert_ledger_sound, fund, many_members, reconcile
from rewards.models import Redemption, Reward
from rewards.services import mall


def _post(url: str, token: str, key: str, body: bytes = b"{}") -> tuple[int, dict]:
    """POST like a careful client: with an Idempotency-Key, retried with the same key if the
    connection drops (the test server's listen backlog is small; a burst of connects can be reset)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key}
    for attempt in range(20):
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
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


def _members_with_points(district, n: int, points: int):
    members = many_members(district.union_a1, n, "抢购")
    fund(district.union_a1, n * points, district.district_admin)
    budgets.grant(district.admin_a1, district.union_a1, [m.user_id for m in members], points, "抢购测试")
    return members


@pytest.mark.django_db(transaction=True)
def test_200_members_racing_for_50_items_get_exactly_50(district, live_server):
    members = _members_with_points(district, 200, 100)
    tokens = {m.user_id: issue_token(m.user)[0] for m in members}
    reward = mall.create_reward(district.admin_a, district.street_a, title="限量保温杯", cost=60, stock=50)
    url = f"{live_server.url}/api/v1/rewards/{reward.pk}/redemptions"

    with ThreadPoolExecutor(32) as pool:
        results = dict(
            zip(tokens, pool.map(lambda uid: _post(url, tokens[uid], str(uuid.uuid4())), tokens), strict=True)
        )

    statuses = Counter((status, _code(body)) for status, body in results.values())
    assert statuses == {(201, None): 50, (409, "out_of_stock"): 150}, statuses
    assert Reward.objects.get(pk=reward.pk).stock == 0
    winners = {uid for uid, (status, _) in results.items() if status == 201}
    assert set(Redemption.objects.values_list("user_id", flat=True)) == winners
    assert Redemption.objects.count() == 50
    assert len({body["code"] for status, body in results.values() if status == 201}) == 50
    for m in members:
        assert ledger.balance_of(m.user) == (40 if m.user_id in winners else 100)
    assert ledger.mall_account(district.street_a).balance == 50 * 60
    code, out = reconcile()
    assert code == 0, out
    assert_ledger_sound()


@pytest.mark.django_db(transaction=True)
def test_20_parallel_redemptions_with_one_idempotency_key_debit_once(district, live_server):
    (member,) = _members_with_points(district, 1, 1000)
    token, _ = issue_token(member.user)
    reward = mall.create_reward(
        district.admin_a, district.street_a, title="电影票", cost=100, stock=50, per_member_limit=10
    )
    url = f"{live_server.url}/api/v1/rewards/{reward.pk}/redemptions"
    key = str(uuid.uuid4())

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: _post(url, token, key), range(20)))

    assert all(s in (201, 409) for s, _ in results), Counter(s for s, _ in results)
    created = [body for status, body in results if status == 201]
    assert created and all(body == created[0] for body in created)
    assert all(_code(body) == "idempotency_in_progress" for status, body in results if status == 409)
    assert Redemption.objects.filter(user=member.user).count() == 1
    assert Redemption.objects.get().pk == created[0]["id"]
    assert ledger.balance_of(member.user) == 900
    assert Reward.objects.get(pk=reward.pk).stock == 49
    # A retry later still gets the first answer and moves nothing.
    status, body = _post(url, token, key)
    assert status == 201 and body == created[0]
    assert ledger.balance_of(member.user) == 900
    assert reconcile()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_10_parallel_redemptions_with_points_for_3_buy_exactly_3_and_never_go_negative(district, live_server):
    (member,) = _members_with_points(district, 1, 300)
    token, _ = issue_token(member.user)
    reward = mall.create_reward(
        district.admin_a, district.street_a, title="大米", cost=100, stock=50, per_member_limit=10
    )
    url = f"{live_server.url}/api/v1/rewards/{reward.pk}/redemptions"

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: _post(url, token, str(uuid.uuid4())), range(10)))

    statuses = Counter((status, _code(body)) for status, body in results)
    assert statuses == {(201, None): 3, (409, "insufficient_points"): 7}, statuses
    assert ledger.balance_of(member.user) == 0
    assert Redemption.objects.filter(user=member.user).count() == 3
    assert Reward.objects.get(pk=reward.pk).stock == 47
    assert reconcile()[0] == 0
    assert_ledger_sound()
