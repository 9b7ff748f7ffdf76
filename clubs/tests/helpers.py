"""Builders for the clubs tests."""

from __future__ import annotations

from clubs.models import Club
from clubs.services import clubs as svc
from conftest import make_member


def active_club(district, name: str = "登山徒步联盟", *, org=None, policy: str = "open", proposer=None) -> Club:
    """A club proposed by a member of `org` (union A1 by default) and approved by a cadre covering it."""
    org = org or district.union_a1
    proposer = proposer or make_member(org, "发起人").user
    club = svc.propose(proposer, name=name, description="每月一次周末登山", category="户外", join_policy=policy)
    return svc.decide(district.district_admin, club.pk, approve=True)


def count_matches(club: Club) -> None:
    """The stored count equals the active membership rows."""
    club.refresh_from_db()
    assert club.members_count == club.memberships.filter(status="active").count()
