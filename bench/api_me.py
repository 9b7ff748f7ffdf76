"""GET /api/v1/health vs GET /api/v1/me under load, on one production server, in one run.

    .venv/bin/python bench/api_me.py --db sqlite
    .venv/bin/python bench/api_me.py --db postgres --workers 3

/health touches no database (the no-op ceiling); /me authenticates a bearer token and reads
the caller's account, membership, org and roles. The ratio me/health says how much of the
ceiling a real authenticated read keeps (target >= 0.6). Tokens rotate per request.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

TARGET = 0.6


def fmt(res: dict) -> str:
    return f"{res['rps']:.0f} req/s, p50 {res.get('p50', 0):.1f} / p90 {res.get('p90', 0):.1f} / p99 {res.get('p99', 0):.1f} ms"


def _median_round(rounds: list[dict]) -> dict:
    """The round with the median throughput (its own latencies), plus every round's req/s."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    res = dict(ordered[len(ordered) // 2])
    res["all_rps"] = [round(r["rps"]) for r in rounds]
    res["non2xx"] = sum(r["non2xx"] for r in rounds)
    res["socket_errors"] = sum(r["socket_errors"] for r in rounds)
    return res


def bench_server(
    env: dict, tokens: list[str], *, workers: int, threads: int, args: argparse.Namespace
) -> tuple[dict, dict, harness.Server]:
    """Interleave health and /me rounds on one server, so a noisy neighbour hits both alike."""
    with harness.Server(env, workers=workers, threads=threads) as srv:
        lua = harness.write_token_lua(tokens)
        health_url, me_url = srv.url + "/api/v1/health", srv.url + "/api/v1/me"
        harness.warm_up(health_url)
        harness.warm_up(me_url, lua)
        kw = {"threads": args.wrk_threads, "connections": args.connections, "duration": args.duration}
        h_rounds, m_rounds = [], []
        for _ in range(args.rounds):
            h_rounds.append(harness.run_wrk(health_url, **kw))
            m_rounds.append(harness.run_wrk(me_url, lua=lua, **kw))
        health, me = _median_round(h_rounds), _median_round(m_rounds)
        for name, res in (("health", health), ("me", me)):
            if res["non2xx"] or res["socket_errors"]:
                harness.log(f"WARNING {name}: {res['non2xx']} non-2xx, {res['socket_errors']} socket errors")
    return health, me, srv


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--members", type=int, default=20_000, help="seed_demo --members (default 20000)")
    p.add_argument("--duration", type=int, default=10, help="seconds per endpoint per round (default 10)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved health/me rounds; the median is kept")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (it shares the CPUs with the server)")
    p.add_argument("--workers", default="3", help="gunicorn workers; a comma list tries each (e.g. 2,3,4)")
    p.add_argument("--threads", type=int, default=1, help="threads per worker (>1 = gthread)")
    p.add_argument("--tokens", type=int, default=64, help="distinct users whose tokens rotate (default 64)")
    p.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 300 or not 1 <= args.connections <= 512 or not 1 <= args.rounds <= 9:
        p.error("duration must be 1..300 s, connections 1..512, rounds 1..9")

    m = harness.machine()
    harness.log(f"machine: {harness.machine_str(m)}; db={args.db}; members={args.members}")
    with harness.database(args.db) as db:
        harness.migrate(db.env)
        creds = harness.seed_demo(db.env, args.members)
        with harness.Server(db.env, workers=2) as srv:  # tokens are rows: fetched once, reused by every config
            tokens = harness.fetch_tokens(srv.url, harness.token_users(creds, args.tokens))
        for workers in [int(w) for w in str(args.workers).split(",")]:
            health, me, srv = bench_server(db.env, tokens, workers=workers, threads=args.threads, args=args)
            ratio = me["rps"] / health["rps"] if health["rps"] else 0.0
            verdict = "meets" if ratio >= TARGET else "MISSES"
            print(f"\n== {db.label}, {srv.describe()}, {health['wrk']} (wrk shares the {m['nproc']} CPUs)")
            print(f"GET /api/v1/health : {fmt(health)}  (rounds {health['all_rps']})")
            print(f"GET /api/v1/me     : {fmt(me)}  (rounds {me['all_rps']})")
            print(f"ratio me/health    : {ratio:.2f} ({verdict} target {TARGET})")
            if not args.no_record:
                figures = (
                    f"health {health['rps']:.0f} req/s (p99 {health.get('p99', 0):.1f}); "
                    f"me {me['rps']:.0f} req/s (p99 {me.get('p99', 0):.1f}); "
                    f"rounds health {health['all_rps']} me {me['all_rps']}; "
                    f"**ratio {ratio:.2f}** ({verdict} ≥{TARGET})"
                )
                errors = me["non2xx"] + me["socket_errors"] + health["non2xx"] + health["socket_errors"]
                config = (
                    f"{srv.describe()}; {health['wrk']} ×{args.rounds} interleaved, median; {args.tokens} rotating tokens; "
                    f"seed {args.members} members; errors {errors}"
                )
                harness.append_result(db.label, "api_me (health vs /me)", figures, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
