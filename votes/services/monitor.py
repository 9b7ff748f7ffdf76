"""The anti-brushing monitor (刷票监测) and voiding ballots (作废).

The monitor reads counters, never a scan of the ballots where it can help it:
- ballots over time per option: the 10-minute BallotBucket rows, kept in each ballot's transaction;
- bursts: 10-minute buckets with far more ballots than the poll's median bucket;
- clusters: the networks (/24, /48) and devices with the most ballots, how many distinct voters and
  new accounts are behind them, how many were voided; from the ballots' (poll, ip_prefix, …) and
  (poll, device, …) covering indexes;
- the share of ballots from accounts created after the poll opened;
- attempts per address in the last hour (the rate counters count refused attempts too).

Voiding marks the chosen ballots with a VoidBatch (reason and criteria on record) and takes their
votes back out of the counters and buckets in the same transaction. Voided ballots stay in the
table and in the public receipts list, marked.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections import Counter, defaultdict

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Invalid

from ..models import COUNTER_SHARDS, Poll, VoidBatch
from . import ratelimit
from .ballots import BUCKET_SECONDS, aware, bucket_of
from .errors import VoteErrors
from .polls import require_admin
from .tally import is_closed

BURST_FACTOR = 5  # a bucket with 5× the median bucket's ballots…
BURST_MIN = 30  # …and at least this many is a burst
TOP = 10
MAX_VOID_IDS = 10_000


def _window(poll: Poll, hours: float | None) -> tuple[dt.datetime | None, dt.datetime]:
    end = min(timezone.now(), poll.closed_at or poll.closes_at)
    if hours is None:
        return None, end
    return end - dt.timedelta(hours=float(hours)), end


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _db_dt(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _series(poll: Poll, since: dt.datetime | None) -> dict:
    """Ballots per 10 minutes (and from new accounts), the bursts among them, and votes per option
    per 10 minutes (dense from the first bucket with ballots to the last: a chart's x axis is time)."""
    sql = (
        f"SELECT {_epoch('bucket')}, option_id, votes, ballots, new_accounts FROM votes_ballotbucket WHERE poll_id = %s"
    )
    params: list = [poll.pk]
    if since is not None:
        sql += " AND bucket >= %s"
        params.append(_db_dt(bucket_of(since)))
    rows = _rows(sql, params)
    options = list(poll.options.values_list("id", "title"))
    if not rows:
        return {"buckets": [], "ballots": [], "new_accounts": [], "options": [], "bursts": [], "median": 0}
    first = min(r[0] for r in rows)
    last = max(r[0] for r in rows)
    n = (last - first) // BUCKET_SECONDS + 1
    ballots = [0] * n
    new_accounts = [0] * n
    index = {oid: i for i, (oid, _t) in enumerate(options)}
    votes = [[0] * n for _ in options]
    per_bucket: dict[int, Counter] = defaultdict(Counter)
    for epoch, option_id, v, b, na in rows:
        i = (epoch - first) // BUCKET_SECONDS
        ballots[i] += b
        new_accounts[i] += na
        per_bucket[i][option_id] += v
        if option_id in index:
            votes[index[option_id]][i] += v
    nonzero = [b for b in ballots if b > 0]
    median = statistics.median(nonzero) if nonzero else 0

    tz = timezone.get_current_timezone()

    def local(i: int) -> str:
        return dt.datetime.fromtimestamp(first + i * BUCKET_SECONDS, tz).isoformat()

    bursts = []
    for i, count in enumerate(ballots):
        if count >= max(BURST_FACTOR * median, BURST_MIN):
            top_option, top_votes = per_bucket[i].most_common(1)[0]
            bursts.append(
                {
                    "bucket": local(i),
                    "ballots": count,
                    "new_accounts": new_accounts[i],
                    "times_median": round(count / median, 1) if median else None,
                    "top_option_id": top_option,
                    "top_option_votes": top_votes,
                }
            )
    return {
        "buckets": [local(i) for i in range(n)],
        "ballots": ballots,
        "new_accounts": new_accounts,
        "options": [{"id": oid, "title": title, "votes": votes[index[oid]]} for oid, title in options],
        "bursts": bursts,
        "median": median,
    }


ROLLUP_LAG = dt.timedelta(seconds=60)
HOUR_TOP = 20  # networks and devices kept per hour (ClusterHour)
REQUEST_ROLLUP_BUDGET = 0.2  # seconds a monitor page may spend rolling up a backlog (10 minutes of ballots at a time)
CANDIDATES = 15  # of a time window, counted exactly before the top 10 are picked


def _lock_poll_for_rollup(cursor, poll_id: int):
    """The poll row, locked against other roll-ups, voids and the seal but not against ballots
    (FOR NO KEY UPDATE does not conflict with the FOR KEY SHARE a ballot holds)."""
    lock = " FOR NO KEY UPDATE" if connection.vendor == "postgresql" else ""
    cursor.execute(
        f"SELECT rollup_until, closed_at, closes_at, seal_claimed_at FROM votes_poll WHERE id = %s{lock}", [poll_id]
    )
    return cursor.fetchone()


def _grouped(cursor, poll_id: int, column: str, lo: dt.datetime | None, hi: dt.datetime | None, distinct=False):
    # A time window is read through the (poll, created_at) index; SQLite would rather walk the whole
    # (poll, column) index to skip the GROUP BY sort, so its column is hidden from the planner ("+").
    col = f"+{column}" if lo is not None and connection.vendor == "sqlite" else column
    sql = (
        f"SELECT {column}, COUNT(*), SUM(CASE WHEN new_account THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN void_id IS NULL THEN 0 ELSE 1 END)"
        + (", COUNT(DISTINCT voter_id)" if distinct else "")
        + f" FROM votes_ballot WHERE poll_id = %s AND {col} <> ''"
    )
    params: list = [poll_id]
    if lo is not None:
        sql += " AND created_at >= %s"
        params.append(_db_dt(lo))
    if hi is not None:
        sql += " AND created_at < %s"
        params.append(_db_dt(hi))
    cursor.execute(sql + f" GROUP BY {col}", params)
    return cursor.fetchall()


def rollup(
    poll: Poll, *, lag: dt.timedelta = ROLLUP_LAG, budget: float | None = None, chunk: dt.timedelta | None = None
) -> int:
    """Add the ballots created since the last roll-up (up to `lag` ago) to the poll's cluster counts,
    an hour at a time (each its own transaction), and each hour's top networks and devices once it
    is over; returns how many ballots were added. With a `budget` (seconds) it goes 10 minutes of
    ballots at a time and stops after the piece that exhausts it: a page never waits for a long
    backlog, which `close_polls` (cron, every minute) works off.

    Ballots are taken by creation time: a ballot's created_at is taken inside its transaction just
    before its insert, so every ballot older than `lag` is committed."""
    deadline = time.monotonic() + budget if budget is not None else None
    hour = dt.timedelta(hours=1)
    chunk = chunk or (dt.timedelta(minutes=10) if budget is not None else hour)
    added = 0
    while True:
        end = timezone.now() - lag
        with transaction.atomic(), connection.cursor() as cursor:
            until = aware(_lock_poll_for_rollup(cursor, poll.pk)[0])
            if until is None:
                cursor.execute("SELECT MIN(created_at) FROM votes_ballot WHERE poll_id = %s", [poll.pk])
                first = aware(cursor.fetchone()[0])
                until = _hour(first.astimezone(dt.UTC)) if first is not None else end
            if end <= until:
                cursor.execute("UPDATE votes_poll SET rollup_until = %s WHERE id = %s", [_db_dt(until), poll.pk])
                return added
            hour_start = _hour(until.astimezone(dt.UTC))
            stop = min(end, hour_start + hour, until + chunk)
            for kind, column in (("prefix", "ip_prefix"), ("device", "device")):
                rows = _grouped(cursor, poll.pk, column, until, stop)
                if kind == "prefix":
                    added += sum(r[1] for r in rows)
                _add_counts(cursor, poll.pk, kind, rows)
                if stop == hour_start + hour:  # the hour is over: keep its top ones, counted whole
                    whole = rows if until == hour_start else _grouped(cursor, poll.pk, column, hour_start, stop)
                    whole.sort(key=lambda r: (-r[1], r[0]))
                    _add_hour(cursor, poll.pk, kind, hour_start, whole[:HOUR_TOP])
                else:  # a piece of the hour: its top ones added up, so a window need not count the hour live
                    rows.sort(key=lambda r: (-r[1], r[0]))
                    _add_hour(cursor, poll.pk, kind, hour_start, rows[:HOUR_TOP], add=True)
            cursor.execute("UPDATE votes_poll SET rollup_until = %s WHERE id = %s", [_db_dt(stop), poll.pk])
        if stop >= end or (deadline is not None and time.monotonic() > deadline):
            return added


_UPSERT_COUNTS = (
    " ON CONFLICT (poll_id, kind, value) DO UPDATE SET"
    " ballots = votes_clustercount.ballots + excluded.ballots,"
    " new_accounts = votes_clustercount.new_accounts + excluded.new_accounts,"
    " voided = votes_clustercount.voided + excluded.voided"
)


def _add_counts(cursor, poll_id: int, kind: str, rows: list) -> None:
    """Add grouped (value, ballots, new, voided) rows to the cluster counts: one row per device that
    voted, so as many rows as ballots at worst; sent as arrays (PostgreSQL) or executemany (SQLite)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        cursor.execute(
            "INSERT INTO votes_clustercount (poll_id, kind, value, ballots, new_accounts, voided)"
            " SELECT %s, %s, v, n, na, vd FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[]) AS t(v, n, na, vd)"
            + _UPSERT_COUNTS,
            [
                poll_id,
                kind,
                [r[0] for r in rows],
                [int(r[1]) for r in rows],
                [int(r[2] or 0) for r in rows],
                [int(r[3] or 0) for r in rows],
            ],
        )
        return
    cursor.executemany(
        "INSERT INTO votes_clustercount (poll_id, kind, value, ballots, new_accounts, voided)"
        " VALUES (%s, %s, %s, %s, %s, %s)" + _UPSERT_COUNTS,
        [(poll_id, kind, value, n, new or 0, voided or 0) for value, n, new, voided in rows],
    )


def _add_hour(cursor, poll_id: int, kind: str, hour: dt.datetime, top: list, *, add: bool = False) -> None:
    """An hour's top networks or devices: the whole hour's (replacing what its pieces added), or a
    piece's added to them. These are a time window's candidates, counted exactly afterwards."""
    if not top:
        return
    update = "votes_clusterhour.ballots + excluded.ballots" if add else "excluded.ballots"
    cursor.execute(
        "INSERT INTO votes_clusterhour (poll_id, kind, hour, value, ballots) VALUES "
        + ", ".join(["(%s, %s, %s, %s, %s)"] * len(top))
        + f" ON CONFLICT (poll_id, kind, hour, value) DO UPDATE SET ballots = {update}",
        [v for value, n, *_rest in top for v in (poll_id, kind, _db_dt(hour), value, n)],
    )


def _hour(value: dt.datetime) -> dt.datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _distinct_voters(cursor, poll_id: int, column: str, value: str) -> int:
    # A DISTINCT over the (poll, column, voter) index: read from the index alone, in voter order.
    cursor.execute(
        f"SELECT COUNT(*) FROM (SELECT DISTINCT voter_id FROM votes_ballot WHERE poll_id = %s AND {column} = %s) d",
        [poll_id, value],
    )
    return cursor.fetchone()[0]


def _clusters(poll: Poll, column: str, since: dt.datetime | None) -> list[dict]:
    """The TOP networks or devices by ballots: rolled-up counts plus the ballots since (whole poll),
    or a live count over the window (`since`)."""
    key, kind = ("prefix", "prefix") if column == "ip_prefix" else ("device", "device")
    with connection.cursor() as cursor:
        if since is not None:
            return _window_clusters(cursor, poll.pk, column, kind, key, since)
        cursor.execute("SELECT rollup_until FROM votes_poll WHERE id = %s", [poll.pk])
        until = aware(cursor.fetchone()[0])
        if until is not None and until < timezone.now() - ROLLUP_LAG - dt.timedelta(hours=1):
            until = None  # behind (the cron is catching up): the rolled-up counts only, no huge live tail
            caught_up = False
        else:
            caught_up = True
        merged: dict[str, list[int]] = {}
        cursor.execute(
            "SELECT value, ballots, new_accounts, voided FROM votes_clustercount WHERE poll_id = %s AND kind = %s"
            " ORDER BY ballots DESC LIMIT %s",
            [poll.pk, kind, TOP * 3],
        )
        for value, n, new, voided in cursor.fetchall():
            merged[value] = [n, new, voided]
        tail = _grouped(cursor, poll.pk, column, until, None) if until is not None and caught_up else []
        missing = [value for value, *_ in tail if value not in merged]
        for startat in range(0, len(missing), 500):
            part = missing[startat : startat + 500]
            cursor.execute(
                "SELECT value, ballots, new_accounts, voided FROM votes_clustercount WHERE poll_id = %s AND kind = %s"
                f" AND value IN ({', '.join(['%s'] * len(part))})",
                [poll.pk, kind, *part],
            )
            for value, n, new, voided in cursor.fetchall():
                merged[value] = [n, new, voided]
        for value, n, new, voided in tail:
            m = merged.setdefault(value, [0, 0, 0])
            m[0] += n
            m[1] += new or 0
            m[2] += voided or 0
        top = sorted(merged.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP]
        return [
            {
                key: value,
                "ballots": n,
                "voters": _distinct_voters(cursor, poll.pk, column, value),
                "new_accounts": new,
                "voided": voided,
            }
            for value, (n, new, voided) in top
            if n > 0
        ]


def _window_clusters(cursor, poll_id: int, column: str, kind: str, key: str, since: dt.datetime) -> list[dict]:
    """The top networks or devices since a time: candidates from the hourly top lists (the current
    hour's as far as it is rolled up) and a live count of the ballots not rolled up yet, then each
    candidate counted exactly from the ballots' (poll, column, created_at, voter) index. A network
    that was never among an hour's (or an hour's piece's) top 20 and is not in the live tail is not
    a candidate: the monitor looks for concentrations, not the tail."""
    cursor.execute("SELECT rollup_until FROM votes_poll WHERE id = %s", [poll_id])
    rolled = aware(cursor.fetchone()[0])
    approx: Counter[str] = Counter()
    if rolled is not None and rolled > since:
        cursor.execute(
            "SELECT value, SUM(ballots) FROM votes_clusterhour WHERE poll_id = %s AND kind = %s AND hour >= %s"
            " GROUP BY value ORDER BY 2 DESC LIMIT %s",
            [poll_id, kind, _db_dt(_hour(since.astimezone(dt.UTC))), CANDIDATES * 2],
        )
        approx.update(dict(cursor.fetchall()))
    live_from = max(since, rolled) if rolled is not None else since
    if live_from < timezone.now() - dt.timedelta(hours=2):
        live_from = max(since, timezone.now() - dt.timedelta(hours=1))  # behind: no huge live count
    for value, n, *_rest in _grouped(cursor, poll_id, column, live_from, None):
        approx[value] += n
    out = []
    for value, _n in approx.most_common(CANDIDATES):
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT voter_id), SUM(CASE WHEN new_account THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN void_id IS NULL THEN 0 ELSE 1 END)"
            f" FROM votes_ballot WHERE poll_id = %s AND {column} = %s AND created_at >= %s",
            [poll_id, value, _db_dt(since)],
        )
        n, voters, new, voided = cursor.fetchone()
        if n:
            out.append(
                {key: value, "ballots": n, "voters": voters, "new_accounts": int(new or 0), "voided": int(voided or 0)}
            )
    out.sort(key=lambda r: (-r["ballots"], r[key]))
    return out[:TOP]


def _attempts(poll: Poll) -> list[dict]:
    """Addresses with the most ballot attempts (refused ones too) in the last hour."""
    lo = ratelimit.ip_key_prefix(poll.pk)
    _lim, win = ratelimit.limit("IP")
    since = int(timezone.now().timestamp()) - max(win, 3600)
    rows = _rows(
        "SELECT key, SUM(hits) FROM votes_ratecount WHERE key >= %s AND key < %s AND window_start >= %s"
        " GROUP BY key ORDER BY 2 DESC, key LIMIT %s",
        [lo, lo + "\uffff", since, TOP],
    )
    return [{"ip": key[len(lo) :], "attempts": int(hits)} for key, hits in rows]


def monitor(poll: Poll, *, hours: float | None = None) -> dict:
    """Everything the monitor page shows, for the whole poll or its last `hours`."""
    since, end = _window(poll, hours)
    rollup(poll, budget=REQUEST_ROLLUP_BUDGET)
    rolled = aware(Poll.objects.filter(pk=poll.pk).values_list("rollup_until", flat=True).first())
    series = _series(poll, since)
    total = sum(series["ballots"])
    new = sum(series["new_accounts"])
    return {
        "poll_id": poll.pk,
        "since": timezone.localtime(since).isoformat() if since else None,
        "until": timezone.localtime(end).isoformat(),
        # The cluster lists hold every ballot up to now when the roll-up is current (within the hour);
        # else up to this time, while `close_polls` works off the backlog.
        "clusters_until": timezone.localtime(rolled).isoformat() if rolled else None,
        "series": {k: series[k] for k in ("buckets", "ballots", "new_accounts", "options")},
        "bursts": series["bursts"],
        "median_per_bucket": series["median"],
        "total_ballots": total,
        "new_account_ballots": new,
        "new_account_share": round(new / total, 4) if total else 0.0,
        "clusters": {
            "prefixes": _clusters(poll, "ip_prefix", since),
            "devices": _clusters(poll, "device", since),
        },
        "attempts": _attempts(poll),
        "voids": [
            {
                "id": v.pk,
                "reason": v.reason,
                "criteria": v.criteria,
                "ballots": v.ballots,
                "actor": v.actor.name,
                "created_at": timezone.localtime(v.created_at).isoformat(),
            }
            for v in poll.void_batches.select_related("actor").order_by("-id")
        ],
    }


# --- voiding -------------------------------------------------------------------------------------


def _when(value, field: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Invalid("invalid_time", _("时间格式无效"), fields={field: _("应为 ISO 8601 时间")}) from None
    if not isinstance(value, dt.datetime):
        raise Invalid("invalid_time", _("时间格式无效"), fields={field: _("应为 ISO 8601 时间")})
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def void_ballots(
    actor,
    poll: Poll,
    *,
    reason: object,
    ip_prefix: object = None,
    device: object = None,
    new_accounts_only: bool = False,
    start: object = None,
    end: object = None,
    ballot_ids: object = None,
    ip: str | None = None,
) -> VoidBatch:
    """Void the poll's not-yet-voided ballots that match every given criterion, with the reason on
    record; their votes leave the counters and buckets in the same transaction. Admin cadres of the
    poll, while it is not closed (a closed poll's tally is sealed)."""
    require_admin(actor, poll.org, _("只有该组织或上级组织的管理员可以作废选票"))
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > 500:
        raise Invalid(VoteErrors.REASON_REQUIRED, _("请填写作废原因"), fields={"reason": _("必填，不超过500字")})
    where, params, criteria = ["poll_id = %s", "void_id IS NULL"], [poll.pk], {}
    if ip_prefix:
        where.append("ip_prefix = %s")
        params.append(str(ip_prefix)[:64])
        criteria["ip_prefix"] = str(ip_prefix)[:64]
    if device:
        where.append("device = %s")
        params.append(str(device)[:64])
        criteria["device"] = str(device)[:64]
    start_at, end_at = _when(start, "start"), _when(end, "end")
    if start_at is not None:
        where.append("created_at >= %s")
        params.append(_db_dt(start_at))
        criteria["start"] = start_at.isoformat()
    if end_at is not None:
        where.append("created_at < %s")
        params.append(_db_dt(end_at))
        criteria["end"] = end_at.isoformat()
    if start_at and end_at and end_at <= start_at:
        raise Invalid("invalid_window", _("结束时间应晚于开始时间"), fields={"end": _("应晚于开始时间")})
    if ballot_ids is not None:
        ok = isinstance(ballot_ids, list | tuple) and 0 < len(ballot_ids) <= MAX_VOID_IDS
        ok = ok and all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**62 for i in ballot_ids)
        if not ok:
            raise Invalid("invalid_ballot_ids", _("选票编号无效"), fields={"ballot_ids": _("1到10000个选票编号")})
        where.append(f"id IN ({', '.join(['%s'] * len(ballot_ids))})")
        params.extend(ballot_ids)
        criteria["ballot_ids"] = len(ballot_ids)
    if not criteria:
        raise Invalid(
            "criteria_required",
            _("请至少指定一个作废条件（网段、设备、时间段或选票编号）"),
            fields={"ip_prefix": _("至少指定一个条件")},
        )
    if new_accounts_only:
        where.append("new_account = %s")
        params.append(True)
        criteria["new_accounts_only"] = True
    with transaction.atomic(), connection.cursor() as cursor:
        rolled_until = _lock_open(cursor, poll)
        batch = VoidBatch.objects.create(poll=poll, reason=reason, criteria=criteria, actor=actor)
        cursor.execute(
            f"UPDATE votes_ballot SET void_id = %s WHERE {' AND '.join(where)}"
            " RETURNING voter_id, choices, created_at, new_account, ip_prefix, device",
            [batch.pk, *params],
        )
        voided = cursor.fetchall()
        if not voided:
            raise DomainError(VoteErrors.NOTHING_TO_VOID, _("没有符合条件的有效选票"))
        _uncount(cursor, poll.pk, voided, rolled_until)
        VoidBatch.objects.filter(pk=batch.pk).update(ballots=len(voided))
        batch.ballots = len(voided)
        audit.record(
            actor,
            "poll.void",
            org=poll.org,
            target=poll,
            summary=f"{poll.title} · 作废{len(voided)}票 · {reason}",
            data={"void_batch": batch.pk, "criteria": criteria},
            ip=ip,
        )
    return batch


def _lock_open(cursor, poll: Poll) -> dt.datetime | None:
    """Lock the poll, refuse once it is closed; the time the cluster counts are rolled up to.

    On PostgreSQL FOR UPDATE: the void waits for the ballots in flight and holds new ones for its
    few milliseconds (each ballot holds the row FOR KEY SHARE): a ballot takes its counter and bucket
    rows in one statement, in an order the planner picks, and a void taking the same rows beside it
    in its own order could deadlock. Roll-ups and the seal are kept out too."""
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    cursor.execute(
        f"SELECT rollup_until, closed_at, closes_at, seal_claimed_at FROM votes_poll WHERE id = %s{lock}", [poll.pk]
    )
    until, closed_at, closes_at, claimed = cursor.fetchone()
    probe = Poll(closed_at=aware(closed_at), closes_at=aware(closes_at), seal_claimed_at=aware(claimed))
    if is_closed(probe):
        raise DomainError(VoteErrors.POLL_CLOSED, _("投票已结束，结果已封存，不能再作废选票"))
    return aware(until)


def _uncount(cursor, poll_id: int, voided: list[tuple], rolled_until: dt.datetime | None) -> None:
    """Take voided ballots back out of the counters and the 10-minute buckets, and mark them voided
    in the cluster counts that already hold them."""
    shards: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    buckets: dict[tuple[int, dt.datetime], list[int]] = defaultdict(lambda: [0, 0, 0])
    clusters: Counter[tuple[str, str]] = Counter()
    for voter_id, choices, created_at, new, prefix, device in voided:
        ids = [int(c) for c in choices.split(",") if c]
        created_at = aware(created_at)
        b = bucket_of(created_at)
        if rolled_until is not None and created_at < rolled_until:
            if prefix:
                clusters[("prefix", prefix)] += 1
            if device:
                clusters[("device", device)] += 1
        for option_id in ids:
            lead = option_id == ids[0]
            s = shards[(option_id, voter_id % COUNTER_SHARDS)]
            s[0] += 1
            s[1] += lead
            k = buckets[(option_id, b)]
            k[0] += 1
            k[1] += lead
            k[2] += lead and bool(new)
    # Sorted: the same order as ballots take these rows.
    cursor.executemany(
        "UPDATE votes_optioncount SET votes = votes - %s, ballots = ballots - %s WHERE option_id = %s AND shard = %s",
        [(v, n, o, s) for (o, s), (v, n) in sorted(shards.items())],
    )
    cursor.executemany(
        "UPDATE votes_ballotbucket SET votes = votes - %s, ballots = ballots - %s, new_accounts = new_accounts - %s"
        " WHERE poll_id = %s AND option_id = %s AND bucket = %s",
        [(v, n, na, poll_id, o, _db_dt(b)) for (o, b), (v, n, na) in sorted(buckets.items())],
    )
    cursor.executemany(
        "UPDATE votes_clustercount SET voided = voided + %s WHERE poll_id = %s AND kind = %s AND value = %s",
        [(n, poll_id, kind, value) for (kind, value), n in sorted(clusters.items())],
    )
