"""kill -9 in the middle of the work, then start again on the same database: nothing half-done stays.

(a) The task worker dies in the middle of a large roster import (a 202 job, progress under way).
    django-tasks-db leaves such a task RUNNING for ever; `manage.py resume_imports` (run by
    `run_schedule`) puts it back in the queue and the restarted worker resumes it at the first batch
    not committed (members/resume.py). The counts are exact: every good row created once, every
    planted bad row reported, the database holds each person once.
(b) gunicorn's master and workers die together in the middle of a redemption rush, a poll ballot rush
    and an election ballot rush. After a restart on the same database: the ledger reconciles, no
    redemption lacks its movement and entries or stock, the poll's counters equal its ballot rows
    (`recount_poll`) and the election's ballots its roll (`recount_election`).

Rows: UNIONHOME_CRASH_ROWS (default 20,000: ten 2,000-row batches; 50,000 for the drill by hand), the
kill once UNIONHOME_CRASH_KILL_AT of them are done (default: after the first batch).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.prodserver import Server, in_parallel, production_server

pytestmark = pytest.mark.server

ROWS = int(os.environ.get("UNIONHOME_CRASH_ROWS", "20000"))
KILL_AT = float(os.environ.get("UNIONHOME_CRASH_KILL_AT", "0"))  # a share of the rows; 0: after the first batch
BAD_EVERY = 997  # every 997th row has a wrong ID check digit
HEADER = ["姓名", "手机号", "身份证号", "性别", "入会日期", "工作单位"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉鹏"


def make_roster(path: Path, rows: int) -> int:
    """A roster of `rows` people (region 370102, phones 1980…), every BAD_EVERY-th with a bad check
    digit. Returns the number of bad rows."""
    from openpyxl import Workbook

    from core.idcard import check_digit

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("会员名册")
    ws.append(HEADER)
    base, joined, bad = dt.date(1970, 1, 1), dt.date(2015, 3, 1), 0
    for i in range(rows):
        birth = base + dt.timedelta(days=i // 900)
        first17 = f"370102{birth:%Y%m%d}{100 + i % 900:03d}"
        digit = check_digit(first17)
        if i % BAD_EVERY == BAD_EVERY - 1:
            digit = "0" if digit != "0" else "1"
            bad += 1
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i // 7) % len(GIVEN)] + GIVEN[(i // 131) % len(GIVEN)]
        ws.append(
            [name, f"1980{i:07d}", first17 + digit, "", (joined + dt.timedelta(days=i % 3000)).isoformat(), "车间"],
        )
    wb.save(path)
    return bad


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _shell(srv: Server, code: str) -> dict:
    """Run `code` (which prints one JSON line last) in `manage.py shell` against the server's database."""
    out = srv.manage("shell", "-c", code).stdout.strip().splitlines()
    return json.loads(out[-1])


def _enterprise_union(srv: Server, token: str) -> int:
    org_id = srv.creds["district_admin"]["org_id"]
    for _ in range(6):
        items = srv.get(f"/api/v1/orgs/{org_id}/children", token=token).json().get("items") or []
        if not items:
            break
        pick = next((o for o in items if o["kind"] == "enterprise"), items[0])
        org_id = pick["id"]
        if pick["kind"] == "enterprise":
            break
    return org_id


# --- (a) the worker dies in a roster import ---------------------------------------------------------


