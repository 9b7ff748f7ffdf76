"""The anti-brushing monitor and voids: what it shows, and that voiding takes votes back everywhere."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from django.utils import timezone

from core.errors import DomainError, Forbidden, Invalid, NotFound
from votes.models import Ballot, BallotBucket, ClusterCount, ClusterHour, OptionCount, VoidBatch
from votes.services import monitor, polls
from votes.services.ballots import bucket_of
from votes.tests import builders as b


def _cast(poll, user, option_id, ip, device=""):
    return polls.cast_ballot(user, poll.pk, [option_id], ip=ip, device=device)


@pytest.fixture
def brushed(district):
    """An everyone poll: 6 old accounts vote from their own networks, 8 new accounts from one /24
    and one device, all for the third candidate."""
    p = b.poll(district.admin_a, district.street_a, eligibility="everyone", n_options=3)
    ids = b.option_ids(p)
    old = [b.follower() for _ in range(6)]
    type(old[0]).objects.filter(pk__in=[u.pk for u in old]).update(date_joined=p.opens_at - dt.timedelta(days=90))
    for i, u in enumerate(old):
        u.refresh_from_db()
        _cast(p, u, ids[i % 2], f"10.0.{i}.8", f"phone-{i}")
    bots = [b.follower() for _ in range(8)]
    for i, u in enumerate(bots):
        _cast(p, u, ids[2], f"61.183.45.{i + 10}", "farm-1")
    return p, ids, old, bots


@pytest.mark.django_db
def test_monitor_shows_the_cluster_with_its_voters_and_new_accounts(district, brushed):
    p, ids, old, bots = brushed
    data = monitor.monitor(p)
    assert data["total_ballots"] == 14 and data["new_account_ballots"] == 8
    assert data["new_account_share"] == round(8 / 14, 4)
    top = data["clusters"]["prefixes"][0]
    assert top == {"prefix": "61.183.45.0/24", "ballots": 8, "voters": 8, "new_accounts": 8, "voided": 0}
    assert data["clusters"]["devices"][0]["device"] == "farm-1"
    assert {c["prefix"] for c in data["clusters"]["prefixes"]} >= {"10.0.0.0/24", "10.0.5.0/24"}
    series = data["series"]  # one bucket, or two when the test runs across a 10-minute boundary
    assert len(series["buckets"]) == len(series["ballots"]) in (1, 2) and sum(series["ballots"]) == 14
    assert {o["id"]: sum(o["votes"]) for o in series["options"]} == {ids[0]: 3, ids[1]: 3, ids[2]: 8}
    ips = {f"10.0.{i}.8" for i in range(6)} | {f"61.183.45.{i + 10}" for i in range(8)}
    assert len(data["attempts"]) == 10 and {a["ip"] for a in data["attempts"]} <= ips  # the top 10 of 14
    assert all(a["attempts"] == 1 for a in data["attempts"])
    # A window of the last hour holds them all too.
    assert monitor.monitor(p, hours=1)["clusters"]["prefixes"][0]["ballots"] == 8


@pytest.mark.django_db
def test_rolled_up_counts_plus_the_live_tail_equal_the_ballots(district, brushed):
    p, ids, old, bots = brushed
    assert monitor.rollup(p, lag=dt.timedelta(0)) == 14
    assert ClusterCount.objects.filter(poll=p, kind="prefix").aggregate(n=Sum("ballots"))["n"] == 14
    assert monitor.rollup(p, lag=dt.timedelta(0)) == 0  # nothing twice
    _cast(p, b.follower(), ids[2], "61.183.45.99", "farm-1")  # after the roll-up: the live tail
    top = monitor.monitor(p)["clusters"]["prefixes"][0]
    assert top["prefix"] == "61.183.45.0/24" and top["ballots"] == 9 and top["voters"] == 9


@pytest.mark.django_db
def test_bursts_are_buckets_far_above_the_median(district):
    p = b.poll(district.admin_a, district.street_a, eligibility="everyone", n_options=2)
    ids = b.option_ids(p)
    now_bucket = bucket_of(timezone.now())
    # A steady 4 ballots per 10 minutes for two hours before (as counters: the monitor's series source)…
    BallotBucket.objects.bulk_create(
        [
            BallotBucket(poll=p, option_id=ids[0], bucket=now_bucket - dt.timedelta(minutes=10 * k), votes=4, ballots=4)
            for k in range(1, 13)
        ]
    )
    # …then 40 in this one, 36 of them for the second candidate.
    voters = [b.follower() for _ in range(40)]
    for i, u in enumerate(voters):
        _cast(p, u, ids[1] if i < 36 else ids[0], f"10.9.{i}.1")
    # (Had the casting crossed a 10-minute boundary, put its buckets back into one.)
    cast = BallotBucket.objects.filter(poll=p, bucket__gte=now_bucket)
    per_option = {o: sum(cast.filter(option_id=o).values_list("votes", flat=True)) for o in ids}
    cast.delete()
    BallotBucket.objects.bulk_create(
        [BallotBucket(poll=p, option_id=o, bucket=now_bucket, votes=v, ballots=v) for o, v in per_option.items()]
    )
    data = monitor.monitor(p)
    assert data["median_per_bucket"] == 4
    (burst,) = data["bursts"]
    assert burst["ballots"] == 40 and burst["top_option_id"] == ids[1] and burst["top_option_votes"] == 36
    assert burst["times_median"] == 10.0
    assert len(data["series"]["buckets"]) == 13 and data["series"]["ballots"][-1] == 40


@pytest.mark.django_db
def test_void_a_cluster_takes_its_votes_out_of_counters_buckets_and_results(district, brushed):
    p, ids, old, bots = brushed
    monitor.rollup(p, lag=dt.timedelta(0))
    batch = monitor.void_ballots(
        district.admin_a, p, reason="同一网段新账号集中投票", ip_prefix="61.183.45.0/24", new_accounts_only=True
    )
    assert batch.ballots == 8 and batch.criteria == {"ip_prefix": "61.183.45.0/24", "new_accounts_only": True}
    assert Ballot.objects.filter(poll=p, void=batch).count() == 8 and Ballot.objects.filter(poll=p).count() == 14
    res = polls.results(p)
    assert res["total_ballots"] == 6 and {o["id"]: o["votes"] for o in res["options"]}[ids[2]] == 0
    assert OptionCount.objects.filter(option_id=ids[2]).aggregate(v=Sum("votes"))["v"] == 0
    assert BallotBucket.objects.filter(poll=p).aggregate(n=Sum("ballots"), na=Sum("new_accounts")) == {"n": 6, "na": 0}
    cluster = ClusterCount.objects.get(poll=p, kind="prefix", value="61.183.45.0/24")
    assert (cluster.ballots, cluster.voided) == (8, 8)
    data = monitor.monitor(p)
    assert data["total_ballots"] == 6 and data["voids"][0]["ballots"] == 8
    assert data["clusters"]["prefixes"][0]["voided"] == 8
    # Voided ballots stay on the public list, marked.
    polls.close_poll(district.admin_a, p)
    p.refresh_from_db()
    items = polls.receipts_page(p, 1, 100)["items"]
    assert len(items) == 14 and sum(i["voided"] for i in items) == 8
    rc = polls.recount(p)
    assert rc.tally_matches and rc.chain_matches and p.published_tally["total_ballots"] == 6


@pytest.mark.django_db
def test_void_by_ids_device_and_window(district, brushed):
    p, ids, old, bots = brushed
    first = Ballot.objects.filter(poll=p).order_by("pk").first()
    assert monitor.void_ballots(district.admin_a, p, reason="逐张", ballot_ids=[first.pk]).ballots == 1
    assert monitor.void_ballots(district.admin_a, p, reason="设备", device="farm-1").ballots == 8
    now = timezone.now()
    with pytest.raises(DomainError) as e:
        monitor.void_ballots(district.admin_a, p, reason="未来", start=now + dt.timedelta(hours=1))
    assert e.value.code == "nothing_to_void"
    n = monitor.void_ballots(district.admin_a, p, reason="时段", start=now - dt.timedelta(hours=1), end=now).ballots
    assert n == 5  # the rest
    assert polls.results(p)["total_ballots"] == 0
    assert VoidBatch.objects.filter(poll=p).count() == 3


@pytest.mark.django_db
def test_void_is_refused_without_reason_criteria_or_rights_and_after_close(district, brushed):
    p, ids, old, bots = brushed
    with pytest.raises(Invalid) as e:
        monitor.void_ballots(district.admin_a, p, reason=" ", ip_prefix="61.183.45.0/24")
    assert e.value.code == "reason_required" and "reason" in e.value.fields
    with pytest.raises(Invalid) as e:
        monitor.void_ballots(district.admin_a, p, reason="全部", new_accounts_only=True)
    assert e.value.code == "criteria_required"
    with pytest.raises(Invalid):
        monitor.void_ballots(district.admin_a, p, reason="x", ballot_ids=["1"])
    with pytest.raises(Invalid):
        monitor.void_ballots(district.admin_a, p, reason="x", start="yesterday")
    with pytest.raises(Forbidden):
        monitor.void_ballots(district.staff_a, p, reason="x", ip_prefix="61.183.45.0/24")
    with pytest.raises(NotFound):
        monitor.void_ballots(district.admin_b, p, reason="x", ip_prefix="61.183.45.0/24")
    polls.close_poll(district.admin_a, p)
    with pytest.raises(DomainError) as e:
        monitor.void_ballots(district.admin_a, p, reason="x", ip_prefix="61.183.45.0/24")
    assert e.value.code == "poll_closed"
    assert not VoidBatch.objects.exists() and not Ballot.objects.filter(void__isnull=False).exists()


@pytest.mark.django_db
def test_window_clusters_come_from_the_hourly_top_lists_and_are_counted_exactly(district, brushed):
    p, ids, old, bots = brushed
    # Move every ballot two hours back (with its bucket), roll up: their hour is over and listed.
    two_hours = dt.timedelta(hours=2)
    for ballot in Ballot.objects.filter(poll=p):
        Ballot.objects.filter(pk=ballot.pk).update(created_at=ballot.created_at - two_hours)
    BallotBucket.objects.filter(poll=p).delete()
    monitor.rollup(p, lag=dt.timedelta(0))
    assert monitor.monitor(p, hours=1)["clusters"]["prefixes"] == []
    top = monitor.monitor(p, hours=6)["clusters"]["prefixes"][0]
    assert top == {"prefix": "61.183.45.0/24", "ballots": 8, "voters": 8, "new_accounts": 8, "voided": 0}


@pytest.mark.django_db
def test_pieces_of_the_current_hour_add_up_in_its_top_list_and_a_window_reads_them(district, brushed):
    p, ids, old, bots = brushed
    monitor.rollup(p, lag=dt.timedelta(0))

    def listed() -> dict[str, int]:
        return dict(ClusterHour.objects.filter(poll=p, kind="prefix").values_list("value", "ballots"))

    assert listed()["61.183.45.0/24"] == 8
    for i in range(2):
        _cast(p, b.follower(), ids[2], f"61.183.45.{i + 40}", "farm-2")
    monitor.rollup(p, lag=dt.timedelta(0))
    assert listed()["61.183.45.0/24"] == 10  # the second piece added to the first, not replaced it
    top = monitor.monitor(p, hours=1)["clusters"]["prefixes"][0]
    assert top == {"prefix": "61.183.45.0/24", "ballots": 10, "voters": 10, "new_accounts": 10, "voided": 0}
