"""Public lottery pages (/lotteries/<id>/): the commitment, entries, seed and winners, how to verify."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render

from core.errors import NotFound
from rewards.services import lottery as lotteries

ENTRIES_PER_PAGE = 200


def _lottery(pk: int):
    try:
        return lotteries.get_lottery(pk)
    except NotFound:
        raise Http404 from None


def lottery_public(request, pk: int):
    lottery = _lottery(pk)
    record = lotteries.public_record(lottery)
    prizes = {p["id"]: p for p in record["prizes"]}
    entries = {e["id"]: e for e in record["entries"]}
    winners = [
        {"entry": entries.get(w["entry_id"], {"id": w["entry_id"]}), "prize": prizes.get(w["prize_id"], {})}
        for w in record["winners"]
    ]
    won = {w["entry_id"] for w in record["winners"]}
    page = Paginator(record["entries"], ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    ctx = {
        "lottery": lottery,
        "record": record,
        "winners": winners,
        "won": won,
        "page": page,
        "entrants": len({e["m"] for e in record["entries"]}),
        "prize_total": sum(p["quantity"] for p in record["prizes"]),
    }
    return render(request, "portal/lottery_public.html", ctx)


def lottery_record_json(request, pk: int):
    """The record as a download: `manage.py verify_lottery <id> --json FILE` checks it."""
    record = lotteries.public_record(_lottery(pk))
    resp = HttpResponse(
        json.dumps(record, ensure_ascii=False, indent=1), content_type="application/json; charset=utf-8"
    )
    resp["Content-Disposition"] = f'attachment; filename="lottery-{pk}-record.json"'
    resp["Access-Control-Allow-Origin"] = "*"
    return resp
