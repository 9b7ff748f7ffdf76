"""Counting ballots: live results from the counters, the seal at close, and recounts.

The seal
--------
When a poll closes, its ballots are read in id order — every ballot, voided ones included —
and two things are computed from them alone:

- the tally: for each option, the number of non-voided ballots that chose it, and the number
  of non-voided ballots (`{"total_ballots", "options": [{"id", "votes"}]}`);
- a SHA-256 chain: ``h_0 = sha256("unionhome-poll:<poll id>")`` and, for the i-th ballot,
  ``h_i = sha256(h_{i-1} + line_i)`` where ``line_i`` is the canonical JSON
  ``[id,"RECEIPT",[option ids ascending],"YYYY-MM-DDTHH:MM:SS.ffffffZ",void_batch_id or null]``
  (no spaces, UTF-8, hashes as lowercase hex). ``h_n`` is the chain head; every 1,000th hash is
  kept as a checkpoint ``{"n", "id", "hash"}``.

The tally is compared with the live counters (they must agree: both are kept in the ballot's
transaction); a disagreement is logged as an error and the recount from the ballots is what is
published. The published tally, the head and the checkpoints are stored on the poll. Anyone can
recompute them from the public receipts list (receipts and choices are public: polls are open
ballots); a ballot removed or altered after close changes the tally or the chain, and the first
checkpoint that no longer matches says where.

The recount that the public pages show is stored on the poll (`last_recount`, `recounted_at`), not
done per request: reading 1.6M ballots for every anonymous visitor would let anyone keep the
database busy. The seal stores its own count from the ballots as the first recount; `close_polls`
counts one sealed poll again each run once its last recount is older than RECOUNT_EVERY, and
`recount_poll` stores what it finds. A ballot altered after close shows on the page from the next
recount, with its time.

Sealing cannot happen twice: it is claimed by a conditional UPDATE (so a rush of readers right
after close starts one seal, not many), and written by another conditional UPDATE on an unsealed
poll. The claim also waits for ballots in flight: on PostgreSQL it locks the poll row FOR UPDATE,
which every ballot's statement holds FOR KEY SHARE; on SQLite it is a write like every ballot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections import Counter
from collections.abc import Iterator

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..models import Poll
from .ballots import aware

log = logging.getLogger("unionhome.votes")

CHECKPOINT_EVERY = 1000
CHUNK = 20_000
# A seal claimed by a process that died is taken over after this long.
CLAIM_EXPIRES = dt.timedelta(minutes=15)
ALGORITHM = "sha256-chain-v1"
# How old a sealed poll's stored recount may grow before `close_polls` counts its ballots again.
RECOUNT_EVERY = dt.timedelta(hours=24)
# A first recount computed on a read (polls sealed before recounts were stored) is claimed for this long.
RECOUNT_CLAIM_SECONDS = 15 * 60


def genesis(poll_id: int) -> str:
    return hashlib.sha256(f"unionhome-poll:{poll_id}".encode()).hexdigest()


def timestamp(value) -> str:
    """A ballot's created_at in the chain's form: UTC, microseconds, 'Z'."""
    return aware(value).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line(ballot_id: int, receipt: str, choices: str, stamp: str, void_id: int | None) -> str:
    """The canonical JSON of one ballot (json.dumps(..., separators=(",", ":")) gives the same text);
    `stamp` is created_at as `timestamp()` writes it."""
    return f'[{ballot_id},"{receipt}",[{choices}],"{stamp}",{"null" if void_id is None else void_id}]'


def _stamp_sql() -> str:
    """created_at in the chain's form, written by the database (formatting 1.6M datetimes in Python
    took most of a recount). SQLite stores Django's `str(naive UTC datetime)`, whose fraction is
    left out when it is zero."""
    if connection.vendor == "postgresql":
        return "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    return (
        "substr(created_at, 1, 10) || 'T' || substr(created_at, 12, 8) || '.'"
        " || substr(substr(created_at, 21) || '000000', 1, 6) || 'Z'"
    )


def stream(poll_id: int, chunk: int | None = None) -> Iterator[tuple]:
    """(id, receipt, choices, created_at as a chain stamp, void_id) of every ballot of the poll in id
    order, read in chunks by id (the (poll, id) index), so 1.6M ballots never sit in memory at once.
    Keyset chunks rather than one server-side cursor: each read is a short statement, so a slow
    download holds no transaction open (and SQLite has no server-side cursor to give)."""
    chunk = chunk or CHUNK
    last = 0
    sql = (
        f"SELECT id, receipt, choices, {_stamp_sql()}, void_id FROM votes_ballot"
        " WHERE poll_id = %s AND id > %s ORDER BY id LIMIT %s"
    )
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [poll_id, last, chunk])
            rows = cursor.fetchall()
        if not rows:
            return
        yield from rows
        if len(rows) < chunk:
            return
        last = rows[-1][0]


@dataclasses.dataclass
class Computed:
    tally: dict
    head: str
    checkpoints: list[dict]
    length: int


def compute(poll_id: int, option_ids: list[int]) -> Computed:
    """The tally and the chain from the stored ballots alone."""
    h = genesis(poll_id)
    sha = hashlib.sha256
    by_choices: Counter[str] = Counter()
    checkpoints: list[dict] = []
    n = 0
    for ballot_id, receipt, choices, stamp, void_id in stream(poll_id):
        h = sha(
            f'{h}[{ballot_id},"{receipt}",[{choices}],"{stamp}",{"null" if void_id is None else void_id}]'.encode()
        ).hexdigest()
        n += 1
        if void_id is None:
            by_choices[choices] += 1
        if n % CHECKPOINT_EVERY == 0:
            checkpoints.append({"n": n, "id": ballot_id, "hash": h})
    votes: Counter[int] = Counter()
    for choices, count in by_choices.items():
        for option_id in choices.split(","):
            if option_id:
                votes[int(option_id)] += count
    tally = {
        "total_ballots": sum(by_choices.values()),
        "options": [{"id": o, "votes": votes.get(o, 0)} for o in option_ids],
    }
    # Votes for options that are not the poll's (only a tampered row can hold them) stay visible.
    extra = sorted(set(votes) - set(option_ids))
    tally["options"] += [{"id": o, "votes": votes[o]} for o in extra]
    return Computed(tally, h, checkpoints, n)


def option_ids_of(poll_id: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM votes_option WHERE poll_id = %s ORDER BY position, id", [poll_id])
        return [r[0] for r in cursor.fetchall()]


def counters(poll_id: int) -> dict:
    """Live results from the sharded counters: options × shards rows, however many ballots."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.id, COALESCE(SUM(c.votes), 0), COALESCE(SUM(c.ballots), 0) FROM votes_option o"
            " LEFT JOIN votes_optioncount c ON c.option_id = o.id WHERE o.poll_id = %s"
            " GROUP BY o.id, o.position ORDER BY o.position, o.id",
            [poll_id],
        )
        rows = cursor.fetchall()
    return {
        "total_ballots": int(sum(r[2] for r in rows)),
        "options": [{"id": r[0], "votes": int(r[1])} for r in rows],
    }


