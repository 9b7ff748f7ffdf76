"""Demo elections for the demo district (called from demo.district.seed): one closed election with its
published result in a grassroots union with a modest roll, and one open election in the same union
that the demo members (those in the demo logins) have not voted in yet.

Everything goes through elections.services — create, cast, close — so the demo data is exactly what
real use produces (receipts, anonymous ballots, chain head, audit rows). Deterministic for a given rng.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db.models import Count
from django.utils import timezone

from members.models import Member
from orgs.models import CadreRole, Org

from .models import Election
from .services import elections as svc

ROLL_MIN, ROLL_MAX = 15, 45
DEMO_LOGINS = 1000  # demo.district lists the first 1,000 ordinary members in the demo logins


def _pick_union(rng: random.Random, grassroots: list[Org]) -> tuple[Org, set[int]] | None:
    """A grassroots union of ROLL_MIN..ROLL_MAX certified members, at least one of them in the demo logins."""
    ids = [o.pk for o in grassroots]
    chairs = set(CadreRole.objects.filter(org_id__in=ids).values_list("user_id", flat=True))
    listed: dict[int, set[int]] = {}
    for user_id, org_id in (
        Member.objects.filter(org_id__in=ids, certified_at__isnull=False)
        .exclude(user_id__in=chairs)
        .order_by("id")
        .values_list("user_id", "org_id")[:DEMO_LOGINS]
    ):
        listed.setdefault(org_id, set()).add(user_id)
    sizes = dict(
        Member.objects.filter(org_id__in=listed, certified_at__isnull=False)
        .values("org_id")
        .annotate(n=Count("id"))
        .values_list("org_id", "n")
    )
    fits = sorted(o for o, n in sizes.items() if ROLL_MIN <= n <= ROLL_MAX)
    if not fits:
        fits = sorted((o for o, n in sizes.items() if n >= 3), key=lambda o: -sizes[o])[:1]
    if not fits:
        return None
    org_id = rng.choice(fits)
    return Org.objects.get(pk=org_id), listed[org_id]


def _marks(rng: random.Random, candidate_ids: list[int], seats: int, favour: list[float]) -> dict[str, str]:
    """A plausible ballot: up to `seats` "for" drawn by favour, some "against", the rest abstain."""
    picks: set[int] = set()
    pool, weights = list(candidate_ids), list(favour)
    for _ in range(seats):
        if rng.random() < 0.92 and pool:
            i = rng.choices(range(len(pool)), weights)[0]
            picks.add(pool.pop(i))
            weights.pop(i)
    marks = {}
    for cid in candidate_ids:
        if cid in picks:
            marks[str(cid)] = "for"
        else:
            marks[str(cid)] = "against" if rng.random() < 0.3 else "abstain"
    return marks


def seed(rng: random.Random, grassroots: list[Org], now: dt.datetime | None = None) -> list[Election]:
    """Create the demo elections; returns them (closed first). Does nothing when no union fits."""
    now = now or timezone.now()
    picked = _pick_union(rng, grassroots)
    if picked is None:
        return []
    union, listed = picked
    admin_role = CadreRole.objects.filter(org=union, role="admin").select_related("user").first()
    if admin_role is None:
        return []
    admin = admin_role.user
    members = list(Member.objects.filter(org=union, certified_at__isnull=False).select_related("user").order_by("id"))
    names: list[str] = []
    for m in rng.sample(members, len(members)):
        if m.name not in names:
            names.append(m.name)
    if len(names) < 5:
        return []

    closed = svc.create_election(
        admin,
        union,
        title="第三届工会委员会委员选举",
        seats=3,
        candidates=names[:5],
        opens_at=now - dt.timedelta(days=3),
        closes_at=now + dt.timedelta(days=1),
    )
    cids = [c.pk for c in svc.candidates_of(closed)]
    favour = [6, 5, 4, 1, 1]
    turnout = [m for m in members if rng.random() < 0.88]
    for m in turnout:
        svc.cast_ballot(m.user, closed.pk, _marks(rng, cids, 3, favour))
    closed = svc.close_election(admin, closed.pk)

    open_election = svc.create_election(
        admin,
        union,
        title="工会经费审查委员会委员选举",
        seats=2,
        candidates=names[5:8] if len(names) >= 8 else names[:3],
        opens_at=now - dt.timedelta(hours=2),
        closes_at=now + dt.timedelta(days=7),
    )
    cids = [c.pk for c in svc.candidates_of(open_election)]
    # Some have voted already (the turnout moves); the members in the demo logins have not.
    for m in members:
        if m.user_id not in listed and rng.random() < 0.4:
            svc.cast_ballot(m.user, open_election.pk, _marks(rng, cids, 2, [3, 2, 1]))
    return [closed, open_election]