def test_a_roster_import_resumes_after_its_worker_is_killed(tmp_path):
    roster = tmp_path / "roster.xlsx"
    bad = make_roster(roster, ROWS)
    good = ROWS - bad
    with production_server(tmp_path / "srv", seed_members=40, start_worker=True) as srv:
        token = srv.token(srv.creds["district_admin"]["phone"])
        org_id = _enterprise_union(srv, token)
        count_members = (
            "import json; from members.models import Member; from django.db.models import Count; "
            f"q = Member.objects.filter(org_id={org_id}); "
            "dup = Member.objects.values('id_number_hash').annotate(n=Count('id')).filter(n__gt=1).count(); "
            "print(json.dumps({'members': q.count(), 'duplicates': dup}))"
        )
        before = _shell(srv, count_members)["members"]
        body, ctype = _multipart(roster)
        t0 = time.monotonic()
        r = srv.post(f"/api/v1/orgs/{org_id}/members/import", body, token=token, headers={"Content-Type": ctype})
        assert r.status == 202, r.body[:500]
        status_url = r.json()["status_url"]

        # Kill the worker once at least one batch is committed and before the last.
        while True:
            job = srv.get(status_url, token=token).json()
            assert job["status"] in ("queued", "running"), job
            if max(bad + 2000, KILL_AT * ROWS) <= job["progress"] < ROWS - 2000:
                break
            assert time.monotonic() - t0 < 300, job
            time.sleep(0.05)
        srv.kill("worker")
        killed_at = srv.get(status_url, token=token).json()
        assert killed_at["status"] == "running" and killed_at["progress"] < ROWS, killed_at

        # Nothing moves while no worker runs it; a new worker alone does not pick it up either.
        srv.start("worker")
        time.sleep(2)
        stuck = srv.get(status_url, token=token).json()
        assert stuck["status"] == "running" and stuck["progress"] == killed_at["progress"], stuck
        swept = srv.manage("resume_imports").stdout
        assert f"import job {r.json()['job_id']}: task back in the queue" in swept, swept
        assert "no import has lost its worker" in srv.manage("resume_imports").stdout  # leased now: left alone

        while (job := srv.get(status_url, token=token).json())["status"] in ("queued", "running"):
            assert time.monotonic() - t0 < 600, job
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        assert job["status"] == "done", job
        assert (job["created"], job["updated"], job["unchanged"]) == (good, 0, 0), job
        assert len(job["errors"]) == bad and {e["field"] for e in job["errors"]} == {"身份证号"}
        after = _shell(srv, count_members)
        assert after == {"members": before + good, "duplicates": 0}
        tasks = _shell(
            srv,
            "import json; from django_tasks_db.models import DBTaskResult; "
            "print(json.dumps([[t.status, len(t.worker_ids)] for t in DBTaskResult.objects.all()]))",
        )
        assert tasks == [["SUCCESSFUL", 2]]  # one task row, run by two workers
        print(
            f"\n{ROWS} rows ({bad} bad): killed at {killed_at['progress']}, done after {elapsed:.1f} s; "
            f"created {job['created']}, members {after['members']} (was {before})"
        )


# --- (b) gunicorn dies in rushes -----------------------------------------------------------------------

VOTERS = 240  # the ballot rush: every voter casts a poll ballot, then an election ballot
BUYERS = 64  # the redemption rush: each buys up to 100 times


def _times() -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(minutes=1)).isoformat(), (now + dt.timedelta(hours=2)).isoformat()


def _rush(srv: Server, jobs: list[tuple[str, list]], kill_when, threads: int = 48) -> dict:
    """Run each client's (token, [(kind, path, body)…]) in `threads` threads; SIGKILL gunicorn (master and workers) as soon as
    kill_when(answered) is true, with requests in flight. Returns the 2xx answers per kind."""
    answered: dict[str, int] = {}
    lock, stop = threading.Lock(), threading.Event()

    def client(token: str, steps) -> None:
        for what, path, body in steps:
            if stop.is_set():
                return
            try:
                r = srv.post(path, body, token=token)
            except Exception:  # the server died under us: this request may or may not have committed
                return
            if r.status in (200, 201):
                with lock:
                    answered[what] = answered.get(what, 0) + 1

    def thread(chunk) -> None:
        for token, steps in chunk:
            client(token, steps)

    pool = [threading.Thread(target=thread, args=(jobs[i::threads],)) for i in range(threads)]
    for t in pool:
        t.start()
    deadline = time.monotonic() + 180
    while not kill_when(answered) and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.kill("gunicorn")
    stop.set()
    for t in pool:
        t.join(timeout=120)
    return dict(answered)