def is_closed(poll: Poll, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return poll.closed_at is not None or poll.seal_claimed_at is not None or now >= poll.closes_at


def _claim(poll_id: int) -> bool:
    """Take the seal (and wait for ballots in flight): True for the one caller that may seal now."""
    now = timezone.now()
    with transaction.atomic():
        # FOR UPDATE waits for every ballot in flight (PostgreSQL: each holds the poll row FOR KEY SHARE
        # for its one statement) and later ones see the claim; on SQLite this already is the only writer.
        poll = Poll.objects.select_for_update().only("id", "closes_at", "closed_at").filter(pk=poll_id).first()
        if poll is None or (poll.closed_at is None and now < poll.closes_at):
            return False
        claimed = (
            Poll.objects.filter(pk=poll_id, chain_head="")
            .filter(Q(seal_claimed_at__isnull=True) | Q(seal_claimed_at__lt=now - CLAIM_EXPIRES))
            .update(seal_claimed_at=now)
        )
        if claimed and poll.closed_at is None:
            Poll.objects.filter(pk=poll_id).update(closed_at=poll.closes_at)
    return bool(claimed)


def _count_ballots(poll_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM votes_ballot WHERE poll_id = %s", [poll_id])
        return cursor.fetchone()[0]


def seal(poll: Poll) -> bool:
    """Seal a closed poll: publish the tally recounted from its ballots with the chain head and
    checkpoints. True if this call sealed it; False if it was sealed (or is being sealed) already,
    or is not closed yet."""
    if poll.chain_head or not _claim(poll.pk):
        return False
    options = option_ids_of(poll.pk)
    for _attempt in range(3):
        computed = compute(poll.pk, options)
        live = counters(poll.pk)
        if live != computed.tally:
            log.error(
                "poll %s: the counters disagree with the ballots at seal (counters %s, ballots %s); "
                "publishing the recount from the ballots",
                poll.pk,
                live,
                computed.tally,
            )
        now = timezone.now()
        # The seal's count is a recount from the ballots: stored as the first one the pages show.
        first = Recount(
            computed.tally, computed.head, True, True, None, computed.length, True, computed.tally, computed.head
        )
        with transaction.atomic():
            # Nothing can be added after the claim; this only guards against the impossible.
            if _count_ballots(poll.pk) != computed.length:
                continue
            done = Poll.objects.filter(pk=poll.pk, chain_head="").update(
                published_tally=computed.tally,
                chain_head=computed.head,
                chain_checkpoints=computed.checkpoints,
                chain_length=computed.length,
                sealed_at=now,
                last_recount=dataclasses.asdict(first),
                recounted_at=now,
            )
        if done:
            poll.published_tally, poll.chain_head = computed.tally, computed.head
            poll.chain_checkpoints, poll.chain_length, poll.sealed_at = computed.checkpoints, computed.length, now
            poll.last_recount, poll.recounted_at = dataclasses.asdict(first), now
            if poll.closed_at is None:
                poll.closed_at = poll.closes_at
            log.info("poll %s sealed: %s ballots, head %s", poll.pk, computed.length, computed.head)
        return bool(done)
    log.error("poll %s: ballots kept changing while sealing; not sealed", poll.pk)
    Poll.objects.filter(pk=poll.pk).update(seal_claimed_at=None)
    return False


def seal_due_polls() -> list[int]:
    """Seal every poll past its close that is not sealed yet (the `close_polls` command; lazily on
    reads after close). Returns the ids this call sealed."""
    now = timezone.now()
    due = (
        Poll.objects.filter(chain_head="")
        .filter(Q(closed_at__isnull=False) | Q(closes_at__lte=now))
        .defer("chain_checkpoints")
        .order_by("closes_at", "id")
    )
    sealed = []
    for poll in due:
        if seal(poll):
            sealed.append(poll.pk)
    return sealed


def ensure_sealed(poll: Poll) -> Poll:
    """Seal the poll now if it is closed and nobody has (a read after close); the poll, refreshed."""
    if not poll.chain_head and is_closed(poll) and seal(poll):
        return poll
    if not poll.chain_head and is_closed(poll):
        poll.refresh_from_db()
    return poll


@dataclasses.dataclass
class Recount:
    tally: dict
    chain_head: str
    tally_matches: bool
    chain_matches: bool
    # `n` of the first checkpoint that no longer matches (the head counts as the last one, at
    # n = the published chain length); None when everything matches.
    first_bad_checkpoint: int | None
    ballots: int = 0
    sealed: bool = False
    published_tally: dict | None = None
    published_head: str = ""


def recount(poll: Poll) -> Recount:
    """Count the stored ballots again and compare with what was published at the seal (or, before
    the seal, with the live counters)."""
    computed = compute(poll.pk, option_ids_of(poll.pk))
    sealed = bool(poll.chain_head)
    if not sealed:
        live = counters(poll.pk)
        return Recount(computed.tally, computed.head, live == computed.tally, True, None, computed.length, False, live)
    stored = {c["n"]: c for c in poll.chain_checkpoints or []}
    mine = {c["n"]: c for c in computed.checkpoints}
    first_bad = None
    for n in sorted(stored):
        if mine.get(n) != stored[n]:
            first_bad = n
            break
    if first_bad is None and (computed.head != poll.chain_head or computed.length != poll.chain_length):
        first_bad = poll.chain_length  # the head is the last checkpoint
    return Recount(
        tally=computed.tally,
        chain_head=computed.head,
        tally_matches=computed.tally == poll.published_tally,
        chain_matches=computed.head == poll.chain_head and computed.length == poll.chain_length,
        first_bad_checkpoint=first_bad,
        ballots=computed.length,
        sealed=True,
        published_tally=poll.published_tally,
        published_head=poll.chain_head,
    )


def stored_recount(poll: Poll) -> tuple[Recount, dt.datetime] | None:
    """The last recount stored on a sealed poll and when it ran; None if there is none yet."""
    if not poll.chain_head or not poll.last_recount or poll.recounted_at is None:
        return None
    return Recount(**poll.last_recount), poll.recounted_at


def refresh_recount(poll: Poll) -> Recount:
    """Count a sealed poll's ballots again and store the result for the pages (unless the poll was
    sealed anew meanwhile: the row must still have the head this recount compared with)."""
    poll = Poll.objects.get(pk=poll.pk)  # with the checkpoints, which the pages defer
    rc = recount(poll)
    if rc.sealed:
        now = timezone.now()
        Poll.objects.filter(pk=poll.pk, chain_head=poll.chain_head).update(
            last_recount=dataclasses.asdict(rc), recounted_at=now
        )
    return rc


def latest_recount(poll: Poll) -> tuple[Recount, dt.datetime] | None:
    """What the recount pages show: the stored recount of a sealed poll. A poll sealed before
    recounts were stored is counted once here, by the one reader that claims it; the others get None
    (in progress) rather than each reading every ballot."""
    stored = stored_recount(poll)
    if stored is not None or not poll.chain_head:
        return stored
    if not cache.add(f"votes:recounting:{poll.pk}", 1, RECOUNT_CLAIM_SECONDS):
        return None
    try:
        refresh_recount(poll)
    finally:
        cache.delete(f"votes:recounting:{poll.pk}")
    poll.refresh_from_db(fields=["last_recount", "recounted_at"])
    return stored_recount(poll)


def refresh_stale_recounts(now: dt.datetime | None = None, *, limit: int = 1) -> list[int]:
    """Count again the sealed polls whose stored recount is the oldest and older than RECOUNT_EVERY
    (or missing), `limit` of them: for `close_polls`, so a big poll's recount costs one cron run a
    day, never a visitor's request. Returns their ids."""
    now = now or timezone.now()
    stale = (
        Poll.objects.exclude(chain_head="")
        .filter(Q(recounted_at__isnull=True) | Q(recounted_at__lt=now - RECOUNT_EVERY))
        .order_by(F("recounted_at").asc(nulls_first=True), "id")
        .values_list("pk", flat=True)[:limit]
    )
    done = []
    for pk in list(stale):
        refresh_recount(Poll(pk=pk))
        done.append(pk)
    return done


def verify_record(record: dict) -> tuple[bool, list[str]]:
    """Check a downloaded public record (polls.public_record) by itself: recount its ballots,
    recompute the chain from its genesis, compare with the tally, head and checkpoints it publishes.
    No database: anyone can run it on the JSON."""
    findings: list[str] = []
    chain = record.get("chain") or {}
    option_ids = [o["id"] for o in record.get("options") or []]
    h = genesis(record["poll"]["id"])
    if chain.get("genesis") not in (None, h):
        findings.append("the record's genesis is not sha256('unionhome-poll:<id>')")
    by_n = {c["n"]: c for c in chain.get("checkpoints") or []}
    votes: Counter[int] = Counter()
    total = 0
    ballots = record.get("ballots") or []
    for n, (ballot_id, receipt, choices, stamp, void_id) in enumerate(ballots, start=1):
        text = line(ballot_id, receipt, ",".join(str(c) for c in choices), stamp, void_id)
        h = hashlib.sha256((h + text).encode()).hexdigest()
        if n in by_n and (by_n[n]["hash"] != h or by_n[n]["id"] != ballot_id):
            findings.append(f"checkpoint {n} (ballot {by_n[n]['id']}) does not match the ballots before it")
        if void_id is None:
            total += 1
            votes.update(choices)
    tally = {"total_ballots": total, "options": [{"id": o, "votes": votes.get(o, 0)} for o in option_ids]}
    extra = sorted(set(votes) - set(option_ids))
    tally["options"] += [{"id": o, "votes": votes[o]} for o in extra]
    if tally != record.get("published_tally"):
        findings.append(f"recounted tally {tally} differs from the published {record.get('published_tally')}")
    if h != chain.get("head") or len(ballots) != chain.get("length"):
        findings.append(
            f"recomputed head {h} over {len(ballots)} ballots differs from the published {chain.get('head')}"
        )
    return not findings, findings
