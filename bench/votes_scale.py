"""Polls at scale: 1.6M ballots of 417k voters, then time results, the monitor, a void, the seal
and a recount (SQLite and PostgreSQL).

    .venv/bin/python bench/votes_scale.py --db sqlite
    .venv/bin/python bench/votes_scale.py --db postgres
    .venv/bin/python bench/votes_scale.py --db sqlite --keep     # keep the database, print its env

A fresh database (bench.harness.database), migrated; then, in one Django process on it:
- 417,000 voters (accounts, bulk-inserted), one federation org and its admin;
- a poll opened 14 days ago, 12 candidates, one ballot a day, eligibility everyone;
- 1,600,000 ballots in SQL (COPY on PostgreSQL): each voter votes on a few of the 14 days at
  hours weighted like a real day, from their usual network (a /24 of ~20,000) or a carrier NAT
  (200 busy /24s), on their device; and three brushing clusters of new accounts voting for one
  candidate within an hour or two from one /24 and a handful of devices;
- counters and 10-minute buckets written to agree with the ballots (as the hot path keeps them).
Timed: `results` (counters), `monitor` (whole poll and last 24 h), `void_ballots` of a cluster,
`seal` (close) and `recount`. Targets: monitor < 500 ms, recount well under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(ballots: int, voters: int, seed: int) -> dict:
    import datetime as dt
    import random

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from core import bulk
    from orgs.models import CadreRole, Org
    from votes.models import COUNTER_SHARDS, Ballot, BallotBucket, Option, OptionCount, Poll
    from votes.services import monitor as monitor_svc
    from votes.services import polls
    from votes.services.receipts import ALPHABET

    rng = random.Random(seed)
    timings: dict[str, float] = {}

    def timed(name: str, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        timings[name] = round(time.perf_counter() - t, 3)
        print(f"  {name}: {timings[name]:.3f} s", file=sys.stderr, flush=True)
        return out

    now = timezone.now()
    opens = now - dt.timedelta(days=14)
    t0 = time.perf_counter()
    root = Org.objects.add_root({"name": "规模测试总工会", "kind": "federation"})
    admin = User.objects.create_user("13900000000", name="管理员")
    CadreRole.objects.create(user=admin, org=root, role="admin")

    # Voters: the last 15k are brushing accounts created after the poll opened.
    brushers = 15_000
    joined_old = bulk.db_datetime(opens - dt.timedelta(days=400))
    rows = []
    for i in range(voters):
        joined = (
            joined_old if i < voters - brushers else bulk.db_datetime(opens + dt.timedelta(days=10, minutes=i % 600))
        )
        rows.append((f"v{i}", b"", f"bench-{i}", "!", True, joined))
    with transaction.atomic():
        bulk.insert(User, ["name", "phone_enc", "phone_hash", "password", "is_active", "date_joined"], rows)
    del rows
    first_voter = User.objects.filter(phone_hash="bench-0").values_list("pk", flat=True).get()
    voter_ids = range(first_voter, first_voter + voters)  # inserted in order
    print(f"  voters: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    poll = Poll.objects.create(
        org=root,
        title="规模测试：最有故事的好职工",
        max_choices=1,
        ballots_per_day=1,
        eligibility="everyone",
        opens_at=opens,
        closes_at=now + dt.timedelta(days=1),
        created_by=admin,
    )
    options = Option.objects.bulk_create([Option(poll=poll, title=f"候选人{i + 1}", position=i) for i in range(12)])
    option_ids = [o.pk for o in options]
    OptionCount.objects.bulk_create([OptionCount(option=o, shard=s) for o in options for s in range(COUNTER_SHARDS)])

    hour_weights = [1, 0.5, 0.3, 0.2, 0.2, 0.5, 2, 5, 8, 6, 5, 5, 8, 7, 5, 5, 5, 6, 7, 9, 10, 9, 6, 3]
    option_weights = [rng.paretovariate(1.5) for _ in option_ids]
    homes = [f"10.{i // 250}.{i % 250}.0/24" for i in range(20_000)]
    carriers = [f"117.136.{i}.0/24" for i in range(200)]
    home_w = [1 / (k + 1) ** 0.7 for k in range(len(homes))]
    normal = voters - brushers
    home_of = rng.choices(range(len(homes)), home_w, k=normal)
    clusters = [  # (first brusher index, size, prefix, devices, option index, day, hour)
        (0, 8000, "61.183.45.0/24", 6, 7, 11, 2),
        (8000, 4500, "113.104.9.0/24", 3, 9, 12, 23),
        (12500, 2500, "220.181.7.0/24", 2, 7, 13, 3),
    ]
    counts: dict[tuple[int, int], list[int]] = {}
    buckets: dict[tuple[int, dt.datetime], list[int]] = {}
    fields = [
        "poll_id",
        "voter_id",
        "day",
        "n",
        "choices",
        "receipt",
        "created_at",
        "ip",
        "ip_prefix",
        "device",
        "new_account",
    ]
    batch: list[tuple] = []
    made = 0
    seen_receipts: set[str] = set()

    def receipt() -> str:
        while True:
            r = "".join(rng.choices(ALPHABET, k=12))
            if r not in seen_receipts:
                seen_receipts.add(r)
                return r

    used: set[tuple[int, dt.date]] = set()

    def add(voter: int, day: int, when: dt.datetime, option_id: int, prefix: str, device: str, new: bool):
        nonlocal made
        ip = prefix.replace(".0/24", f".{rng.randrange(1, 255)}")
        local = timezone.localdate(when)
        if (voter, local) in used:  # one ballot a day
            return
        used.add((voter, local))
        batch.append(
            (
                poll.pk,
                voter,
                bulk.db_date(local),
                1,
                str(option_id),
                receipt(),
                bulk.db_datetime(when),
                ip,
                prefix,
                device,
                new,
            )
        )
        c = counts.setdefault((option_id, voter % COUNTER_SHARDS), [0, 0])
        c[0] += 1
        c[1] += 1
        b = dt.datetime.fromtimestamp(int(when.timestamp()) // 600 * 600, dt.UTC)
        k = buckets.setdefault((option_id, b), [0, 0, 0])
        k[0] += 1
        k[1] += 1
        k[2] += int(new)
        made += 1

    def flush():
        # In the order they were cast, as a real poll's table is.
        batch.sort(key=lambda r: r[6])
        for start in range(0, len(batch), 100_000):
            with transaction.atomic():
                bulk.insert(Ballot, fields, batch[start : start + 100_000])
        batch.clear()

    def at(day: int, hour: int) -> dt.datetime:
        base = timezone.localtime(opens).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=day)
        return base + dt.timedelta(hours=hour, seconds=rng.randrange(3600), microseconds=rng.randrange(10**6))

    t1 = time.perf_counter()
    brush_total = sum(c[1] for c in clusters)
    target_normal = ballots - brush_total
    # Each normal voter votes on a few distinct days (one ballot a day).
    per_voter = [1] * normal
    extra = target_normal - normal
    while extra > 0:
        i = rng.randrange(normal)
        if per_voter[i] < 14:
            per_voter[i] += 1
            extra -= 1
    last_day = (now - opens).days
    for v in range(normal):
        voter = voter_ids[v]
        device = f"{v * 2654435761 % 2**32:08x}dev"
        for day in rng.sample(range(last_day + 1), per_voter[v]):
            when = at(day, rng.choices(range(24), hour_weights)[0])
            if when >= now:
                when = now - dt.timedelta(seconds=rng.randrange(1, 3600))
                day = (timezone.localdate(when) - timezone.localdate(opens)).days
            prefix = homes[home_of[v]] if rng.random() < 0.7 else rng.choice(carriers)
            add(voter, day, when, rng.choices(option_ids, option_weights)[0], prefix, device, False)
    for start, size, prefix, devices, opt, day, hour in clusters:
        for j in range(size):
            voter = voter_ids[normal + start + j]
            when = at(day, hour) + dt.timedelta(seconds=j * 5400 // size - rng.randrange(3600))
            add(voter, day, when, option_ids[opt], prefix, f"brush{devices and j % devices}", True)
    flush()
    print(f"  ballots ({made}): {time.perf_counter() - t1:.1f} s", file=sys.stderr, flush=True)
    with transaction.atomic():
        for (option_id, shard), (votes, n) in counts.items():
            OptionCount.objects.filter(option_id=option_id, shard=shard).update(votes=votes, ballots=n)
        BallotBucket.objects.bulk_create(
            [
                BallotBucket(poll=poll, option_id=o, bucket=b, votes=v, ballots=n, new_accounts=na)
                for (o, b), (v, n, na) in buckets.items()
            ],
            batch_size=2000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    timings["load_s"] = round(time.perf_counter() - t0, 1)
    print(f"  loaded in {timings['load_s']} s", file=sys.stderr, flush=True)

    poll.refresh_from_db()
    res = timed("results_s", polls.results, poll)
    assert res["total_ballots"] == made, res
    timed("results_again_s", polls.results, poll)
    # A page opened before any roll-up spends its budget (0.3 s) and shows what is rolled up so far.
    timed("monitor_before_rollup_s", monitor_svc.monitor, poll)
    # What `close_polls` (cron, every minute) does; here the whole backlog of a bulk load at once.
    timed("rollup_backlog_s", monitor_svc.rollup, poll)
    mon = timed("monitor_s", monitor_svc.monitor, poll)
    timed("monitor_again_s", monitor_svc.monitor, poll)
    for h in (6, 24, 72, 168):
        timed(f"monitor_{h}h_s", monitor_svc.monitor, poll, hours=h)
    top = max(mon["clusters"]["prefixes"], key=lambda c: c["new_accounts"])  # the biggest brushing cluster
    batch_ = timed(
        "void_cluster_s",
        monitor_svc.void_ballots,
        admin,
        poll,
        reason="同一网段新注册账号集中刷票",
        ip_prefix=top["prefix"],
        new_accounts_only=True,
    )
    after = timed("results_after_void_s", polls.results, poll)
    assert after["total_ballots"] == made - batch_.ballots
    timed("monitor_after_void_s", monitor_svc.monitor, poll)
    Poll.objects.filter(pk=poll.pk).update(closes_at=timezone.now() - dt.timedelta(minutes=5))
    poll.refresh_from_db()
    timed("seal_s", polls.seal, poll)
    poll.refresh_from_db()
    rc = timed("recount_s", polls.recount, poll)
    assert rc.tally_matches and rc.chain_matches, rc
    return {
        "ballots": made,
        "voters": voters,
        "voided": batch_.ballots,
        "top_prefix": top,
        "bursts": len(mon["bursts"]),
        "new_account_share": mon["new_account_share"],
        "timings": timings,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--ballots", type=int, default=1_600_000)
    p.add_argument("--voters", type=int, default=417_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the database and print its environment")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args.ballots, args.voters, args.seed), ensure_ascii=False, default=str))
        return 0
    from bench import harness

    with harness.database(args.db, keep=args.keep) as db:
        # --skip-checks: only the models matter here, not the URL modules of the ends.
        harness.manage(db.env, "migrate", "--noinput", "-v0", "--skip-checks")
        cmd = [str(harness.PYTHON), __file__, "--child", "--ballots", str(args.ballots), "--voters", str(args.voters)]
        proc = subprocess.run(cmd + ["--seed", str(args.seed)], cwd=ROOT, env=db.env, capture_output=True, text=True)
        sys.stderr.write(proc.stderr[-6000:])
        if proc.returncode != 0:
            return proc.returncode
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
        result = json.loads(line[7:])
        print(f"== {db.label}: {json.dumps(result, ensure_ascii=False, indent=1)}")
        if args.keep:
            print("env:", {k: db.env[k] for k in ("UNIONHOME_VAR_DIR", "SQLITE_PATH", "DATABASE_URL") if k in db.env})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
