"""members_count under real parallel HTTP clients: every join and leave moves it exactly once.

The live server answers each request on its own thread and database connection, so these are
truly concurrent transactions (run with DATABASE_URL set for PostgreSQL).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.services import issue_token
from clubs.models import ClubMembership
from points.tests.helpers import many_members

from .helpers import active_club, count_matches


def _call(method: str, url: str, token: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for attempt in range(20):
        req = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"raw": raw[:200].decode("utf-8", "replace")}
        except (urllib.error.URLError, ConnectionError, http.client.RemoteDisconnected):
            # A reset before the request reached the server (small listen backlog): safe to resend,
            # and a resent join or leave is answered 409 rather than counted twice.
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError(f"{url}: no answer after 20 attempts")


def _code(body: dict) -> str | None:
    return body.get("error", {}).get("code")


@pytest.mark.django_db(transaction=True)
def test_parallel_joins_and_leaves_keep_the_count_exact(district, live_server):
    club = active_club(district)
    first, second = many_members(district.union_a1, 40, "先到"), many_members(district.union_a1, 20, "后到")
    tokens = {m.user_id: issue_token(m.user)[0] for m in first + second}
    join_url = f"{live_server.url}/api/v1/clubs/{club.pk}/members"
    leave_url = f"{live_server.url}/api/v1/clubs/{club.pk}/members/me"

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda m: _call("POST", join_url, tokens[m.user_id]), first))
    assert Counter(s for s, _ in results) == {201: 40}, results[:3]
    count_matches(club)
    assert club.members_count == 41  # 40 and the founding admin

    # Half of the first wave leaves while a second wave joins, all at once.
    leavers = first[:20]
    jobs = [("DELETE", leave_url, m) for m in leavers] + [("POST", join_url, m) for m in second]
    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda j: (j[0], _call(j[0], j[1], tokens[j[2].user_id])), jobs))
    assert Counter((method, status) for method, (status, _) in results) == {("DELETE", 204): 20, ("POST", 201): 20}
    count_matches(club)
    assert club.members_count == 41
    assert not ClubMembership.objects.filter(club=club, user_id__in=[m.user_id for m in leavers]).exists()


@pytest.mark.django_db(transaction=True)
def test_one_person_joining_or_leaving_from_many_tabs_counts_once(district, live_server):
    club = active_club(district)
    (m,) = many_members(district.union_a1, 1, "多开")
    token = issue_token(m.user)[0]
    join_url = f"{live_server.url}/api/v1/clubs/{club.pk}/members"

    with ThreadPoolExecutor(12) as pool:
        joins = list(pool.map(lambda _: _call("POST", join_url, token), range(12)))
    assert Counter((s, _code(b)) for s, b in joins) == {(201, None): 1, (409, "already_member"): 11}
    count_matches(club)
    assert club.members_count == 2

    with ThreadPoolExecutor(12) as pool:
        leaves = list(pool.map(lambda _: _call("DELETE", f"{join_url}/me", token), range(12)))
    assert Counter((s, _code(b)) for s, b in leaves) == {(204, None): 1, (409, "not_in_club"): 11}
    count_matches(club)
    assert club.members_count == 1


@pytest.mark.django_db(transaction=True)
def test_two_admins_leaving_at_once_never_leave_the_club_without_one(district, live_server):
    from clubs.services import clubs as svc

    admins = many_members(district.union_a1, 2, "管理员")
    club = active_club(district, proposer=admins[0].user)
    svc.join(admins[1].user, club.pk)
    svc.promote(admins[0].user, club.pk, admins[1].user_id)
    url = f"{live_server.url}/api/v1/clubs/{club.pk}/members/me"
    tokens = [issue_token(a.user)[0] for a in admins]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda t: _call("DELETE", url, t), tokens))
    assert sorted((s, _code(b)) for s, b in results) == [(204, None), (409, "last_admin")]
    assert ClubMembership.objects.filter(club=club, role="admin", status="active").count() == 1
    count_matches(club)
