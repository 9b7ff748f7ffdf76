"""Public election pages (/elections/<id>/): after close, the result, every receipt, the anonymous
ballots with the hash chain, a live recount, and the record as JSON for anyone to re-verify.

No sign-in: the record names no voter (receipts and random ballot ids only). Before close every
page answers 404, as for a missing election: an open election of a union's members (its title, its
candidates, its turnout) is not the public's to see; voters follow it at /m/elections/, cadres in
the console. With fewer than
record.MIN_PUBLISHED_BALLOTS ballots only the totals are shown.

A closed election's record is sealed: computed once and served from the cache (record.sealed_*);
the recount is recomputed at most every record.RECOUNT_SECONDS.
"""

from __future__ import annotations

import bisect
import datetime as dt

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render

from core.errors import NotFound
from elections.models import ElectionStatus
from elections.services import elections as svc
from elections.services import record as records

PER_PAGE = 300


def _election(pk: int):
    """The election, closed; 404 for a missing one and an open one alike."""
    try:
        election = svc.close_if_due(svc.get_election(pk))
    except NotFound:
        raise Http404 from None
    if election.status != ElectionStatus.CLOSED:
        raise Http404
    return election


def _names(election) -> dict[int, str]:
    return {c.pk: c.name for c in svc.candidates_of(election)}


def election_public(request, pk: int):
    election = _election(pk)
    ctx: dict = {"election": election, "candidates": svc.candidates_of(election)}
    record = records.sealed_record(election)
    names = {c.pk: c.name for c in ctx["candidates"]}
    order = [c["id"] for c in record["candidates"]]
    ballots = Paginator(record["ballots"], PER_PAGE).get_page(request.GET.get("bp"))
    receipts = Paginator(record["receipts"], PER_PAGE).get_page(request.GET.get("rp"))
    ctx.update(
        {
            "withheld": record.get("withheld", False),
            "record": record,
            "result": record["result"],
            "rows": [
                {
                    **c,
                    "name": names.get(c["id"], "?"),
                    "runoff": c["id"] in set(record["result"]["runoff_candidate_ids"]),
                }
                for c in record["result"]["candidates"]
            ],
            "order": [(cid, names.get(cid, "?")) for cid in order],
            "ballots": ballots,
            "ballot_rows": [{"b": b, "marks": [b["marks"].get(str(cid), "abstain") for cid in order]} for b in ballots],
            "receipts": receipts,
            "lookup": (request.GET.get("receipt") or "").strip().upper(),
        }
    )
    if ctx["lookup"]:
        found = bisect.bisect_left(record["receipts"], ctx["lookup"])  # the list is sorted
        ctx["lookup_found"] = record["receipts"][found : found + 1] == [ctx["lookup"]]
    return render(request, "portal/election_public.html", ctx)


def election_recount(request, pk: int):
    """Recount now, from the stored ballots, and say whether it matches the published result."""
    election = _election(pk)
    r = records.sealed_recount(election)
    names = _names(election)
    published = {c["id"]: c for c in r.published.get("candidates", [])}
    rows = []
    for c in r.recomputed["candidates"]:
        p = published.get(c["id"], {})
        rows.append(
            {
                "name": names.get(c["id"], "?"),
                "new": c,
                "pub": p,
                "same": all(c.get(k) == p.get(k) for k in ("for", "against", "abstain", "elected")),
            }
        )
    ctx = {
        "election": election,
        "r": r,
        "rows": rows,
        "withheld": records.withheld(election),
        "computed_at": dt.datetime.fromisoformat(r.computed_at) if r.computed_at else None,
    }
    return render(request, "portal/election_recount.html", ctx)


def election_record_json(request, pk: int):
    """The record as a download: `manage.py recount_election --json FILE` checks it offline."""
    election = _election(pk)
    resp = HttpResponse(records.sealed_record_json(election), content_type="application/json; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="election-{pk}-record.json"'
    resp["Access-Control-Allow-Origin"] = "*"
    return resp
