"""Casting a ballot: the hot path of a vote rush, in plain SQL.

No ORM query building (see points/services/ledger.py for why: under a rush the ORM's compilation
cost more than the database's work), and as few round trips as the database allows:

1. the poll, its org path and its option ids, in one statement, read and checked (window,
   eligibility, choices) before any lock; a process that has just read an open poll uses that
   read for the next few seconds (see _poll) instead of reading it again for every ballot;
2. the write. SQLite, one transaction under its one writer lock (queued on a file lock, see
   core/sqlite): `INSERT … SELECT … WHERE the poll is still open ON CONFLICT (poll, voter, day, n)
   DO NOTHING` for n = 1…N, +1 on the voter's shard's counter row of each chosen option, +1 on the
   options' 10-minute buckets, the rate counters. PostgreSQL, one statement per try (data-modifying
   WITH): the rate counters, the poll still open held FOR KEY SHARE, the insert under the limits,
   the counters and the buckets; outside a transaction it commits by itself (no BEGIN, no COMMIT).

The unique constraint decides who gets a slot, never a count-then-insert. Closing, sealing and
voiding lock the poll row FOR UPDATE (PostgreSQL), or are writes (SQLite): a ballot in flight
finishes first, and a later one sees them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import ipaddress
import time

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError, Forbidden, Invalid, NotFound, Throttled
from core.recent import Recent
from core.sql import INTEGRITY_ERRORS, DriverCursor, aware, loaded, sqlite_dt

from ..models import COUNTER_SHARDS, Ballot, Eligibility
from . import ratelimit
from .errors import VoteErrors
from .receipts import new_receipt

BUCKET_SECONDS = 600
MAX_OPTION_ID = 2**62


@dataclasses.dataclass(frozen=True, slots=True)
class PollRow:
    """What casting needs to know about a poll, read in one statement."""

    id: int
    kind: str
    max_choices: int
    ballots_per_day: int | None
    eligibility: str
    opens_at: dt.datetime
    closes_at: dt.datetime
    block_new_accounts: bool
    closed_at: dt.datetime | None
    seal_claimed_at: dt.datetime | None
    org_path: str
    option_ids: frozenset[int]


_POLL_SQL = (
    "SELECT p.id, p.kind, p.max_choices, p.ballots_per_day, p.eligibility, p.opens_at, p.closes_at,"
    " p.block_new_accounts, p.closed_at, p.seal_claimed_at, o.path,"
    " (SELECT {agg} FROM votes_option op WHERE op.poll_id = p.id)"
    " FROM votes_poll p JOIN orgs_org o ON o.id = p.org_id WHERE p.id = %s"
)
_POLL_SQL_BY_VENDOR = {
    "postgresql": _POLL_SQL.format(agg="string_agg(op.id::text, ',')"),
    "sqlite": _POLL_SQL.format(agg="group_concat(op.id)"),
}

# SQLite: a ballot, only while the poll is not closed or being sealed (closing and sealing write these
# columns; inside the writer lock the insert sees them if they came first). No row back: a taken slot
# or a closed poll, told apart by _STILL_OPEN_SQL.
_INSERT_IF_OPEN_SQL = (
    "INSERT INTO votes_ballot (poll_id, voter_id, day, n, choices, receipt, created_at, ip, ip_prefix, device,"
    " new_account) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s"
    " WHERE EXISTS (SELECT 1 FROM votes_poll WHERE id = %s AND closed_at IS NULL AND seal_claimed_at IS NULL"
    " AND closes_at > %s) ON CONFLICT (poll_id, voter_id, day, n) DO NOTHING RETURNING id"
)

# Refused with no row: a taken slot, or closed meanwhile (early, or by time: then it is past closes_at).
_STILL_OPEN_SQL = (
    "SELECT id FROM votes_poll WHERE id = %s AND closed_at IS NULL AND seal_claimed_at IS NULL AND closes_at > %s"
)

_RATE_SQL = (
    "INSERT INTO votes_ratecount (key, window_start, hits) VALUES {rows}"
    " ON CONFLICT (key, window_start) DO UPDATE SET hits = votes_ratecount.hits + 1 RETURNING key, hits"
)


def load_poll(db: DriverCursor, poll_id: int) -> PollRow | None:
    sql = _POLL_SQL_BY_VENDOR["postgresql" if db.pg else "sqlite"]
    row = db.run(sql, [poll_id]).fetchone()
    if row is None:
        return None
    return PollRow(
        id=row[0],
        kind=row[1],
        max_choices=row[2],
        ballots_per_day=row[3],
        eligibility=row[4],
        opens_at=aware(row[5]),
        closes_at=aware(row[6]),
        block_new_accounts=bool(row[7]),
        closed_at=aware(row[8]),
        seal_claimed_at=aware(row[9]),
        org_path=row[10],
        option_ids=frozenset(int(i) for i in (row[11] or "").split(",") if i),
    )


# Open polls this process read in the last few seconds: a rush's ballots skip the read. What a
# ballot relies on from here never changes after a poll is created (kind, choices, options, window
# opening, eligibility), except what the write checks again on the live row in the same statement
# (closed, being sealed, past its closing time) and the org's path: an org moved in the tree is
# seen within _recent.seconds.
_recent: Recent[int, PollRow] = Recent(5.0)


def _poll(poll_id: int) -> PollRow | None:
    poll = _recent.get(poll_id)
    if poll is not None:
        return poll
    with DriverCursor() as db:
        poll = load_poll(db, poll_id)
    if poll is not None and state_error(poll, timezone.now()) is None:
        _recent.put(poll_id, poll)
    else:
        _recent.forget(poll_id)
    return poll


# --- checks (pure: also used by voter_state without writing anything) ----------------------------


def clean_choices(option_ids: object) -> list[int]:
    """Sorted option ids, or Invalid(invalid_choice): a non-empty list of distinct integers."""

    def bad(message: str) -> Invalid:
        return Invalid(VoteErrors.INVALID_CHOICE, message, fields={"option_ids": message})

    if not isinstance(option_ids, list | tuple) or not option_ids:
        raise bad(_("请至少选择一项"))
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 < i < MAX_OPTION_ID for i in option_ids):
        raise bad(_("选项编号无效"))
    if len(set(option_ids)) != len(option_ids):
        raise bad(_("同一选项不能重复选择"))
    return sorted(option_ids)


def state_error(poll, now: dt.datetime) -> DomainError | None:
    """poll_not_open / poll_closed for a poll (a PollRow or a Poll), or None while open."""
    if now < poll.opens_at:
        return DomainError(VoteErrors.POLL_NOT_OPEN, _("投票尚未开始"))
    if poll.closed_at is not None or poll.seal_claimed_at is not None or now >= poll.closes_at:
        return DomainError(VoteErrors.POLL_CLOSED, _("投票已结束"))
    return None


def eligibility_error(
    poll_eligibility: str,
    poll_org_path: str,
    block_new_accounts: bool,
    opens_at: dt.datetime,
    standing,
    joined: dt.datetime | None,
) -> Forbidden | None:
    if poll_eligibility != Eligibility.EVERYONE:
        if not standing.certified or standing.org_path is None:
            return Forbidden(VoteErrors.NOT_ELIGIBLE, _("该投票仅限本工会及下级工会的认证会员参加"))
        if not standing.org_path.startswith(poll_org_path):
            return Forbidden(VoteErrors.NOT_ELIGIBLE, _("您所在的工会不在本次投票范围内"))
    if block_new_accounts and joined is not None and joined > opens_at:
        return Forbidden(VoteErrors.NOT_ELIGIBLE, _("本次投票不接受投票开始后注册的账号"))
    return None


def choice_error(poll, choices: list[int], option_ids: frozenset[int]) -> Invalid | None:
    if len(choices) > poll.max_choices:
        message = _("最多可选%(n)s项") % {"n": poll.max_choices}
        return Invalid(VoteErrors.INVALID_CHOICE, message, fields={"option_ids": message})
    if not option_ids.issuperset(choices):
        message = _("所选选项不属于本次投票")
        return Invalid(VoteErrors.INVALID_CHOICE, message, fields={"option_ids": message})
    return None


def ballot_day(poll, now: dt.datetime) -> tuple[dt.date, int]:
    """(day, slots): the voter's day in Asia/Shanghai with N slots, or the opening day with 1 slot."""
    # The deployment's zone (settings.TIME_ZONE), whatever zone a request may have activated.
    tz = timezone.get_default_timezone()
    if poll.ballots_per_day:
        return timezone.localdate(now, tz), poll.ballots_per_day
    return timezone.localdate(poll.opens_at, tz), 1