def test_gunicorn_killed_in_rushes_leaves_nothing_half_written(tmp_path):
    with production_server(tmp_path / "srv", seed_members=VOTERS + 10, workers=3) as srv:
        admin = srv.token(srv.creds["district_admin"]["phone"])
        root = srv.creds["district_admin"]["org_id"]
        issued = srv.issue_tokens([m["phone"] for m in srv.creds["members"][:VOTERS]])
        tokens, ids = [t for t, _ in issued], [u for _, u in issued]
        opens, closes = _times()
        poll = srv.post(
            "/api/v1/polls",
            {
                "org_id": root,
                "title": "最美职工",
                "options": [{"title": "甲"}, {"title": "乙"}, {"title": "丙"}],
                "max_choices": 2,
                "eligibility": "members",
                "opens_at": opens,
                "closes_at": closes,
            },
            token=admin,
        ).json()
        options = [o["id"] for o in poll["options"]]
        election = srv.post(
            "/api/v1/elections",
            {
                "org_id": root,
                "title": "工会委员选举",
                "seats": 1,
                "candidates": [{"name": "张三"}, {"name": "李四"}],
                "voters": ids,
                "opens_at": opens,
                "closes_at": closes,
            },
            token=admin,
        ).json()
        a, b = [c["id"] for c in election["candidates"]]

        def ballots(i: int) -> list:
            return [
                (
                    "ballot",
                    f"/api/v1/polls/{poll['id']}/ballots",
                    {"option_ids": [options[i % 3], options[(i + 1) % 3]]},
                ),
                (
                    "election",
                    f"/api/v1/elections/{election['id']}/ballots",
                    {"marks": {str(a): "for", str(b): "against"}},
                ),
            ]

        # 1. The ballot rush, killed a quarter of the way.
        first = _rush(
            srv, [(tokens[i], ballots(i)) for i in range(VOTERS)], lambda n: n.get("ballot", 0) >= VOTERS // 4
        )
        assert 0 < first.get("ballot", 0) < VOTERS, first
        srv.start("gunicorn")
        # Every voter tries again: one who voted is refused, one who did not votes now. A ballot half
        # written by the kill (a roll row marked without its ballot, a ballot without its counters)
        # would show here as a voter refused with no ballot, or as counts that do not add up.
        again = [
            r
            for pair in in_parallel(
                lambda i: [srv.post(path, body, token=tokens[i]) for _, path, body in ballots(i)], range(VOTERS)
            )
            for r in pair
        ]
        assert {r.status for r in again} <= {201, 409}, [r.body[:200] for r in again if r.status not in (201, 409)][:3]

        # 2. The redemption rush, killed in the middle.
        granted = srv.post(
            f"/api/v1/orgs/{root}/points/grants",
            {"member_ids": ids[:BUYERS], "amount": 1000, "reason": "演练"},
            token=admin,
        )
        assert granted.status == 201, granted.body
        reward = srv.post(
            "/api/v1/rewards",
            {"org_id": root, "title": "保温杯", "cost": 7, "stock": 5000, "per_member_limit": 100},
            token=admin,
        ).json()
        buy = [("redeem", f"/api/v1/rewards/{reward['id']}/redemptions", None)] * 100
        second = _rush(srv, [(tokens[i], list(buy)) for i in range(BUYERS)], lambda n: n.get("redeem", 0) >= 1500)
        assert 0 < second.get("redeem", 0) < BUYERS * 100, second
        srv.start("gunicorn")

        srv.manage("reconcile_points")  # exit 0: every balance equals its entries, the ledger sums to 0
        facts = _shell(
            srv,
            "import json; from rewards.models import Redemption, Reward; from points.models import Entry; "
            "from django.db.models import Count, Sum; "
            f"rs = Redemption.objects.filter(reward_id={reward['id']}); "
            "bad = [r.pk for r in rs.annotate(n=Count('movement__entries'), s=Sum('movement__entries__amount'))"
            "       if r.n < 2 or r.s != 0]; "
            "spent = Entry.objects.filter(movement__in=rs.values('movement'), amount__lt=0)"
            ".aggregate(s=Sum('amount'))['s']; "
            f"print(json.dumps({{'redemptions': rs.count(), 'unbalanced': bad, 'spent': -(spent or 0), "
            f"'stock': Reward.objects.get(pk={reward['id']}).stock}}))",
        )
        assert facts["unbalanced"] == []  # every redemption has its movement, and its entries balance
        assert facts["redemptions"] >= second["redeem"]  # and possibly some whose answer was lost
        assert facts["spent"] == 7 * facts["redemptions"]
        assert facts["stock"] == 5000 - facts["redemptions"]

        # The poll: close, seal, recount. One ballot per voter, and the counters equal the ballot rows.
        closed = srv.post(f"/api/v1/polls/{poll['id']}/close", token=admin)
        assert closed.status == 200, closed.body
        srv.manage("recount_poll", str(poll["id"]))
        results = srv.get(f"/api/v1/polls/{poll['id']}/results", token=admin).json()
        rows = _shell(
            srv,
            "import json; from votes.models import Ballot; "
            f"print(json.dumps(Ballot.objects.filter(poll_id={poll['id']}).count()))",
        )
        assert results["total_ballots"] == rows == VOTERS
        assert sum(o["votes"] for o in results["options"]) == 2 * VOTERS

        # The election: every voter on the roll has exactly one ballot, and the recount agrees.
        closed = srv.post(f"/api/v1/elections/{election['id']}/close", token=admin)
        assert closed.status == 200, closed.body
        result = closed.json()
        assert result["voted"] == result["eligible"] == VOTERS
        by_id = {c["id"]: c for c in result["candidates"]}
        assert by_id[a]["for"] == VOTERS and by_id[b]["against"] == VOTERS
        srv.manage("recount_election", str(election["id"]))
        print(
            f"\nkilled mid-ballots after {first} answered; mid-redemptions after {second} answered; "
            f"stored {facts['redemptions']} redemptions, {rows} poll ballots, {result['voted']} election ballots"
        )
