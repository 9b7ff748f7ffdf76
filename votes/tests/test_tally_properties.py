"""Property: no sequence of ballots (good and bad), voids, monitor roll-ups and a close breaks the count.

After every step: the results equal a count of the stored non-voided ballots (the counters before
the seal, the published tally after it); the per-shard counters and the 10-minute buckets sum to
the same; the monitor's rolled-up cluster counts equal the ballots they cover; nobody holds more
ballots than the rule allows; a refused step records nothing. At the end the poll is sealed, the
recount matches the published tally and chain, and altering or deleting any one ballot afterwards
makes the recount report a mismatch.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import forget_remembered_reads
from core.errors import DomainError
from votes.models import Ballot, BallotBucket, ClusterCount, OptionCount, VoidBatch
from votes.services import monitor, polls
from votes.services.ballots import clean_ip
from votes.services.tally import compute, option_ids_of
from votes.tests import builders as b

PEOPLE = 7  # five certified members in street A's subtree, one uncertified, one follower
IPS = ["10.0.1.5", "10.0.1.77", "10.0.2.9", "2001:db8:5::1", None]
DEVICES = ["", "dev-a", "dev-b"]

ops = st.one_of(
    st.tuples(
        st.just("ballot"),
        st.integers(0, PEOPLE - 1),
        st.one_of(st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True), st.lists(st.integers(-1, 4))),
        st.integers(0, len(IPS) - 1),
        st.integers(0, len(DEVICES) - 1),
    ),
    st.tuples(
        st.just("ballot"),
        st.integers(0, 4),
        st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True),
        st.just(0),
        st.just(1),
    ),
    st.tuples(st.just("void_prefix"), st.integers(0, len(IPS) - 1), st.booleans()),
    st.tuples(st.just("void_device"), st.integers(1, len(DEVICES) - 1)),
    st.tuples(st.just("void_ids"), st.lists(st.integers(0, 12), min_size=1, max_size=3)),
    st.tuples(st.just("rollup")),
)


class World:
    def __init__(self, d):
        self.d = d
        self.people = [b.member(d.union_a1).user for _ in range(3)] + [b.member(d.union_a2).user for _ in range(2)]
        self.people += [b.member(d.union_a1, certified=False).user, b.follower()]
        self.poll = b.poll(d.admin_a, d.street_a, n_options=4, max_choices=2, ballots_per_day=2)
        self.options = b.option_ids(self.poll)


def _snapshot(poll):
    return (
        list(Ballot.objects.filter(poll=poll).order_by("pk").values_list("pk", "void_id", "choices")),
        list(OptionCount.objects.filter(option__poll=poll).order_by("pk").values_list("votes", "ballots")),
        list(BallotBucket.objects.filter(poll=poll).order_by("pk").values_list("votes", "ballots", "new_accounts")),
        VoidBatch.objects.filter(poll=poll).count(),
    )


def _check(poll) -> None:
    poll.refresh_from_db()
    truth = compute(poll.pk, option_ids_of(poll.pk)).tally
    assert polls.results(poll) == truth
    live = Ballot.objects.filter(poll=poll, void__isnull=True)
    votes = sum(len(c.split(",")) for c in live.values_list("choices", flat=True))
    shards = OptionCount.objects.filter(option__poll=poll).aggregate(v=Sum("votes"), n=Sum("ballots"))
    buckets = BallotBucket.objects.filter(poll=poll).aggregate(v=Sum("votes"), n=Sum("ballots"), na=Sum("new_accounts"))
    assert (shards["v"] or 0, shards["n"] or 0) == (votes, live.count())
    assert (buckets["v"] or 0, buckets["n"] or 0, buckets["na"] or 0) == (
        votes,
        live.count(),
        live.filter(new_account=True).count(),
    )
    assert not OptionCount.objects.filter(votes__lt=0).exists()
    per_day = Counter(Ballot.objects.filter(poll=poll).values_list("voter_id", "day"))
    assert max(per_day.values(), default=0) <= 2
    if poll.rollup_until is not None:
        covered = Ballot.objects.filter(poll=poll, created_at__lt=poll.rollup_until)
        for kind, column in (("prefix", "ip_prefix"), ("device", "device")):
            expected = Counter()
            for value, void in covered.exclude(**{column: ""}).values_list(column, "void_id"):
                expected[(value, "ballots")] += 1
                expected[(value, "voided")] += void is not None
            got = Counter()
            for value, n, voided in ClusterCount.objects.filter(poll=poll, kind=kind).values_list(
                "value", "ballots", "voided"
            ):
                got[(value, "ballots")] += n
                got[(value, "voided")] += voided
            assert +got == +expected, (kind, got, expected)


def _step(w: World, op: tuple) -> None:
    d, poll, kind = w.d, w.poll, op[0]
    if kind == "ballot":
        _, who, picks, ip, device = op
        choice = [w.options[i] if 0 <= i < 4 else 10**9 for i in picks]
        polls.cast_ballot(w.people[who], poll.pk, choice, ip=IPS[ip], device=DEVICES[device])
    elif kind == "void_prefix":
        _, prefix = clean_ip(IPS[op[1]]) if IPS[op[1]] else (None, "192.0.2.0/24")
        monitor.void_ballots(d.admin_a, poll, reason="同一网段", ip_prefix=prefix, new_accounts_only=op[2])
    elif kind == "void_device":
        monitor.void_ballots(d.admin_a, poll, reason="同一设备", device=DEVICES[op[1]])
    elif kind == "void_ids":
        ids = list(Ballot.objects.filter(poll=poll).order_by("pk").values_list("pk", flat=True))
        chosen = [ids[i] for i in op[1] if i < len(ids)] or [10**12]
        monitor.void_ballots(d.admin_a, poll, reason="逐张作废", ballot_ids=chosen)
    elif kind == "rollup":
        monitor.rollup(poll, lag=dt.timedelta(0))
    elif kind == "close":
        polls.close_poll(d.admin_a, poll)


@pytest.mark.django_db
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(ops, min_size=1, max_size=20),
    close_after=st.integers(0, 25),  # the poll closes after this many steps (the rest are refused)
    tamper=st.sampled_from(["delete", "alter", "receipt"]),
)
def test_any_sequence_keeps_results_equal_to_the_recount_and_the_chain_verifies(
    district, steps, close_after, tamper, django_settings
):
    forget_remembered_reads()  # the last example's rollback hands its poll's id out again
    with transaction.atomic():  # each example starts from the same world
        w = World(district)
        for i, op in enumerate(steps):
            if i == close_after:
                op = ("close",)
            before = _snapshot(w.poll)
            try:
                with transaction.atomic():
                    _step(w, op)
                event(f"{op[0]}: ok")
            except DomainError as e:
                event(f"{op[0]}: {e.code}")
                assert _snapshot(w.poll) == before, (op, e.code)
            _check(w.poll)
        if polls.status_of(w.poll) != "closed":
            polls.close_poll(district.admin_a, w.poll)
        w.poll.refresh_from_db()
        rc = polls.recount(w.poll)
        assert rc.tally_matches and rc.chain_matches and rc.first_bad_checkpoint is None
        assert w.poll.chain_length == Ballot.objects.filter(poll=w.poll).count()
        victim = Ballot.objects.filter(poll=w.poll).order_by("?").first()
        if victim is not None:
            if tamper == "delete":
                victim.delete()
            elif tamper == "alter":
                others = [o for o in w.options if str(o) != victim.choices]
                Ballot.objects.filter(pk=victim.pk).update(choices=str(others[0]))
            else:
                Ballot.objects.filter(pk=victim.pk).update(receipt="ALTERED23456")
            rc = polls.recount(w.poll)
            assert not rc.chain_matches
            if tamper != "receipt" and victim.void_id is None:
                assert not rc.tally_matches
        transaction.set_rollback(True)


@pytest.fixture
def django_settings(settings):
    settings.VOTE_ACCOUNT_LIMIT = 10_000  # the property is about counting, not rate limits
    settings.VOTE_DEVICE_LIMIT = 10_000
    return settings
