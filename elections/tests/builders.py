"""Builders for election tests: rolls of certified members, elections, ballots."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from elections.services import elections as svc
from points.tests.helpers import many_members


def roll(org, n: int, name: str = "选民") -> list:
    """n certified members of `org` (each with an ID number of their own)."""
    return many_members(org, n, name)


def election(admin, org, *, names=("张三", "李四", "王五"), seats: int = 2, voters="members", **kw):
    kw.setdefault("closes_at", timezone.now() + dt.timedelta(days=1))
    return svc.create_election(
        admin,
        org,
        title=kw.pop("title", "工会委员会换届选举"),
        seats=seats,
        candidates=list(names),
        voters=voters,
        **kw,
    )


def ids(e) -> list[int]:
    return [c.pk for c in svc.candidates_of(e)]


def vote(member, e, marks_by_position: list[str]) -> str:
    """Cast a ballot marking candidates in ballot order ("for"/"against"/"abstain")."""
    cids = ids(e)
    return svc.cast_ballot(member.user, e.pk, {str(c): m for c, m in zip(cids, marks_by_position, strict=False)})


def cast_marks(e=None) -> list[dict]:
    """The marks of every ballot cast, pooled or flushed (of one election, or all)."""
    from elections.models import ElectionBallot, PooledBallot

    out = []
    for model in (PooledBallot, ElectionBallot):
        qs = model.objects.all() if e is None else model.objects.filter(election=e)
        out += list(qs.values_list("marks", flat=True))
    return out
