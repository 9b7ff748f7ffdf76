"""Rate limits counted in the database, shared by every server process: sign-in failures, SMS sends.

Each limit is one `RateCounter` row per key, whose window opens at the key's first hit and lasts
`window` seconds. `take` counts a hit on every limit with one upsert each (INSERT … ON CONFLICT DO
UPDATE, which both SQLite and PostgreSQL run atomically on the row), and only then compares the
counts: two parallel requests cannot both read "one left" and both go on. Call it inside
`transaction.atomic()`: a refusal raises, so the whole block, its hits included, rolls back, and
what was refused is not counted; rows are taken in key order, so two blocks never wait on each
other in a cycle.

(votes.services.ratelimit counts ballots the same way in its own table, inside the ballot's
hand-written statement; the two could share one table in core, which would mean moving that one.)
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

from django.db import connection
from django.db.models import F

from .models import RateCounter


@dataclasses.dataclass(frozen=True, slots=True)
class Limit:
    key: str  # at most 120 characters; a hash for anything personal
    limit: int
    window: int  # seconds


@dataclasses.dataclass(frozen=True, slots=True)
class Taken:
    limit: Limit
    hits: int
    resets_at: int  # ms since the epoch

    def retry_after(self, now_ms: int) -> int:
        return max(1, math.ceil((self.resets_at - now_ms) / 1000))


class LimitReached(Exception):
    """One or more limits were over; `over` lists them in the order they were given to `take`."""

    def __init__(self, over: list[Taken], now_ms: int):
        # The keys' kinds only ("sms:ip"): the rest may be a hash of a phone or an address.
        super().__init__(", ".join(":".join(t.limit.key.split(":")[:2]) for t in over))
        self.over = over
        self.now_ms = now_ms

    def first(self) -> Taken:
        return self.over[0]

    def retry_after(self, taken: Taken | None = None) -> int:
        return (taken or self.first()).retry_after(self.now_ms)


_HIT = (
    "INSERT INTO accounts_ratecounter (key, resets_at, hits) VALUES (%s, %s, 1)"
    " ON CONFLICT (key) DO UPDATE SET"
    " hits = CASE WHEN accounts_ratecounter.resets_at <= %s THEN 1 ELSE accounts_ratecounter.hits + 1 END,"
    " resets_at = CASE WHEN accounts_ratecounter.resets_at <= %s"
    " THEN excluded.resets_at ELSE accounts_ratecounter.resets_at END"
    " RETURNING hits, resets_at"
)


def now_ms() -> int:
    return int(time.time() * 1000)


def take(limits: Sequence[Limit], *, now: int | None = None) -> list[Taken]:
    """Count one hit on each limit; raise LimitReached when any is now over. Inside atomic() only."""
    now = now_ms() if now is None else now
    taken: dict[str, Taken] = {}
    with connection.cursor() as cursor:
        for lim in sorted(limits, key=lambda x: x.key):
            cursor.execute(_HIT, [lim.key, now + lim.window * 1000, now, now])
            hits, resets_at = cursor.fetchone()
            taken[lim.key] = Taken(lim, int(hits), int(resets_at))
    ordered = [taken[lim.key] for lim in limits]
    over = [t for t in ordered if t.hits > t.limit.limit]
    if over:
        raise LimitReached(over, now)
    return ordered


def give_back(taken: Sequence[Taken]) -> None:
    """Undo hits that turned out not to count (a right password, an SMS never delivered), in the
    window they were counted in: after a reset there is nothing of theirs left to undo."""
    for t in sorted(taken, key=lambda x: x.limit.key):
        RateCounter.objects.filter(key=t.limit.key, resets_at=t.resets_at, hits__gt=0).update(hits=F("hits") - 1)


def purge(now: int | None = None) -> int:
    """Delete counters whose window has ended (a new hit would start afresh anyway)."""
    now = now_ms() if now is None else now
    deleted, _ = RateCounter.objects.filter(resets_at__lte=now).delete()
    return deleted
