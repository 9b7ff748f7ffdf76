"""Ballots under real parallel HTTP clients against the live server (SQLite, and PostgreSQL when
DATABASE_URL names one): one voter's 40 simultaneous ballots count once; 200 voters at once are
all counted exactly; ballots racing the close are either counted or refused, never lost."""

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
from elections.models import ElectionBallot, ElectionVoter
from elections.services import record as records

from .builders import cast_marks, election, ids, roll


def _post(url: str, token: str, body: dict, key: str | None = None) -> tuple[int, dict]:
    """POST like a careful client: retried on a dropped connection (the test server's listen backlog
    is small), with an Idempotency-Key so a retry cannot cast twice."""
    key = key or str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key}
    data = json.dumps(body).encode()
    for attempt in range(20):
        req = urllib.request.Request(url, data=data, method="POST", headers=headers)
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


@pytest.mark.django_db(transaction=True)
def test_one_voters_40_simultaneous_ballots_count_once(district, live_server):
    voters = roll(district.union_a1, 3)
    e = election(district.admin_a1, district.union_a1, seats=1)
    a, b, _c = ids(e)
    token, _ = issue_token(voters[0].user)
    url = f"{live_server.url}/api/v1/elections/{e.pk}/ballots"
    # Different choices and different keys: each request is a new attempt to vote again.
    bodies = [{"marks": {str(a if i % 2 else b): "for"}} for i in range(40)]

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(lambda body: _post(url, token, body), bodies))

    statuses = Counter((status, _code(body)) for status, body in results)
    assert statuses == {(201, None): 1, (409, "already_voted"): 39}, statuses
    assert len(cast_marks(e)) == 1
    row = ElectionVoter.objects.get(election=e, user=voters[0].user)
    receipt = next(body["receipt"] for status, body in results if status == 201)
    assert row.voted_at is not None and row.receipt == receipt
    assert ElectionVoter.objects.filter(election=e, voted_at__isnull=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_200_voters_at_once_are_all_counted_exactly(district, live_server):
    voters = roll(district.union_a1, 200)
    e = election(district.admin_a1, district.union_a1, seats=2, names=("张三", "李四", "王五"))
    a, b, c = ids(e)
    tokens = {m.user_id: issue_token(m.user)[0] for m in voters}
    url = f"{live_server.url}/api/v1/elections/{e.pk}/ballots"
    # Voter i: 张三 for when i % 2 == 0; 李四 for when i % 3 == 0, else against; 王五 for when i % 5 == 0 and
    # that leaves room (≤ 2 "for"), else abstain.
    plan = {}
    for i, m in enumerate(voters):
        marks = {str(a): "for" if i % 2 == 0 else "against", str(b): "for" if i % 3 == 0 else "against"}
        n_for = sum(v == "for" for v in marks.values())
        marks[str(c)] = "for" if i % 5 == 0 and n_for < 2 else "abstain"
        plan[m.user_id] = marks

    with ThreadPoolExecutor(32) as pool:
        results = dict(
            zip(
                plan,
                pool.map(lambda uid: _post(url, tokens[uid], {"marks": plan[uid]}), plan),
                strict=True,
            )
        )

    assert Counter(status for status, _ in results.values()) == {201: 200}
    receipts = [body["receipt"] for _, body in results.values()]
    assert len(set(receipts)) == 200
    assert len(cast_marks(e)) == 200

    resp = _post(f"{live_server.url}/api/v1/elections/{e.pk}/close", issue_token(district.admin_a1)[0], {})
    assert resp[0] == 200, resp
    result = resp[1]
    assert (result["eligible"], result["voted"], result["valid"]) == (200, 200, 200)
    expected = {cid: Counter(marks[str(cid)] for marks in plan.values()) for cid in (a, b, c)}
    for cand in result["candidates"]:
        exp = expected[cand["id"]]
        assert (cand["for"], cand["against"], cand["abstain"]) == (exp["for"], exp["against"], exp["abstain"])
    e.refresh_from_db()
    assert sorted(records.public_record(e)["receipts"]) == sorted(receipts)
    assert records.recount(e).matches


@pytest.mark.django_db(transaction=True)
def test_ballots_racing_the_close_are_counted_or_refused_never_lost(district, live_server):
    voters = roll(district.union_a1, 60)
    e = election(district.admin_a1, district.union_a1, seats=1, names=("张三", "李四"))
    a, _b = ids(e)
    tokens = [issue_token(m.user)[0] for m in voters]
    admin = issue_token(district.admin_a1)[0]
    base = f"{live_server.url}/api/v1/elections/{e.pk}"

    def job(i: int):
        if i == 30:
            return ("close", _post(f"{base}/close", admin, {}))
        return ("ballot", _post(f"{base}/ballots", tokens[i], {"marks": {str(a): "for"}}))

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(job, range(60)))

    close = next(r for kind, r in results if kind == "close")
    assert close[0] == 200, close
    accepted = sum(1 for kind, (s, _b) in results if kind == "ballot" and s == 201)
    refused = Counter(_code(b) for kind, (s, b) in results if kind == "ballot" and s != 201)
    assert set(refused) <= {"poll_closed"}, refused
    assert accepted + sum(refused.values()) == 59
    # Whatever the interleaving, the published count is exactly the ballots accepted, and stored.
    assert close[1]["voted"] == accepted == ElectionBallot.objects.filter(election=e).count() == len(cast_marks(e))
    assert close[1]["candidates"][0]["for"] == accepted
    e.refresh_from_db()
    assert records.recount(e).matches
