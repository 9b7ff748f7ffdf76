"""The backup and restore drill, on the production server (SQLite here, PostgreSQL in its pass).

Points move, a poll is sealed and an election closed; then, while a writer rush (redemptions and
ballots) goes on, `manage.py backup_db` copies the live database. `manage.py restore_db` puts the
copy into a fresh database, refuses to do it again over the now-filled one, and against the
restored database `reconcile_points`, `recount_poll` and `recount_election` all pass; the sealed
poll and the closed election have exactly what the server reported, and the rush has a
consistent prefix: no fewer writes than were answered before the backup began, no more than
were sent before it ended.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.prodserver import Server, in_parallel, production_server

pytestmark = pytest.mark.server

CLIENTS = 48


def _times() -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(minutes=1)).isoformat(), (now + dt.timedelta(hours=2)).isoformat()


def _poll(srv: Server, admin: str, root: int, title: str) -> dict:
    opens, closes = _times()
    r = srv.post(
        "/api/v1/polls",
        {
            "org_id": root,
            "title": title,
            "options": [{"title": "甲"}, {"title": "乙"}],
            "max_choices": 1,
            "ballots_per_day": None,
            "eligibility": "members",
            "opens_at": opens,
            "closes_at": closes,
        },
        token=admin,
    )
    assert r.status == 201, r.body
    return r.json()


def _facts(srv: Server, env: dict, reward_id: int, poll_ids: list[int]) -> dict:
    code = (
        "import json; from rewards.models import Redemption; from votes.models import Ballot; "
        f"print(json.dumps({{'redemptions': Redemption.objects.filter(reward_id={reward_id}).count(), "
        f"'ballots': {{str(p): Ballot.objects.filter(poll_id=p).count() for p in {poll_ids!r}}}}}))"
    )
    return json.loads(srv.manage("shell", "-c", code, env=env).stdout.strip().splitlines()[-1])


def test_backup_while_writing_then_restore_and_recount(tmp_path):
    with production_server(tmp_path / "srv", seed_members=CLIENTS + 20, workers=2) as srv:
        admin = srv.token(srv.creds["district_admin"]["phone"])
        root = srv.creds["district_admin"]["org_id"]
        issued = srv.issue_tokens([m["phone"] for m in srv.creds["members"][:CLIENTS]])
        tokens, ids = [t for t, _ in issued], [u for _, u in issued]
        granted = srv.post(
            f"/api/v1/orgs/{root}/points/grants", {"member_ids": ids, "amount": 500, "reason": "演练"}, token=admin
        )
        assert granted.status == 201, granted.body
        reward = srv.post(
            "/api/v1/rewards",
            {"org_id": root, "title": "雨伞", "cost": 3, "stock": 10_000, "per_member_limit": 150},
            token=admin,
        ).json()

        # A sealed poll and a closed election, with what the server reports about them.
        sealed = _poll(srv, admin, root, "年度人物")
        a, b = [o["id"] for o in sealed["options"]]
        voted = in_parallel(
            lambda it: srv.post(
                f"/api/v1/polls/{sealed['id']}/ballots", {"option_ids": [a if it[0] % 3 else b]}, token=it[1]
            ),
            list(enumerate(tokens)),
        )
        assert {r.status for r in voted} == {201}
        assert srv.post(f"/api/v1/polls/{sealed['id']}/close", token=admin).status == 200
        sealed_results = srv.get(f"/api/v1/polls/{sealed['id']}/results", token=admin).json()
        opens, closes = _times()
        election = srv.post(
            "/api/v1/elections",
            {
                "org_id": root,
                "title": "工会主席选举",
                "seats": 1,
                "candidates": [{"name": "张三"}, {"name": "李四"}],
                "voters": ids,
                "opens_at": opens,
                "closes_at": closes,
            },
            token=admin,
        ).json()
        c1, c2 = [c["id"] for c in election["candidates"]]
        marks = in_parallel(
            lambda it: srv.post(
                f"/api/v1/elections/{election['id']}/ballots",
                {"marks": {str(c1): "for"} if it[0] % 4 else {str(c2): "for", str(c1): "against"}},
                token=it[1],
            ),
            list(enumerate(tokens[:-5])),  # five abstain from voting at all
        )
        assert {r.status for r in marks} == {201}
        election_result = srv.post(f"/api/v1/elections/{election['id']}/close", token=admin).json()
        assert election_result["voted"] == CLIENTS - 5

        # The writer rush, and the backup in the middle of it.
        rush = _poll(srv, admin, root, "食堂满意度")
        sent = {"redeem": 0, "ballot": 0}
        answered = {"redeem": 0, "ballot": 0}
        lock, stop = threading.Lock(), threading.Event()

        def writer(i: int) -> None:
            token, n = tokens[i], 0
            while not stop.is_set() and n < 150:
                what = "ballot" if n == 3 else "redeem"
                path = (
                    f"/api/v1/polls/{rush['id']}/ballots"
                    if what == "ballot"
                    else f"/api/v1/rewards/{reward['id']}/redemptions"
                )
                body = {"option_ids": [rush["options"][i % 2]["id"]]} if what == "ballot" else None
                with lock:
                    sent[what] += 1
                r = srv.post(path, body, token=token)
                assert r.status in (201, 409, 429), r.body[:300]
                if r.status == 201:
                    with lock:
                        answered[what] += 1
                n += 1

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        while answered["redeem"] < 100:
            time.sleep(0.02)
        with lock:
            floor = dict(answered)
        backup_file = tmp_path / "unionhome.backup"
        t0 = time.monotonic()
        done = srv.manage("backup_db", "--out", str(backup_file))
        backup_s = time.monotonic() - t0
        with lock:
            ceiling = dict(sent)
        time.sleep(0.5)  # the rush goes on after the backup
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert "backed up" in done.stdout, done.stdout
        assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
        assert srv.manage("backup_db", "--out", str(backup_file), check=False).returncode != 0  # no overwrite
        live = _facts(srv, {}, reward["id"], [sealed["id"], rush["id"]])
        assert live["redemptions"] >= answered["redeem"] >= floor["redeem"]

        # Restore into a fresh database, named the way operators name it.
        pg_url = srv.env.get("DATABASE_URL", "")
        if pg_url.startswith("postgres"):
            parts = urlsplit(pg_url)
            restored_url = urlunsplit(parts._replace(path=parts.path + "_restored"))
            target = {"DATABASE_URL": restored_url}
        else:
            target = {"SQLITE_PATH": str(tmp_path / "restored" / "db.sqlite3")}
        try:
            t0 = time.monotonic()
            out = srv.manage("restore_db", "--from", str(backup_file), env=target)
            restore_s = time.monotonic() - t0
            assert "restored" in out.stdout, out.stdout
            again = srv.manage("restore_db", "--from", str(backup_file), env=target, check=False)
            assert again.returncode != 0 and "refusing to overwrite" in again.stderr, again.stderr

            srv.manage("migrate", "--check", env=target)  # the schema is whole and current
            srv.manage("reconcile_points", env=target)
            srv.manage("recount_poll", str(sealed["id"]), env=target)
            srv.manage("recount_poll", str(rush["id"]), env=target)  # live counters equal its ballot rows
            srv.manage("recount_election", str(election["id"]), env=target)

            facts = _facts(srv, target, reward["id"], [sealed["id"], rush["id"]])
            assert facts["ballots"][str(sealed["id"])] == sealed_results["total_ballots"] == CLIENTS
            assert floor["redeem"] <= facts["redemptions"] <= ceiling["redeem"]
            assert floor["ballot"] <= facts["ballots"][str(rush["id"])] <= ceiling["ballot"]
            record = srv.manage(
                "shell",
                "-c",
                "import json; from elections.models import Election; "
                f"e = Election.objects.get(pk={election['id']}); print(json.dumps([e.status, e.result['voted']]))",
                env=target,
            )
            assert json.loads(record.stdout.strip().splitlines()[-1]) == ["closed", CLIENTS - 5]
            print(
                f"\nbackup {backup_s:.1f} s ({backup_file.stat().st_size:,} bytes) during a rush "
                f"(answered before {floor}, sent by the end {ceiling}); restore {restore_s:.1f} s; "
                f"restored {facts}"
            )
        finally:
            if "DATABASE_URL" in target:
                import psycopg

                admin_url = urlunsplit(urlsplit(pg_url)._replace(path="/postgres"))
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    name = urlsplit(target["DATABASE_URL"]).path.lstrip("/")
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        assert os.path.exists(backup_file)