def clean_ip(ip: object) -> tuple[str | None, str]:
    """(address, its network) — /24 for IPv4, /48 for IPv6 — or (None, "") when there is none."""
    if not ip:
        return None, ""
    return _clean_ip(str(ip).strip())


@functools.lru_cache(maxsize=8192)  # a workplace votes from one address: parse it once
def _clean_ip(ip: str) -> tuple[str | None, str]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None, ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 48
    net = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    return str(addr), str(net)


def bucket_of(now: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(now.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS, dt.UTC)


# --- the hot path ---------------------------------------------------------------------------------


def cast_ballot(
    user,
    poll_id: object,
    option_ids: object,
    *,
    ip: str | None = None,
    device: str = "",
    device_identified: bool = True,
) -> Ballot:
    """Record one ballot, or raise: 404 unknown poll; 409 poll_not_open | poll_closed | already_voted |
    daily_limit_reached; 403 not_eligible; 422 invalid_choice; 429 rate_limited (with Retry-After).

    `device` is stored for the monitor; it is rate-limited only when `device_identified` (a device id
    the client keeps, not a hash of its User-Agent and address: a workplace's identical phones
    behind one NAT would all look like one device).

    Exactly the allowed number of ballots per voter (one in all, or N a day) however many arrive
    at once: the slot is a unique row. Attempts refused for being over the rule are still counted
    by the rate limits (they are what a brushing script sends)."""
    from members.services import standing_of

    choices = clean_choices(option_ids)
    try:
        poll_id = int(poll_id)
    except (TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该投票")) from None
    if not 0 < poll_id < 2**62:
        raise NotFound(_("未找到该投票"))
    address, prefix = clean_ip(ip)
    device = str(device or "")[:64]
    standing = standing_of(user)
    text = ",".join(map(str, choices))
    receipt = new_receipt()
    keys = ratelimit.keys_for(user.pk, poll_id, address, device if device_identified else "")
    joined = user.date_joined
    # Read and checked before any lock: SQLite's WAL readers never wait for its one writer, and the
    # write below re-checks, in the same statement, what may have changed since.
    poll = _checked(_poll(poll_id), standing, choices, joined)
    cast = _cast_pg if connection.vendor == "postgresql" else _cast_sqlite
    try:
        ballot_id, n, now, day, new_account = cast(
            poll, user.pk, choices, text, receipt, address, prefix, device, keys, joined
        )
    except DomainError as e:
        if e.code == VoteErrors.POLL_CLOSED:
            _recent.forget(poll.id)
        raise
    except INTEGRITY_ERRORS:
        # Only a receipt collision gets here (1 in ~10^17 per pair); nothing was kept.
        raise DomainError("receipt_collision", _("系统繁忙，请重试")) from None
    return _ballot(
        id=ballot_id,
        poll_id=poll.id,
        voter_id=user.pk,
        day=day,
        n=n,
        choices=text,
        receipt=receipt,
        created_at=now,
        ip=address,
        ip_prefix=prefix,
        device=device,
        new_account=new_account,
        void_id=None,
    )


def _refusal(poll: PollRow) -> DomainError:
    if poll.ballots_per_day:
        return DomainError(
            VoteErrors.DAILY_LIMIT_REACHED, _("今天的%(n)s票已经投完，明天再来") % {"n": poll.ballots_per_day}
        )
    return DomainError(VoteErrors.ALREADY_VOTED, _("您已经投过票了"))


def _start(poll: PollRow, joined: dt.datetime | None) -> tuple[dt.datetime, dt.date, int, bool]:
    # The time is taken just before the insert (after any wait for SQLite's writer lock): a ballot's
    # created_at is within milliseconds of its commit, which the monitor's roll-up relies on.
    now = timezone.now()
    error = state_error(poll, now)
    if error is not None:
        raise error
    day, slots = ballot_day(poll, now)
    return now, day, slots, joined is not None and joined > poll.opens_at


def _cast_sqlite(poll: PollRow, voter_id: int, choices, text, receipt, address, prefix, device, keys, joined):
    """One write transaction under SQLite's writer lock: insert while the poll is still open, count,
    bucket, rate counters; refusals over the rule still commit the rate counters. Every parameter is
    ready before the lock is taken: inside it only the statements run."""
    now, day, slots, new_account = _start(poll, joined)
    at = sqlite_dt(now)
    values = [poll.id, voter_id, day.isoformat(), 0, text, receipt, at, address, prefix, device, new_account]
    values += [poll.id, at]
    first = choices[0]
    count_sql, bucket_sql = _sqlite_count_sql(len(choices))
    count_params = [first, voter_id % COUNTER_SHARDS, *choices]
    bucket_at = sqlite_dt(bucket_of(now))
    bucket_params = [
        v
        for option_id in choices
        for v in (poll.id, option_id, bucket_at, 1, int(option_id == first), int(option_id == first and new_account))
    ]
    rate_sql = _sqlite_rate_sql(len(keys))
    rate_params = [v for key, start, _lim, _win in keys for v in (key, start)]
    refused: DomainError | None = None
    ballot_id = n = None
    # Inside a caller's transaction (an Idempotency-Key request): a savepoint of it.
    with transaction.atomic() if connection.in_atomic_block else connection.immediate():
        db = DriverCursor()
        try:
            for n in range(1, slots + 1):
                values[3] = n
                row = db.run(_INSERT_IF_OPEN_SQL, values).fetchone()
                if row is not None:
                    ballot_id = row[0]
                    break
            if ballot_id is None:
                if db.run(_STILL_OPEN_SQL, [poll.id, at]).fetchone() is None:
                    raise DomainError(VoteErrors.POLL_CLOSED, _("投票已结束"))
                refused = _refusal(poll)
            else:
                db.run(count_sql, count_params)
                db.run(bucket_sql, bucket_params)
            hits = db.run(rate_sql, rate_params).fetchall()
            _check_limits(keys, [h for _k, h in sorted(hits)], time.time())
        finally:
            db.close()
    if refused is not None:
        raise refused
    return ballot_id, n, now, day, new_account


@functools.lru_cache(maxsize=64)
def _sqlite_count_sql(n: int) -> tuple[str, str]:
    """The counters UPDATE and the buckets upsert for a ballot of n choices: `ballots` and `new_accounts`
    are counted once per ballot, on its lowest option (choices are sorted)."""
    marks = ", ".join(["?"] * n)
    count = (
        "UPDATE votes_optioncount SET votes = votes + 1, ballots = ballots + (CASE WHEN option_id = ? THEN 1 ELSE 0 END)"
        f" WHERE shard = ? AND option_id IN ({marks})"
    )
    bucket = (
        "INSERT INTO votes_ballotbucket (poll_id, option_id, bucket, votes, ballots, new_accounts) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?)"] * n)
        + " ON CONFLICT (poll_id, option_id, bucket) DO UPDATE SET votes = votes_ballotbucket.votes + excluded.votes,"
        " ballots = votes_ballotbucket.ballots + excluded.ballots,"
        " new_accounts = votes_ballotbucket.new_accounts + excluded.new_accounts"
    )
    return count, bucket


