"""Member end elections (/m/elections/): the elections I am on the roll of, the ballot, my receipt,
and the result after close.

The ballot marks each candidate for/against/abstain; a small script warns when more "for" are
marked than there are seats, and the server refuses such a ballot (elections.services decides).
After voting the receipt code is shown large: it proves taking part, never the choice.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError, NotFound
from elections.models import ElectionStatus, ElectionVoter
from elections.services import elections as svc

from .web import error_context


@login_required
def election_list(request):
    user = request.user
    items = [svc.close_if_due(e) for e in svc.elections_for_voter(user).order_by("-created_at", "-id")[:50]]
    voted = set(
        ElectionVoter.objects.filter(user=user, election__in=items, voted_at__isnull=False).values_list(
            "election_id", flat=True
        )
    )
    now = timezone.now()
    rows = [
        {"e": e, "voted": e.pk in voted, "accepting": svc.is_accepting(e, now), "not_started": now < e.opens_at}
        for e in items
    ]
    rows.sort(key=lambda r: (not r["accepting"] or r["voted"], r["e"].status == ElectionStatus.CLOSED))
    return render(request, "member/election_list.html", {"rows": rows})


def _result_rows(election, candidates) -> list[dict]:
    names = {c.pk: c.name for c in candidates}
    runoff = set(election.result.get("runoff_candidate_ids") or [])
    return [{**c, "name": names.get(c["id"], "?"), "runoff": c["id"] in runoff} for c in election.result["candidates"]]


def _ctx(request, election, *, marks=None, errors=None) -> dict:
    candidates = svc.candidates_of(election)
    marks = marks or {}
    errors = errors or {}
    voter = svc.on_roll(request.user, election)
    now = timezone.now()
    closed = election.status == ElectionStatus.CLOSED
    return {
        "election": election,
        "candidates": candidates,
        "voter": voter,
        "ballot": [
            {"c": c, "mark": marks.get(str(c.pk), "abstain"), "error": errors.get(f"marks.{c.pk}")} for c in candidates
        ],
        "accepting": svc.is_accepting(election, now),
        "not_started": now < election.opens_at,
        "closed": closed,
        "rows": _result_rows(election, candidates) if closed and election.result else [],
        "just_voted": request.GET.get("voted") == "1",
        "errors": errors,
        "error": "",
    }


@login_required
def election_detail(request, pk: int):
    try:
        election = svc.close_if_due(svc.election_for(request.user, pk))
    except NotFound:
        return render(request, "member/election_missing.html", status=404)
    if request.method == "POST":
        candidates = svc.candidates_of(election)
        marks = {str(c.pk): request.POST.get(f"c{c.pk}", "abstain") for c in candidates}
        try:
            svc.cast_ballot(request.user, election.pk, marks)
        except DomainError as e:
            election.refresh_from_db()
            shown = error_context(e)
            ctx = {**_ctx(request, election, marks=marks, errors=shown["errors"]), **shown}
            if e.code == "too_many_for" or (
                shown["errors"] and not any(k.startswith("marks.") for k in shown["errors"])
            ):
                ctx["error"] = e.message  # not beside one candidate: above the ballot
            return render(request, "member/election_detail.html", ctx, status=e.status)
        return redirect(f"{reverse('member:election', args=[election.pk])}?voted=1")
    return render(request, "member/election_detail.html", _ctx(request, election))
