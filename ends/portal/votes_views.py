"""Public poll pages (/polls/…): results, the receipts list after close, the recount, the record as JSON.

Nobody signs in here. A poll shows once it is closed, or while open when its results are live;
everything else answers 404. The receipts list, the recount and the record exist only after close,
when the poll is sealed (votes.services.polls decides what counts; these pages only show it).

Every page costs the same however many ballots a poll has (a public page of a 1.6M-ballot poll is
anyone's to reload): results are the tally stored at the seal, the receipts list is one keyset page
of at most RECEIPTS_PER_PAGE, the recount is the one stored on the poll, and the full record is
streamed from the ballots in chunks, never built in memory.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from ends.member.votes_views import photo_response, result_rows
from votes.models import Award, Poll
from votes.services import polls as polls_svc
from votes.services import receipts

RECEIPTS_PER_PAGE = 100
POLLS_PER_PAGE = 20


def _closed_polls():
    """Polls past their close (closing early sets closed_at): the ones whose results are public."""
    now = timezone.now()
    return Poll.objects.filter(Q(closed_at__isnull=False) | Q(closes_at__lte=now)).select_related("org")


def _poll(request, pk: int, *, closed: bool = False) -> Poll:
    """The poll if its results show to this visitor (polls.can_see_results: closed ones to everyone,
    live ones to the signed-in people eligible to vote), else 404."""
    try:
        poll = Poll.objects.select_related("org").defer("chain_checkpoints").get(pk=pk)
    except Poll.DoesNotExist:
        raise Http404 from None
    if not polls_svc.can_see_results(request.user, poll):
        raise Http404
    if closed and polls_svc.status_of(poll) != "closed":
        raise Http404
    return poll


def poll_index(request):
    """Closed polls, newest first."""
    polls = _closed_polls().defer("chain_checkpoints").order_by("-closes_at", "-id")
    page = Paginator(polls, POLLS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [{"poll": p, "status": "closed"} for p in page.object_list]
    return render(request, "portal/poll_index.html", {"page": page, "rows": rows})


def poll_results(request, pk: int):
    poll = _poll(request, pk)
    status = polls_svc.status_of(poll)
    tally = polls_svc.results(poll)
    options = list(poll.options.all())
    rows = result_rows(poll, options, tally)
    if status == "closed":
        rows.sort(key=lambda r: -r["votes"])
    awards = list(Award.objects.filter(poll=poll).select_related("option").order_by("rank", "id"))
    ctx = {
        "poll": poll,
        "status": status,
        "rows": rows,
        "total": tally.get("total_ballots", 0),
        "awards": awards,
    }
    return render(request, "portal/poll_results.html", ctx)


def _cursor(value: str | None) -> int | None:
    """A page cursor from the query string (a ballot id); None for anything that is not one."""
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def poll_receipts(request, pk: int):
    poll = _poll(request, pk, closed=True)
    q = (request.GET.get("q") or "").strip()[:40]
    found = searched = None
    if q:
        searched = q
        found = polls_svc.find_receipt(poll, q)
    before = _cursor(request.GET.get("before"))
    if request.GET.get("last") == "1":
        before = 2**62  # past every id: the last page
    after = None if before is not None else _cursor(request.GET.get("after"))
    data = polls_svc.receipts_window(poll, after=after, before=before, size=RECEIPTS_PER_PAGE)
    titles = {o.pk: o.title for o in poll.options.all()}
    ctx = {
        "poll": poll,
        "items": [_receipt_row(item, titles) for item in data["items"]],
        "found": _receipt_row(found, titles) if found else None,
        "searched": searched,
        "q": q,
        "total": data["count"],
        "next_after": data["next_after"],
        "prev_before": data["prev_before"],
    }
    return render(request, "portal/poll_receipts.html", ctx)


def _receipt_row(item: dict, titles: dict[int, str]) -> dict:
    ids = item.get("choices") or []
    if isinstance(ids, str):
        ids = [int(i) for i in ids.split(",") if i.isdigit()]
    return {
        **item,
        "display": receipts.display(item.get("receipt", "")),
        "titles": [titles.get(int(i), f"#{i}") for i in ids],
    }


def poll_recount(request, pk: int):
    poll = _poll(request, pk, closed=True)
    if not poll.chain_head:
        polls_svc.seal(poll)  # closed by time and nobody read it since: seal it now, as any read after close does
        poll = _poll(request, pk, closed=True)
    latest = polls_svc.latest_recount(poll)
    rc, recounted_at = latest if latest else (None, None)
    titles = {o.pk: o.title for o in poll.options.all()}
    published = {o["id"]: o["votes"] for o in (poll.published_tally or {}).get("options", [])}
    recounted = {o["id"]: o["votes"] for o in (rc.tally if rc else {}).get("options", [])}
    rows = [
        {"title": title, "published": published.get(oid, 0), "recounted": recounted.get(oid, 0)}
        for oid, title in titles.items()
    ]
    ctx = {
        "poll": poll,
        "rc": rc,
        "recounted_at": recounted_at,
        "rows": rows,
        "published_total": (poll.published_tally or {}).get("total_ballots", 0),
        "recounted_total": rc.tally.get("total_ballots", 0) if rc else 0,
        "all_match": bool(rc) and rc.tally_matches and rc.chain_matches,
    }
    return render(request, "portal/poll_recount.html", ctx)


def poll_record_json(request, pk: int):
    """Everything needed to recount by hand: options, the published tally, the chain and every receipt,
    streamed (a 1.6M-ballot record is tens of MB: built in memory per download it would not scale)."""
    poll = _poll(request, pk, closed=True)
    pieces = polls_svc.public_record_chunks(poll)  # checks before the first byte goes out
    resp = StreamingHttpResponse((piece.encode() for piece in pieces), content_type="application/json; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="poll-{poll.pk}-record.json"'
    resp["Access-Control-Allow-Origin"] = "*"
    return resp


def poll_photo(request, pk: int, option_id: int):
    poll = _poll(request, pk)
    option = poll.options.filter(pk=option_id).first()
    if option is None:
        raise Http404
    return photo_response(option)
