"""close_polls (cron) and recount_poll (anyone's check of a poll, or of its downloaded record)."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from votes.models import Ballot, ClusterCount, Poll, RateCount
from votes.services import polls
from votes.tests import builders as b


def _run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as e:
        code = e.code
    return code, out.getvalue(), err.getvalue()


def _poll_with_ballots(district, n=3, **kw):
    p = b.poll(district.admin_a, district.street_a, **kw)
    ids = b.option_ids(p)
    for i in range(n):
        polls.cast_ballot(b.member(district.union_a1).user, p.pk, [ids[i % 2]], ip=f"10.1.{i}.1")
    return p


@pytest.mark.django_db
def test_close_polls_seals_the_due_ones_rolls_up_the_open_ones_and_drops_old_counters(district):
    due = _poll_with_ballots(district)
    b.backdate(due, closes=timezone.now() - dt.timedelta(minutes=1))
    running = _poll_with_ballots(district, title="进行中")
    Ballot.objects.filter(poll=running).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    RateCount.objects.create(key="ballot:u:1", window_start=int(timezone.now().timestamp()) - 3 * 86400, hits=3)
    code, out, _ = _run("close_polls")
    assert code == 0 and f"sealed poll {due.pk}" in out and "1 sealed" in out
    due.refresh_from_db()
    assert due.chain_head and due.published_tally["total_ballots"] == 3
    assert ClusterCount.objects.filter(poll=running, kind="prefix").count() == 3
    assert not RateCount.objects.filter(key="ballot:u:1").exists()
    assert "0 sealed" in _run("close_polls")[1]


@pytest.mark.django_db
def test_recount_poll_matches_then_reports_a_tampered_ballot(district):
    p = _poll_with_ballots(district)
    code, out, _ = _run("recount_poll", str(p.pk))
    assert code == 0 and "live counters" in out and "recount ok" in out
    polls.close_poll(district.admin_a, p)
    code, out, _ = _run("recount_poll", str(p.pk))
    assert code == 0 and "tally and chain match" in out
    Ballot.objects.filter(poll=p).order_by("pk").first().delete()
    code, out, err = _run("recount_poll", str(p.pk))
    assert code == 1 and "MISMATCH" in err
    with pytest.raises(CommandError):
        call_command("recount_poll", "999999")


@pytest.mark.django_db
def test_recount_poll_checks_a_downloaded_record(district, tmp_path):
    p = _poll_with_ballots(district)
    polls.close_poll(district.admin_a, p)
    record = polls.public_record(Poll.objects.get(pk=p.pk))
    good = tmp_path / "record.json"
    good.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    code, out, _ = _run("recount_poll", str(p.pk), "--json", str(good))
    assert code == 0 and "match" in out
    record["ballots"][1][2] = [record["options"][2]["id"]]  # someone changed a ballot's choice
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record), encoding="utf-8")
    code, _, err = _run("recount_poll", str(p.pk), "--json", str(bad))
    assert code == 1 and "differs" in err
    with pytest.raises(CommandError):
        call_command("recount_poll", str(p.pk + 1), "--json", str(good))
