"""Roster import of a 100,000-row .xlsx: in-process and end to end over the API.

    .venv/bin/python bench/import_roster.py --db sqlite
    .venv/bin/python bench/import_roster.py --db postgres
    .venv/bin/python bench/import_roster.py --db both --http      # also POST it through the API

(a) in-process: a fresh migrated database with a small demo seed; the roster goes to one
    grassroots (enterprise) union; read_sheet and import_rows are timed separately, and
    import_rows is split into validation (until the first progress call) and storing.
(b) --http: gunicorn + `manage.py db_worker` on the same fresh database kind; POST the file
    to /api/v1/orgs/{id}/members/import as the district admin, expect 202, poll status_url
    until done. Time = upload to done.
Target: under 30 s for 100k rows on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

TARGET_S = 30.0
SEED_MEMBERS = 200
HEADER = ["姓名", "手机号", "身份证号", "性别", "入会日期", "工作单位"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉鹏"


def _check_digit(first17: str) -> str:
    from core.idcard import check_digit

    return check_digit(first17)


def roster_path(rows: int) -> Path:
    return harness.OUT / f"roster-{rows}.xlsx"


def make_roster(rows: int) -> Path:
    """A valid roster: unique ID numbers (region 510112, distinct birth date+sequence) and phones."""
    import xlsxwriter

    path = roster_path(rows)
    if path.exists():
        return path
    harness.OUT.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    tmp = path.with_suffix(f".tmp{os.getpid()}.xlsx")
    wb = xlsxwriter.Workbook(str(tmp), {"constant_memory": True})
    ws = wb.add_worksheet("会员名册")
    ws.write_row(0, 0, HEADER)
    base = dt.date(1975, 1, 1)
    joined = dt.date(2015, 3, 1)
    for i in range(rows):
        birth = base + dt.timedelta(days=i // 900)
        first17 = f"510112{birth:%Y%m%d}{100 + i % 900:03d}"
        id_number = first17 + _check_digit(first17)
        gender = "男" if int(first17[16]) % 2 else "女"
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i // 7) % len(GIVEN)] + GIVEN[(i // 131) % len(GIVEN)]
        phone = f"1990{i:07d}"
        ws.write_row(
            i + 1,
            0,
            [
                name,
                phone,
                id_number,
                gender,
                (joined + dt.timedelta(days=i % 3000)).isoformat(),
                f"成华机械厂{i % 40}车间",
            ],
        )
    wb.close()
    tmp.rename(path)
    harness.log(f"wrote {path} ({rows} rows, {path.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - t:.1f} s")
    return path


# --- (a) in-process: runs in a child process with the bench database's environment -----------


def _inproc_child(path: str, profile: str) -> None:
    import django

    django.setup()
    from django.db import connection

    from members.importing import import_rows, read_sheet
    from orgs.models import Org, OrgKind

    org = Org.objects.filter(kind=OrgKind.ENTERPRISE, is_active=True).order_by("path").first()
    assert org is not None, "seed has no grassroots union"
    marks: dict[str, float] = {}

    def progress(done: int, total: int) -> None:
        marks.setdefault("validated", time.perf_counter())

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        rows = read_sheet(f, Path(path).name)
    t1 = time.perf_counter()
    result = import_rows(org, rows, dry_run=False, progress=progress)
    t2 = time.perf_counter()
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    validated = marks.get("validated", t2)
    out = {
        "org_id": org.pk,
        "org_kind": org.kind,
        "vendor": connection.vendor,
        "rows": len(rows) - 1,
        "read_s": t1 - t0,
        "import_s": t2 - t1,
        "validate_s": validated - t1,
        "store_s": t2 - validated,
        "total_s": t2 - t0,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "errors": len(result.errors),
        "first_errors": [e.as_dict() for e in result.errors[:3]],
    }
    print("RESULT " + json.dumps(out, ensure_ascii=False))


def run_inproc(db: harness.Database, path: Path, profile: bool) -> dict:
    harness.migrate(db.env)
    harness.seed_demo(db.env, SEED_MEMBERS)
    prof_path = str(harness.OUT / f"import-{db.kind}.prof") if profile else ""
    env = {**db.env, "PYTHONPATH": str(harness.ROOT)}
    proc = subprocess.run(
        [str(harness.PYTHON), __file__, "--child", str(path), "--child-profile", prof_path],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"in-process import failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    res = json.loads(line[len("RESULT ") :])
    if prof_path:
        res["profile"] = prof_path
    return res


# --- (b) over HTTP ----------------------------------------------------------------------------


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def run_http(db: harness.Database, path: Path, workers: int, max_wait: float) -> dict:
    import urllib.request

    harness.migrate(db.env)
    creds = harness.seed_demo(db.env, SEED_MEMBERS)
    admin = creds["district_admin"]
    with harness.Server(db.env, workers=workers, with_db_worker=True) as srv:
        token = harness.fetch_tokens(srv.url, [admin["phone"]], creds["password"])[0]
        # A grassroots union under the federation: walk down the tree until an enterprise union.
        org_id, kind = admin["org_id"], ""
        for _ in range(6):
            status, body = harness.http_json("GET", f"{srv.url}/api/v1/orgs/{org_id}/children", token=token)
            items = body.get("items", []) if status == 200 else []
            if not items:
                break
            pick = next((o for o in items if o["kind"] == "enterprise"), items[0])
            org_id, kind = pick["id"], pick["kind"]
            if kind == "enterprise":
                break
        data, ctype = _multipart(path)
        req = urllib.request.Request(
            f"{srv.url}/api/v1/orgs/{org_id}/members/import",
            data=data,
            method="POST",
            headers={"Content-Type": ctype, "Authorization": f"Bearer {token}"},
        )
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=300) as r:
            status, body = r.status, json.loads(r.read())
        t_accepted = time.monotonic() - t0
        job = {"status": "done", **body} if status == 200 else {}  # up to 5,000 rows: answered at once
        if status not in (200, 202):
            raise RuntimeError(f"expected 202, got {status}: {str(body)[:500]}")
        deadline = t0 + max_wait
        while status == 202 and time.monotonic() < deadline:
            code, job = harness.http_json("GET", srv.url + body["status_url"], token=token)
            if code == 200 and job.get("status") in ("done", "failed"):
                break
            time.sleep(0.5)
        total = time.monotonic() - t0
    return {
        "org_id": org_id,
        "org_kind": kind,
        "accepted_s": t_accepted,
        "total_s": total,
        "status": job.get("status", "timeout"),
        "created": job.get("created"),
        "errors": len(job.get("errors") or []),
        "failure": job.get("failure", ""),
        "gunicorn_workers": workers,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--http", action="store_true", help="also import end to end through the API (202 + polling)")
    p.add_argument("--no-inproc", action="store_true", help="skip the in-process measurement")
    p.add_argument("--profile", action="store_true", help="cProfile the in-process import (bench/out/*.prof)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers for --http")
    p.add_argument("--max-wait", type=float, default=900, help="give up polling after this many seconds")
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-profile", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _inproc_child(args.child, args.child_profile)
        return 0
    if not 1 <= args.rows <= 500_000:
        p.error("--rows must be 1..500000")

    m = harness.machine()  # per-run facts; rows re-read date and commit
    path = make_roster(args.rows)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        if not args.no_inproc:
            with harness.database(kind) as db:
                res = run_inproc(db, path, args.profile)
            verdict = "meets" if res["total_s"] < TARGET_S else "MISSES"
            print(
                f"\n== {db.label} in-process, {res['rows']} rows into org {res['org_id']} ({res['org_kind']})\n"
                f"read_sheet {res['read_s']:.1f} s · import_rows {res['import_s']:.1f} s "
                f"(validate {res['validate_s']:.1f} s + store {res['store_s']:.1f} s) · "
                f"total {res['total_s']:.1f} s ({verdict} target {TARGET_S:.0f} s)\n"
                f"created {res['created']}, updated {res['updated']}, unchanged {res['unchanged']}, "
                f"errors {res['errors']} {res['first_errors'] or ''}"
            )
            if res.get("profile"):
                print(f"profile: {res['profile']} (python -m pstats)")
            if not args.no_record:
                harness.append_result(
                    db.label,
                    f"import_roster in-process ({res['rows']:,} rows)",
                    f"**total {res['total_s']:.1f} s** ({verdict} <{TARGET_S:.0f} s): read_sheet {res['read_s']:.1f} s, "
                    f"validate {res['validate_s']:.1f} s, store {res['store_s']:.1f} s; "
                    f"created {res['created']}, errors {res['errors']}",
                    f"members.importing read_sheet + import_rows in one process{' (cProfile on)' if args.profile else ''}; "
                    f"seed {SEED_MEMBERS} members; org kind {res['org_kind']}",
                    m,
                )
        if args.http:
            with harness.database(kind) as db:
                res = run_http(db, path, args.workers, args.max_wait)
            verdict = "meets" if res["status"] == "done" and res["total_s"] < TARGET_S else "MISSES"
            print(
                f"\n== {db.label} over HTTP: 202 after {res['accepted_s']:.1f} s, {res['status']} after "
                f"{res['total_s']:.1f} s ({verdict} target {TARGET_S:.0f} s); created {res['created']}, "
                f"errors {res['errors']} {res['failure']}"
            )
            if not args.no_record:
                harness.append_result(
                    db.label,
                    f"import_roster HTTP ({args.rows:,} rows)",
                    f"**upload→done {res['total_s']:.1f} s** ({verdict} <{TARGET_S:.0f} s; status {res['status']}); "
                    f"202 after {res['accepted_s']:.1f} s; created {res['created']}, errors {res['errors']}",
                    f"gunicorn {res['gunicorn_workers']} sync workers + 1 db_worker; POST multipart, poll 0.5 s",
                    m,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
