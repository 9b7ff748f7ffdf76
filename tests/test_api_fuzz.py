"""schemathesis over /api/v1/openapi.json against a production server (gunicorn, DEBUG=0; SQLite,
and PostgreSQL in its pass): no generated input may answer a 5xx.

A plain run stops at the guards: random ids answer 404 and a token's role answers 401/403, so half
the operations are never reached. This run is given what a client would have: a cadre's and a
member's token, and real ids (seeded by seed_demo or created here through the API) bound to every
path parameter, so each operation is exercised past its guards. The HAR report of every exchange is
then read back: each operation must have answered at least once with something other than
401/403/404/405, except the few listed in UNREACHED with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.prodserver import production_server

pytestmark = pytest.mark.server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
GUARDS = {401, 403, 404, 405}
# Examples per operation and token; a deeper run by hand: UNIONHOME_FUZZ_EXAMPLES=50 (and any seed).
EXAMPLES = int(os.environ.get("UNIONHOME_FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("UNIONHOME_FUZZ_SEED", "1")
# Operations a generated request cannot get past, with why. Keep it short and honest.
UNREACHED = {
    "POST /api/v1/auth/token/revoke": "excluded: it would revoke the run's own token",
    "GET /api/v1/imports/{job_id}": "a job id exists only after a 5,000+ row upload",
    "POST /api/v1/imports/{job_id}/cancel": "the same",
}


def _times() -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(minutes=1)).isoformat(), (now + dt.timedelta(days=2)).isoformat()


def _first_id(srv, path: str, token: str) -> int | None:
    r = srv.get(path + ("&" if "?" in path else "?") + "page_size=1", token=token)
    items = r.json().get("items", []) if r.status == 200 else []
    return items[0]["id"] if items else None


def _seed_ids(srv) -> tuple[dict[str, int], str, str]:
    admin = srv.token(srv.creds["district_admin"]["phone"])
    member = srv.token(srv.creds["members"][0]["phone"])
    root = srv.creds["district_admin"]["org_id"]
    opens, closes = _times()
    me = srv.get("/api/v1/me", token=member).json()
    assert (
        srv.post(
            f"/api/v1/orgs/{root}/points/grants",
            {"member_ids": [me["id"]], "amount": 500, "reason": "fuzz"},
            token=admin,
        ).status
        == 201
    )
    ids: dict[str, int] = {"org_id": root}
    poll = srv.post(
        "/api/v1/polls",
        {
            "org_id": root,
            "title": "模糊测试投票",
            "options": [{"title": "甲"}, {"title": "乙"}],
            "max_choices": 1,
            "eligibility": "members",
            "opens_at": opens,
            "closes_at": closes,
        },
        token=admin,
    )
    ids["poll_id"] = poll.json()["id"]
    election = srv.post(
        "/api/v1/elections",
        {
            "org_id": root,
            "title": "模糊测试选举",
            "seats": 1,
            "candidates": [{"name": "张三"}, {"name": "李四"}],
            "voters": "members",
            "opens_at": opens,
            "closes_at": closes,
        },
        token=admin,
    )
    ids["election_id"] = election.json()["id"]
    activity = srv.post(
        "/api/v1/activities",
        {
            "org_id": root,
            "title": "模糊测试活动",
            "starts_at": closes,
            "ends_at": (dt.datetime.fromisoformat(closes) + dt.timedelta(hours=2)).isoformat(),
            "capacity": 50,
            "waitlist": True,
        },
        token=admin,
    )
    ids["activity_id"] = activity.json()["id"]
    reward = srv.post(
        "/api/v1/rewards",
        {"org_id": root, "title": "模糊测试奖品", "cost": 1, "stock": 100, "per_member_limit": 50},
        token=admin,
    )
    ids["reward_id"] = reward.json()["id"]
    redemption = srv.post(f"/api/v1/rewards/{ids['reward_id']}/redemptions", token=member)
    ids["redemption_id"] = redemption.json().get("id", 0)
    lottery = srv.post(
        "/api/v1/lotteries",
        {
            "org_id": root,
            "title": "模糊测试抽奖",
            "entry_cost": 1,
            "prizes": [{"name": "杯子", "quantity": 2}],
            "opens_at": opens,
            "closes_at": closes,
        },
        token=admin,
    )
    ids["lottery_id"] = lottery.json().get("id", 0)
    club = srv.post("/api/v1/clubs", {"name": "模糊测试摄影社", "description": "周末一起拍照"}, token=member)
    ids["club_id"] = club.json().get("id", 0)
    ids["session_id"] = _first_id(srv, "/api/v1/live", member) or 0
    for name, value in ids.items():
        assert value, f"no {name} to bind: {ids}"
    ids["job_id"] = 0  # see UNREACHED
    return ids, admin, member


def _run(srv, tmp: Path, token: str, ids: dict[str, int], label: str) -> list[dict]:
    config = tmp / f"{label}.toml"
    config.write_text(
        f'[auth.openapi.TokenAuth]\nbearer = "{token}"\n[parameters]\n'
        + "".join(f'"path.{k}" = {v}\n' for k, v in ids.items() if v)
        + f"[generation]\nmax-examples = {EXAMPLES}\n",
        encoding="utf-8",
    )
    har = tmp / f"{label}.har"
    cmd = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"http://{srv.host}:{srv.port}/api/v1/openapi.json",
        # Revoking the run's own token would turn every later request into a 401 (it is tested in
        # accounts/tests/test_tokens.py and by the contract tests).
        "--exclude-path",
        "/api/v1/auth/token/revoke",
        "--checks",
        "not_a_server_error",
        "--seed",
        SEED,
        "--report",
        "har",
        "--report-har-path",
        str(har),
        "--workers",
        "2",
        "--no-color",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "60",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert har.exists(), run.stdout[-4000:] + run.stderr[-2000:]
    entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
    server_errors = [e for e in entries if e["response"]["status"] >= 500]
    assert not server_errors, [(e["request"]["method"], e["request"]["url"]) for e in server_errors][:10]
    assert run.returncode == 0, run.stdout[-4000:]
    return entries


def test_no_generated_request_answers_a_5xx_and_every_operation_is_reached(tmp_path):
    with production_server(tmp_path / "srv", seed_members=200, workers=3) as srv:
        ids, admin, member = _seed_ids(srv)
        schema = json.loads(srv.get("/api/v1/openapi.json").body)
        entries = _run(srv, tmp_path, admin, ids, "cadre") + _run(srv, tmp_path, member, ids, "member")
        log = srv.log()
    assert "Traceback" not in log, log[-3000:]

    ops = [(m.upper(), p) for p, item in schema["paths"].items() for m in item]
    patterns = [(m, p, re.compile("^" + re.sub(r"\{\w+\}", r"[^/]+", p) + "$")) for m, p in ops]
    statuses: dict[str, set[int]] = defaultdict(set)
    for e in entries:
        path = re.sub(r"^https?://[^/]+", "", e["request"]["url"]).split("?")[0]
        for m, p, rx in patterns:
            if m == e["request"]["method"] and rx.match(path):
                statuses[f"{m} {p}"].add(e["response"]["status"])
                break
    unreached = {
        op: sorted(statuses.get(op, set()))
        for op in (f"{m} {p}" for m, p in ops)
        if not statuses.get(op, set()) - GUARDS and op not in UNREACHED
    }
    assert not unreached, f"operations never exercised past their guards: {unreached}"
    assert sum(1 for op in statuses if statuses[op] - GUARDS) >= len(ops) - len(UNREACHED)
