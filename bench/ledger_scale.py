"""The points ledger at the seed platform's scale: reconciliation time and a member's history page.

    .venv/bin/python bench/ledger_scale.py --db postgres                  # 10M entries, 165k members
    .venv/bin/python bench/ledger_scale.py --db sqlite --entries 1000000  # smaller, on SQLite

After migrate + a small seed_demo, the ledger is generated in SQL (INSERT … SELECT over
generate_series on PostgreSQL, a recursive CTE on SQLite), balanced like the app writes it:
`--members` bench users (default 165,000) each with a member account; one mint movement
(issuance → the federation's budget) for the total; then entries/2 grant movements, each
budget → one member with two entries (amount 1..20). Every `--heavy-every`-th movement
(default 1,000) goes to one seeded, certified member, who so has entries/2/heavy-every
entries (5,000 at 10M). The entry indexes are dropped during the load and rebuilt after it;
stored balances are then set by one UPDATE … FROM (SELECT account_id, SUM(amount) …), and
the tables ANALYZEd. Then:
- `manage.py reconcile_points` wall time (target < 60 s on PostgreSQL), and its verdict;
- GET /api/v1/me/points (page 1) as the heavy member over HTTP against gunicorn: wrk at 1
  connection (service time) and at 8, p50/p99 (target < 50 ms); an average member too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

TARGET_RECONCILE_S = 60.0
TARGET_HISTORY_MS = 50.0

_PICK = """
import json
from members.models import Member
from orgs.models import Org
from points.services import ledger
root = Org.objects.get(pk={root_id})
ids = list(Member.objects.filter(certified_at__isnull=False).order_by("user_id").values_list("user_id", flat=True)[:2])
from accounts.models import User
accts = [ledger.member_account(User.objects.get(pk=i)).pk for i in ids]
print("PICK " + json.dumps({{"heavy_user": ids[0], "heavy_account": accts[0], "avg_user": ids[1],
    "avg_account": accts[1], "budget": ledger.budget_account(root).pk,
    "issuance": ledger.issuance_account().pk, "root": root.pk}}))
