"""Ballots under real parallel HTTP clients: the one-ballot rules hold, and every ballot is counted.

Each test starts the live server and fires requests from a thread pool with urllib, every request
on its own connection, so the database sees truly concurrent transactions (SQLite and PostgreSQL
alike: run with DATABASE_URL set for the latter).
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
from django.db.models import Count, Sum

from accounts.services import issue_token
from votes.models import Ballot, BallotBucket, OptionCount
from votes.services import polls
from votes.tests import builders as b


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    """POST like a client would; a dropped connection (the test server's listen backlog is small) is
    retried: it never reached the view, so it cannot have voted."""
    data = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for attempt in range(20):
        req = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"raw": raw[:200].decode("utf-8", "replace")}
        except (urllib.error.URLError, ConnectionError, http.client.RemoteDisconnected):
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError(f"{url}: no answer after 20 attempts")


def _code(body: dict) -> str | None:
    return body.get("error", {}).get("code")


def _assert_counted_exactly(poll) -> None:
    """The counters, the buckets and the results all say what the ballots say."""
    per_option = Counter()
    for choices, n in (
        Ballot.objects.filter(poll=poll, void__isnull=True).values_list("choices").annotate(n=Count("id"))
    ):
        for option_id in choices.split(","):
            per_option[int(option_id)] += n
    total = Ballot.objects.filter(poll=poll, void__isnull=True).count()
    res = polls.results(poll)
    assert res["total_ballots"] == total
    assert {o["id"]: o["votes"] for o in res["options"]} == {o: per_option.get(o, 0) for o in b.option_ids(poll)}
    buckets = BallotBucket.objects.filter(poll=poll).aggregate(v=Sum("votes"), n=Sum("ballots"))
    assert buckets["n"] == total and buckets["v"] == sum(per_option.values())
    shards = OptionCount.objects.filter(option__poll=poll).aggregate(v=Sum("votes"), n=Sum("ballots"))
    assert shards["n"] == total and shards["v"] == sum(per_option.values())
    rc = polls.recount(poll)
    assert rc.tally_matches, (rc.tally, rc.published_tally)


@pytest.mark.django_db(transaction=True)
def test_40_simultaneous_ballots_of_one_member_count_once(district, live_server, settings):
    settings.VOTE_ACCOUNT_LIMIT = 1000  # this test is about the one-ballot rule, not the rate limit
    poll = b.poll(district.admin_a, district.street_a, n_options=4)
    member = b.member(district.union_a1)
    token, _ = issue_token(member.user)
    ids = b.option_ids(poll)
    url = f"{live_server.url}/api/v1/polls/{poll.pk}/ballots"

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(lambda i: _post(url, token, {"option_ids": [ids[i % 4]]}), range(40)))

    statuses = Counter((status, _code(body)) for status, body in results)
    assert statuses == {(201, None): 1, (409, "already_voted"): 39}, statuses
    ballot = Ballot.objects.get(poll=poll)
    assert ballot.receipt == next(body["receipt"] for status, body in results if status == 201)
    _assert_counted_exactly(poll)


@pytest.mark.django_db(transaction=True)
def test_200_members_voting_at_once_are_all_counted(district, live_server):
    poll = b.poll(district.admin_a, district.street_a, n_options=5, max_choices=2)
    ids = b.option_ids(poll)
    members = [b.member(district.union_a1 if i % 2 else district.union_a2) for i in range(200)]
    tokens = [issue_token(m.user)[0] for m in members]
    url = f"{live_server.url}/api/v1/polls/{poll.pk}/ballots"

    def vote(i: int):
        choice = [ids[i % 5]] if i % 3 else [ids[i % 5], ids[(i + 1) % 5]]
        return _post(url, tokens[i], {"option_ids": choice})

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(vote, range(200)))

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 200}, Counter((s, _code(body)) for s, body in results)
    assert Ballot.objects.filter(poll=poll).count() == 200
    assert len({body["receipt"] for _, body in results}) == 200
    assert Ballot.objects.values("voter").distinct().count() == 200
    _assert_counted_exactly(poll)


@pytest.mark.django_db(transaction=True)
def test_three_a_day_40_simultaneous_ballots_give_exactly_3(district, live_server, settings):
    settings.VOTE_ACCOUNT_LIMIT = 1000
    poll = b.poll(district.admin_a, district.street_a, ballots_per_day=3)
    member = b.member(district.union_a1)
    token, _ = issue_token(member.user)
    ids = b.option_ids(poll)
    url = f"{live_server.url}/api/v1/polls/{poll.pk}/ballots"

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(lambda i: _post(url, token, {"option_ids": [ids[i % 3]]}), range(40)))

    statuses = Counter((status, _code(body)) for status, body in results)
    assert statuses == {(201, None): 3, (409, "daily_limit_reached"): 37}, statuses
    mine = list(Ballot.objects.filter(poll=poll, voter=member.user).values_list("day", "n"))
    assert sorted(n for _, n in mine) == [1, 2, 3] and len({d for d, _ in mine}) == 1
    _assert_counted_exactly(poll)


@pytest.mark.django_db(transaction=True)
def test_the_account_limit_holds_under_parallel_attempts(district, live_server, settings):
    settings.VOTE_ACCOUNT_LIMIT = 5
    poll = b.poll(district.admin_a, district.street_a, ballots_per_day=100)
    member = b.member(district.union_a1)
    token, _ = issue_token(member.user)
    url = f"{live_server.url}/api/v1/polls/{poll.pk}/ballots"

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: _post(url, token, {"option_ids": [b.option_ids(poll)[0]]}), range(20)))

    statuses = Counter((status, _code(body)) for status, body in results)
    # A minute's window can turn during the run: then a few more get through, never more than twice the limit.
    assert 5 <= statuses[(201, None)] <= 10 and statuses[(429, "rate_limited")] == 20 - statuses[(201, None)], statuses
    assert Ballot.objects.filter(poll=poll).count() == statuses[(201, None)]
    _assert_counted_exactly(poll)
