"""Rushes against a production server as operators run it: gunicorn sync workers and gthread, on
SQLite named by path and by a sqlite:/// DATABASE_URL (and on PostgreSQL in its pass).

A SQLite URL used to give Django's plain backend: a 64-client redemption rush answered 500s
("database is locked") and a ballot rush 500s (no `immediate()`), and election ballots were lost
the same way. Each rush here must answer no 500, sell exactly the stock, count every ballot once.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from tests.prodserver import in_parallel, production_server

pytestmark = pytest.mark.server

CLIENTS = 64
STOCK = 20

CONFIGS = [("sync", "path"), ("gthread", "url")]
if os.environ.get("DATABASE_URL"):
    CONFIGS = [("sync", "pg"), ("gthread", "pg")]


@pytest.fixture(scope="module", params=CONFIGS, ids=[f"{w}-{db}" for w, db in CONFIGS])
def rush(request, tmp_path_factory):
    worker_class, db = request.param
    tmp = tmp_path_factory.mktemp(f"rush-{worker_class}-{db}")
    with production_server(
        tmp,
        seed_members=CLIENTS + 36,
        worker_class=worker_class,
        workers=3,
        threads=4,
        sqlite_by="url" if db == "url" else "path",
    ) as srv:
        admin = srv.token(srv.creds["district_admin"]["phone"])
        members = srv.creds["members"][:CLIENTS]
        assert len(members) == CLIENTS
        # The members' tokens are issued on the server's database (production's password hasher
        # costs ~0.3 s a login); the admin above signed in over HTTP. /me checks each token works.
        tokens = [t for t, _uid in srv.issue_tokens([m["phone"] for m in members])]
        ids = [r.json()["id"] for r in in_parallel(lambda t: srv.get("/api/v1/me", token=t), tokens)]
        srv.admin, srv.member_tokens, srv.member_ids = admin, tokens, ids  # type: ignore[attr-defined]
        srv.root = srv.creds["district_admin"]["org_id"]  # type: ignore[attr-defined]
        yield srv
        assert " 500 " not in srv.log() and "Traceback" not in srv.log(), srv.log()[-3000:]


def _times() -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(minutes=1)).isoformat(), (now + dt.timedelta(hours=2)).isoformat()


def _statuses(results) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in results:
        out[r.status] = out.get(r.status, 0) + 1
    return out


def test_a_redemption_rush_sells_exactly_the_stock(rush):
    granted = rush.post(
        f"/api/v1/orgs/{rush.root}/points/grants",
        {"member_ids": rush.member_ids, "amount": 100, "reason": "抢购测试"},
        token=rush.admin,
    )
    assert granted.status == 201, granted.body
    reward = rush.post(
        "/api/v1/rewards",
        {"org_id": rush.root, "title": "保温杯", "cost": 10, "stock": STOCK, "per_member_limit": 1},
        token=rush.admin,
    )
    assert reward.status == 201, reward.body
    rid = reward.json()["id"]
    results = in_parallel(
        lambda t: rush.post(f"/api/v1/rewards/{rid}/redemptions", token=t), rush.member_tokens, CLIENTS
    )
    assert _statuses(results) == {201: STOCK, 409: CLIENTS - STOCK}, [r.body[:200] for r in results if r.status >= 500]
    assert {r.json()["error"]["code"] for r in results if r.status == 409} == {"out_of_stock"}
    assert rush.get(f"/api/v1/rewards/{rid}", token=rush.admin).json()["stock_left"] == 0


def test_a_ballot_rush_counts_every_ballot_once(rush):
    opens, closes = _times()
    poll = rush.post(
        "/api/v1/polls",
        {
            "org_id": rush.root,
            "title": "最美职工",
            "options": [{"title": "甲"}, {"title": "乙"}],
            "max_choices": 1,
            "eligibility": "members",
            "opens_at": opens,
            "closes_at": closes,
        },
        token=rush.admin,
    )
    assert poll.status == 201, poll.body
    pid, options = poll.json()["id"], [o["id"] for o in poll.json()["options"]]

    def vote(i_token):
        i, token = i_token
        return rush.post(f"/api/v1/polls/{pid}/ballots", {"option_ids": [options[i % 2]]}, token=token)

    first = in_parallel(vote, list(enumerate(rush.member_tokens)), CLIENTS)
    again = in_parallel(vote, list(enumerate(rush.member_tokens)), CLIENTS)
    assert _statuses(first) == {201: CLIENTS}, [r.body[:200] for r in first if r.status != 201][:3]
    assert _statuses(again) == {409: CLIENTS}
    results = rush.get(f"/api/v1/polls/{pid}/results", token=rush.admin).json()
    assert results["total_ballots"] == CLIENTS
    assert sorted(o["votes"] for o in results["options"]) == [CLIENTS // 2, CLIENTS // 2]


def test_an_election_rush_loses_no_ballot(rush):
    opens, closes = _times()
    election = rush.post(
        "/api/v1/elections",
        {
            "org_id": rush.root,
            "title": "工会委员选举",
            "seats": 1,
            "candidates": [{"name": "张三"}, {"name": "李四"}],
            "voters": rush.member_ids,
            "opens_at": opens,
            "closes_at": closes,
        },
        token=rush.admin,
    )
    assert election.status == 201, election.body
    eid, (a, b) = election.json()["id"], [c["id"] for c in election.json()["candidates"]]

    def vote(i_token):
        i, token = i_token
        marks = {str(a): "for", str(b): "against"} if i % 4 else {str(b): "for"}
        return rush.post(f"/api/v1/elections/{eid}/ballots", {"marks": marks}, token=token)

    first = in_parallel(vote, list(enumerate(rush.member_tokens)), CLIENTS)
    assert _statuses(first) == {201: CLIENTS}, [r.body[:200] for r in first if r.status != 201][:3]
    assert _statuses(in_parallel(vote, list(enumerate(rush.member_tokens))[:16], 16)) == {409: 16}
    closed = rush.post(f"/api/v1/elections/{eid}/close", token=rush.admin)
    assert closed.status == 200, closed.body
    result = closed.json()
    assert result["voted"] == CLIENTS and result["eligible"] == CLIENTS
    by_id = {c["id"]: c for c in result["candidates"]}
    assert by_id[a]["for"] == CLIENTS - CLIENTS // 4 and by_id[b]["for"] == CLIENTS // 4