"""


class Loader:
    """The few statements that differ between PostgreSQL and SQLite."""

    def __init__(self, db: harness.Database):
        self.kind = db.kind
        if db.kind == "postgres":
            import psycopg

            self.conn = psycopg.connect(db.url, autocommit=True)
            with contextlib.suppress(Exception):  # skip FK triggers during the load if we may
                self.conn.execute("SET session_replication_role = replica")
        else:
            self.conn = sqlite3.connect(db.env["SQLITE_PATH"], isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=OFF")

    def run(self, sql: str) -> None:
        self.conn.execute(sql)  # no parameters: psycopg leaves a literal % alone

    def one(self, sql: str):
        return self.conn.execute(sql).fetchone()

    def series(self, n: str) -> str:
        """A FROM-clause source of g = 1..n."""
        if self.kind == "postgres":
            return f"generate_series(1, {n}) AS g"
        return f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) SELECT g FROM s) AS t"

    def ts(self, expr: str) -> str:
        """A timestamp `expr` seconds before now."""
        if self.kind == "postgres":
            return f"now() - ({expr}) * interval '1 second'"
        return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({expr}) || ' seconds')"

    def entry_indexes(self) -> list[tuple[str, str]]:
        if self.kind == "postgres":
            rows = self.conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'points_entry' "
                "AND indexname NOT LIKE '%pkey'"
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'points_entry' AND sql IS NOT NULL"
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def close(self) -> None:
        self.conn.close()


def generate(db: harness.Database, pick: dict, *, members: int, movements: int, heavy_every: int) -> dict:
    """Users, member accounts, a mint and `movements` grants with two entries each; balances set."""
    L = Loader(db)
    t0 = time.monotonic()
    blob = "'\\x00'::bytea" if L.kind == "postgres" else "X'00'"
    L.run(
        f"INSERT INTO accounts_user (password, name, phone_enc, phone_hash, is_active, date_joined) "
        f"SELECT '!bench', 'bench' || g, {blob}, 'bench-' || g, true, {L.ts('0')} FROM {L.series(str(members))}"
    )
    L.run(
        "INSERT INTO points_account (kind, user_id, balance) "
        "SELECT 'member', id, 0 FROM accounts_user WHERE password = '!bench'"
    )
    L.run("DROP TABLE IF EXISTS bench_acc")
    L.run(
        "CREATE TABLE bench_acc AS SELECT (row_number() OVER (ORDER BY a.id)) - 1 AS i, a.id AS id "
        "FROM points_account a JOIN accounts_user u ON u.id = a.user_id WHERE u.password = '!bench'"
    )
    L.run("CREATE UNIQUE INDEX bench_acc_i ON bench_acc (i)")
    n_acc = L.one("SELECT count(*) FROM bench_acc")[0]
    harness.log(f"{members} users and {n_acc} member accounts in {time.monotonic() - t0:.1f} s")

    total = sum(1 + g % 20 for g in range(1, movements + 1))
    base_mv = L.one("SELECT COALESCE(max(id), 0) FROM points_movement")[0] + 1
    L.run(
        f"INSERT INTO points_movement (id, kind, reason, org_id, source, created_at) "
        f"VALUES ({base_mv}, 'mint', 'bench: ledger scale', {pick['root']}, '', {L.ts(str(movements + 10))})"
    )
    L.run(
        f"INSERT INTO points_entry (movement_id, account_id, amount, created_at) VALUES "
        f"({base_mv}, {pick['issuance']}, {-total}, {L.ts(str(movements + 10))}), "
        f"({base_mv}, {pick['budget']}, {total}, {L.ts(str(movements + 10))})"
    )
    indexes = L.entry_indexes()
    for name, _ in indexes:
        L.run(f'DROP INDEX "{name}"')
    harness.log(f"dropped {len(indexes)} entry indexes for the load")

    t1 = time.monotonic()
    batch = 1_000_000
    for lo in range(0, movements, batch):
        n = min(batch, movements - lo)
        t = time.monotonic()
        L.run(
            f"INSERT INTO points_movement (id, kind, reason, org_id, source, created_at) "
            f"SELECT {base_mv + lo} + g, 'grant', 'bench: 活动奖励', {pick['root']}, 'bench', "
            f"{L.ts(f'{movements - lo} - g')} FROM {L.series(str(n))}"
        )
        # entries: budget debit and member credit for each movement, adjacent ids
        L.run(
            f"INSERT INTO points_entry (movement_id, account_id, amount, created_at) "
            f"SELECT {base_mv + lo} + g, CASE WHEN side = 0 THEN {pick['budget']} "
            f"WHEN ({lo} + g) % {heavy_every} = 0 THEN {pick['heavy_account']} ELSE a.id END, "
            f"CASE WHEN side = 0 THEN -(1 + ({lo} + g) % 20) ELSE 1 + ({lo} + g) % 20 END, "
            f"{L.ts(f'{movements - lo} - g')} "
            f"FROM {L.series(str(n))} CROSS JOIN (SELECT 0 AS side UNION ALL SELECT 1) sides "
            f"JOIN bench_acc a ON a.i = ({lo} + g) % {n_acc} ORDER BY g, side"
        )
        harness.log(f"movements {lo + n:,}/{movements:,} ({time.monotonic() - t:.1f} s)")
    load_s = time.monotonic() - t1
    t = time.monotonic()
    for _name, sql in indexes:
        L.run(sql)
    index_s = time.monotonic() - t
    harness.log(f"rebuilt entry indexes in {index_s:.1f} s")
    if L.kind == "postgres":
        L.run("SELECT setval(pg_get_serial_sequence('points_movement', 'id'), (SELECT max(id) FROM points_movement))")
    t = time.monotonic()
    L.run(
        "UPDATE points_account SET balance = s.total FROM "
        "(SELECT account_id, SUM(amount) AS total FROM points_entry GROUP BY account_id) AS s "
        "WHERE points_account.id = s.account_id AND points_account.balance <> s.total"
    )
    balance_s = time.monotonic() - t
    # the "average" member: a bench user like 165k others
    pick["avg_user"], pick["avg_account"] = L.one(
        "SELECT a.user_id, a.id FROM points_account a JOIN bench_acc b ON b.id = a.id WHERE b.i = 1"
    )
    L.run("DROP TABLE bench_acc")
    L.run("ANALYZE")
    entries = L.one("SELECT count(*) FROM points_entry")[0]
    heavy = L.one(f"SELECT count(*) FROM points_entry WHERE account_id = {pick['heavy_account']}")[0]
    avg = L.one(f"SELECT count(*) FROM points_entry WHERE account_id = {pick['avg_account']}")[0]
    accounts = L.one("SELECT count(*) FROM points_account")[0]
    L.close()
    gen_s = time.monotonic() - t0
    harness.log(
        f"generated {entries:,} entries in {gen_s:.0f} s (load {load_s:.0f} s, indexes {index_s:.0f} s, "
        f"balances {balance_s:.0f} s); heavy member {heavy} entries"
    )
    return {"entries": entries, "heavy_entries": heavy, "avg_entries": avg, "accounts": accounts, "gen_s": gen_s}


def time_reconcile(env: dict) -> tuple[float, int, str]:
    t = time.monotonic()
    proc = subprocess.run(
        [str(harness.PYTHON), "manage.py", "reconcile_points"],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    took = time.monotonic() - t
    last = (proc.stdout.strip().splitlines() or [""])[-1] + (proc.stderr.strip()[-300:] if proc.returncode else "")
    return took, proc.returncode, last


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    p.add_argument("--entries", type=int, default=10_000_000, help="member-grant entries (2 per movement)")
    p.add_argument("--members", type=int, default=165_000, help="bench member accounts")
    p.add_argument("--heavy-every", type=int, default=1_000, help="every n-th movement goes to the heavy member")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run of the history page")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    if not 2 <= args.entries <= 50_000_000 or not 2 <= args.members <= 1_000_000 or not 1 <= args.duration <= 60:
        p.error("entries 2..50M, members 2..1M, duration 1..60 s")

    m = harness.machine()
    harness.log(f"machine: {harness.machine_str(m)}; db={args.db}; entries={args.entries:,}")
    with harness.database(args.db) as db:
        harness.migrate(db.env)
        creds = harness.seed_demo(db.env, 200)
        out = harness.django_shell(db.env, _PICK.format(root_id=creds["district_admin"]["org_id"]))
        pick = json.loads(next(ln for ln in out.splitlines() if ln.startswith("PICK "))[5:])
        facts = generate(db, pick, members=args.members, movements=args.entries // 2, heavy_every=args.heavy_every)
        rec_s, rec_rc, rec_out = time_reconcile(db.env)
        harness.log(f"reconcile_points: {rec_s:.1f} s, exit {rec_rc}: {rec_out}")
        tokens = harness.issue_tokens(db.env, [pick["heavy_user"], pick["avg_user"]])
        with harness.Server(db.env, workers=args.workers) as srv:
            url = srv.url + "/api/v1/me/points"
            heavy_lua = harness.write_token_lua(tokens[:1], harness.OUT / "ledger-heavy.lua")
            avg_lua = harness.write_token_lua(tokens[1:], harness.OUT / "ledger-avg.lua")
            status, body = harness.http_json("GET", url, token=tokens[0])
            assert status == 200 and body["count"] == facts["heavy_entries"], (status, str(body)[:300])
            harness.warm_up(url, heavy_lua)
            kw = {"threads": 1, "duration": args.duration}
            h1 = harness.run_wrk(url, lua=heavy_lua, connections=1, **kw)
            h8 = harness.run_wrk(url, lua=heavy_lua, connections=8, **kw)
            a1 = harness.run_wrk(url, lua=avg_lua, connections=1, **kw)

    def lat(r: dict) -> str:
        return f"p50 {r.get('p50', 0):.1f} / p99 {r.get('p99', 0):.1f} ms ({r['requests']} req, {r['rps']:.0f} req/s)"

    rec_ok = rec_rc == 0
    rec_verdict = "meets" if rec_ok and rec_s < TARGET_RECONCILE_S else "MISSES"
    hist_verdict = "meets" if h1.get("p99", 1e9) < TARGET_HISTORY_MS else "MISSES"
    print(
        f"\n== {db.label}: {facts['entries']:,} entries, {facts['accounts']:,} accounts (generated in {facts['gen_s']:.0f} s)"
    )
    print(f"reconcile_points: {rec_s:.1f} s, exit {rec_rc} ({rec_verdict} < {TARGET_RECONCILE_S:.0f} s): {rec_out}")
    print(f"GET /api/v1/me/points, heavy member ({facts['heavy_entries']} entries), 1 conn: {lat(h1)}")
    print(f"  same, 8 connections: {lat(h8)}")
    print(
        f"  average member ({facts['avg_entries']} entries), 1 conn: {lat(a1)}  ({hist_verdict} < {TARGET_HISTORY_MS:.0f} ms)"
    )
    if not args.no_record:
        errors = sum(r["non2xx"] + r["socket_errors"] for r in (h1, h8, a1))
        figures = (
            f"{facts['entries']:,} entries / {facts['accounts']:,} accounts; **reconcile_points {rec_s:.1f} s** "
            f"(exit {rec_rc}; {rec_verdict} <{TARGET_RECONCILE_S:.0f} s); "
            f"**/me/points page 1, member with {facts['heavy_entries']} entries: {lat(h1)}** at 1 conn, "
            f"{lat(h8)} at 8 conn; member with {facts['avg_entries']} entries {lat(a1)} ({hist_verdict} <{TARGET_HISTORY_MS:.0f} ms)"
        )
        config = (
            f"gunicorn {args.workers} sync workers; wrk -t1 -c1/-c8 -d{args.duration}s; ledger generated in SQL "
            f"({facts['gen_s']:.0f} s), entry indexes rebuilt after load; seed 200 members + {args.members} bench users; "
            f"errors {errors}"
        )
        harness.append_result(db.label, "ledger_scale (reconcile + history)", figures, config, m)
    return 0 if rec_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