@functools.lru_cache(maxsize=8)
def _sqlite_rate_sql(n: int) -> str:
    return _RATE_SQL.format(rows=", ".join(["(?, ?, 1)"] * n)).replace("%s", "?")


def _cast_pg(poll: PollRow, voter_id: int, choices, text, receipt, address, prefix, device, keys, joined):
    """One statement a try (n = 1…N): rate counters (first try), the poll still open (held FOR KEY
    SHARE, so a close or seal waits for it, and one that came first is seen), the insert, counters,
    buckets. Outside a transaction the statement is its own: no BEGIN and COMMIT round trips."""
    in_block = connections[DEFAULT_DB_ALIAS].in_atomic_block
    now, day, slots, new_account = _start(poll, joined)
    bucket = bucket_of(now)
    shard = voter_id % COUNTER_SHARDS
    params = {
        "poll": poll.id,
        "now": now,
        "voter": voter_id,
        "day": day,
        "text": text,
        "receipt": receipt,
        "ip": address,
        "prefix": prefix,
        "device": device,
        "new": new_account,
        "first": choices[0],
        "shard": shard,
        "choices": choices,
        "bucket": bucket,
        "keys": [k[0] for k in keys],
        "starts": [k[1] for k in keys],
        "limits": [k[2] for k in keys],
    }
    for n in range(1, slots + 1):
        first = n == 1
        sql = _PG_CAST_FIRST if first else _PG_CAST_AGAIN
        params["n"] = n
        # Inside a caller's transaction (an Idempotency-Key request) a failed statement must not
        # leave it aborted: a savepoint. Otherwise the statement commits by itself.
        with transaction.atomic() if in_block else contextlib.nullcontext():
            db = DriverCursor()
            try:
                ballot_id, hits, still_open = db.run(sql, params).fetchone()
            finally:
                db.close()
        if first:
            _check_limits(keys, hits or [], time.time())
        if not still_open:
            raise DomainError(VoteErrors.POLL_CLOSED, _("投票已结束"))
        if ballot_id is not None:
            return ballot_id, n, now, day, new_account
    raise _refusal(poll)


