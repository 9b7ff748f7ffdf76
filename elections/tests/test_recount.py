"""The public record and the recount: equal to the published tally, and tampering after close is detected."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from elections.models import ElectionBallot, ElectionVoter
from elections.services import chain
from elections.services import elections as svc
from elections.services import record as records

from .builders import election, ids, roll, vote

pytestmark = pytest.mark.django_db


def _recount_cmd(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("recount_election", *args, stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code or 0), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


@pytest.fixture
def closed(district):
    voters = roll(district.union_a1, 7)
    e = election(district.admin_a1, district.union_a1, seats=2)
    marks = [
        ["for", "for", "against"],
        ["for", "against", "for"],
        ["for", "for", "abstain"],
        ["against", "for", "for"],
        ["for", "abstain", "against"],
        [],
    ]
    receipts = [vote(m, e, mk) for m, mk in zip(voters, marks, strict=False)]
    svc.close_election(district.admin_a1, e.pk)
    e.refresh_from_db()
    return e, voters, receipts


def test_the_recount_equals_the_published_tally(closed):
    e, _voters, _receipts = closed
    r = records.recount(e)
    assert r.matches, r.findings
    assert r.chain_head == e.chain_head == e.result["chain_head"]
    for key in ("eligible", "voted", "valid", "quorum_met", "candidates", "runoff_candidate_ids"):
        assert r.recomputed[key] == e.result[key]
    code, out = _recount_cmd(str(e.pk))
    assert code == 0 and "MATCH" in out and e.chain_head in out


def test_the_public_record_lists_receipts_and_anonymous_ballots_and_nothing_personal(closed):
    e, voters, receipts = closed
    rec = records.public_record(e)
    assert rec["receipts"] == sorted(receipts)
    assert [b["id"] for b in rec["ballots"]] == sorted(b["id"] for b in rec["ballots"])
    assert len(rec["ballots"]) == 6 and rec["eligible"] == 7
    assert rec["ballots"][-1]["chain"] == rec["chain_head"]
    text = json.dumps(rec, ensure_ascii=False)
    for m in voters:
        assert m.name not in text
        assert m.user.phone not in text
    assert set(rec["ballots"][0]) == {"id", "marks", "chain"}
    ok = records.verify_record(json.loads(text))
    assert ok.matches, ok.findings


def test_a_ballot_altered_after_close_is_detected(closed):
    e, _v, _r = closed
    a, b, _c = ids(e)
    ballot = ElectionBallot.objects.filter(election=e).order_by("id").first()
    marks = dict(ballot.marks)
    marks[str(b)] = "against" if marks[str(b)] == "for" else "for"
    ElectionBallot.objects.filter(pk=ballot.pk).update(marks=marks)
    r = records.recount(e.__class__.objects.get(pk=e.pk))
    assert not r.matches
    assert any("链头" in f for f in r.findings)
    code, out = _recount_cmd(str(e.pk))
    assert code == 1 and "MISMATCH" in out


def test_a_ballot_removed_after_close_is_detected(closed):
    e, _v, _r = closed
    ElectionBallot.objects.filter(election=e).order_by("-id").first().delete()
    r = records.recount(e)
    assert not r.matches
    assert any("链头" in f for f in r.findings)
    assert any("回执数" in f for f in r.findings)
    assert _recount_cmd(str(e.pk))[0] == 1


def test_a_ballot_added_after_close_is_detected(closed):
    e, _v, _r = closed
    ElectionBallot.objects.create(id="0" * 32, election=e, marks={str(c): "for" for c in ids(e)[:2]})
    r = records.recount(e)
    assert not r.matches and any("链头" in f for f in r.findings)


def test_a_receipt_removed_after_close_is_detected(closed):
    e, _v, receipts = closed
    ElectionVoter.objects.filter(receipt=receipts[0]).update(receipt=None, voted_at=None)
    r = records.recount(e)
    assert not r.matches
    assert any("回执" in f for f in r.findings)


def test_a_downloaded_record_is_checked_by_the_command(closed, tmp_path):
    e, _v, _r = closed
    rec = records.public_record(e)
    path = tmp_path / "record.json"
    path.write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
    code, out = _recount_cmd("--json", str(path))
    assert code == 0 and "MATCH" in out
    # Someone edits the published tally in their copy: the recount of that copy says so.
    rec["result"]["candidates"][0]["for"] += 1
    path.write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
    code, out = _recount_cmd("--json", str(path))
    assert code == 1 and "MISMATCH" in out
    # Or a ballot: the chain catches it.
    rec = records.public_record(e)
    rec["ballots"][0]["marks"] = {k: "abstain" for k in rec["ballots"][0]["marks"]}
    assert not records.verify_record(rec).matches


def test_the_chain_is_the_documented_computation(closed):
    e, _v, _r = closed
    import hashlib

    h = hashlib.sha256(f"unionhome-election:{e.pk}".encode()).hexdigest()
    for pid, marks in sorted(ElectionBallot.objects.filter(election=e).values_list("id", "marks")):
        text = json.dumps({"id": pid, "marks": marks}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        h = hashlib.sha256((h + text).encode()).hexdigest()
    assert h == e.chain_head
    assert chain.receipts_digest(svc.stored_receipts(e)) == e.result["receipts_digest"]


def test_recount_refuses_an_open_election(district):
    roll(district.union_a1, 2)
    e = election(district.admin_a1, district.union_a1)
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not closed"):
        call_command("recount_election", str(e.pk), stdout=io.StringIO())