def _checked(poll: PollRow | None, standing, choices: list[int], joined: dt.datetime | None) -> PollRow:
    """The poll if this voter may vote these choices in it now, else the error (404, 409, 403, 422)."""
    if poll is None:
        raise NotFound(_("未找到该投票"))
    error = (
        state_error(poll, timezone.now())
        or eligibility_error(poll.eligibility, poll.org_path, poll.block_new_accounts, poll.opens_at, standing, joined)
        or choice_error(poll, choices, poll.option_ids)
    )
    if error is not None:
        raise error
    return poll


def _ballot(**values) -> Ballot:
    return loaded(Ballot, values)


# PostgreSQL: a ballot in one statement. r: the rate counters (first try only; they count refused
# attempts too); p: the poll, still open, held FOR KEY SHARE (closing and sealing lock it FOR UPDATE:
# they wait for this statement, and this one sees them if they came first); b: the ballot, only
# under the rate limits and while the poll is open, slot by the unique constraint; c and k: the
# counter row of the voter's shard and the 10-minute bucket of each chosen option, only if b took it.
_PG_CAST_SQL = (
    "WITH {rate}p AS (SELECT id FROM votes_poll WHERE id = %(poll)s AND closed_at IS NULL"
    " AND seal_claimed_at IS NULL AND closes_at > %(now)s FOR KEY SHARE),"
    " b AS (INSERT INTO votes_ballot (poll_id, voter_id, day, n, choices, receipt, created_at, ip, ip_prefix,"
    " device, new_account) SELECT %(poll)s, %(voter)s, %(day)s, %(n)s, %(text)s, %(receipt)s, %(now)s, %(ip)s,"
    " %(prefix)s, %(device)s, %(new)s FROM p{under_limits}"
    " ON CONFLICT (poll_id, voter_id, day, n) DO NOTHING RETURNING id),"
    " c AS (UPDATE votes_optioncount SET votes = votes + 1,"
    " ballots = ballots + (CASE WHEN option_id = %(first)s THEN 1 ELSE 0 END)"
    " WHERE shard = %(shard)s AND option_id = ANY(%(choices)s) AND EXISTS (SELECT 1 FROM b)),"
    " k AS (INSERT INTO votes_ballotbucket (poll_id, option_id, bucket, votes, ballots, new_accounts)"
    " SELECT %(poll)s, o, %(bucket)s, 1, CASE WHEN o = %(first)s THEN 1 ELSE 0 END,"
    " CASE WHEN o = %(first)s AND %(new)s THEN 1 ELSE 0 END"
    " FROM unnest(%(choices)s) AS o WHERE EXISTS (SELECT 1 FROM b)"
    " ON CONFLICT (poll_id, option_id, bucket) DO UPDATE SET votes = votes_ballotbucket.votes + excluded.votes,"
    " ballots = votes_ballotbucket.ballots + excluded.ballots,"
    " new_accounts = votes_ballotbucket.new_accounts + excluded.new_accounts)"
    " SELECT (SELECT id FROM b), {hits}, EXISTS (SELECT 1 FROM p)"
)
# The rate counters (first try only): keys sorted, so every statement takes these rows in one order.
_PG_RATE = (
    "r AS (INSERT INTO votes_ratecount (key, window_start, hits)"
    " SELECT key, start, 1 FROM unnest(%(keys)s::text[], %(starts)s::bigint[]) AS t(key, start) ORDER BY key"
    " ON CONFLICT (key, window_start) DO UPDATE SET hits = votes_ratecount.hits + 1 RETURNING key, hits),"
    " l AS (SELECT * FROM unnest(%(keys)s::text[], %(limits)s::int[]) AS t(key, lim)),"
)
_PG_CAST_FIRST = _PG_CAST_SQL.format(
    rate=_PG_RATE,
    under_limits=" WHERE NOT EXISTS (SELECT 1 FROM r JOIN l ON l.key = r.key WHERE r.hits > l.lim)",
    hits="(SELECT array_agg(hits ORDER BY key) FROM r)",
)
_PG_CAST_AGAIN = _PG_CAST_SQL.format(rate="", under_limits="", hits="NULL::int[]")


def _check_limits(keys: list[tuple], hits: list[int], now: float) -> None:
    wait = 0
    for (_key, start, lim, win), count in zip(keys, hits, strict=False):
        if count > lim:
            wait = max(wait, int(start + win - now) + 1)
    if wait:
        raise Throttled(VoteErrors.RATE_LIMITED, _("操作过于频繁，请稍后再试"), retry_after=wait)
