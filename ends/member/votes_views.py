"""Member end polls (/m/polls/): the list, one poll with its candidates and my ballot, my receipt,
a candidate's share page, candidate photos.

Every rule (who may vote, how often, what counts, when results show) is votes.services.polls';
these views gather the choice, call it, and show its answer (a DomainError's message beside the
choices).
"""

from __future__ import annotations

import secrets

import segno
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from core.audit import client_ip
from core.errors import DomainError, NotFound
from votes.models import Award, Ballot, Option, Poll
from votes.services import polls as polls_svc
from votes.services import ratelimit, receipts

from .web import error_context

DEVICE_COOKIE = "uh_dev"
DEVICE_COOKIE_AGE = 400 * 24 * 3600
TABS = ("open", "upcoming", "closed")


# --- shared with the portal, console and cadre pages ---------------------------------------------


def result_rows(poll: Poll, options: list[Option], tally: dict | None) -> list[dict]:
    """Options with their votes and share of all ballots (for bars), most votes first when closed."""
    votes = {o["id"]: o["votes"] for o in (tally or {}).get("options", [])}
    total = (tally or {}).get("total_ballots", 0) or 0
    top = max(votes.values(), default=0) or 0
    rows = []
    for o in options:
        n = votes.get(o.pk, 0)
        rows.append(
            {
                "option": o,
                "votes": n,
                "pct": round(100 * n / total, 1) if total else 0,
                "bar": round(100 * n / top) if top else 0,
                "lead": bool(top) and n == top,
            }
        )
    return rows


def photo_response(option: Option):
    """The stored (re-encoded) photo of a candidate; 404 when there is none."""
    if not option.photo:
        raise Http404
    try:
        handle = option.photo.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    resp = FileResponse(handle, content_type="image/jpeg")
    resp["Cache-Control"] = "private, max-age=3600"
    return resp


def qr_svg(link: str, scale: int = 4) -> str:
    return segno.make(link, error="m").svg_inline(scale=scale, border=2, dark="#111", omitsize=True)


# --- member pages --------------------------------------------------------------------------------


def _poll_or_404(user, pk: int) -> Poll:
    try:
        return polls_svc.poll_for_user(user, pk)
    except NotFound:
        raise Http404 from None


def _device(request) -> str:
    """The device hash the monitor groups by, made the way the API makes it (votes.services.ratelimit):
    from the long-lived random cookie set when the poll page was shown, else from user agent + address."""
    return ratelimit.device_hash(
        request.COOKIES.get(DEVICE_COOKIE, "")[:64], request.META.get("HTTP_USER_AGENT", ""), client_ip(request)
    )


def _with_device_cookie(request, response):
    if not request.COOKIES.get(DEVICE_COOKIE):
        response.set_cookie(
            DEVICE_COOKIE,
            secrets.token_urlsafe(18),
            max_age=DEVICE_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
    return response


@login_required
def poll_list(request):
    now = timezone.now()
    polls = list(polls_svc.polls_for_user(request.user).select_related("org")[:300])
    groups: dict[str, list[Poll]] = {t: [] for t in TABS}
    for p in polls:
        groups[polls_svc.status_of(p, now)].append(p)
    groups["open"].sort(key=lambda p: p.closes_at)
    groups["upcoming"].sort(key=lambda p: p.opens_at)
    tab = request.GET.get("tab", "")
    if tab not in TABS:
        tab = next((t for t in TABS if groups[t]), "open")
    voted = set(
        Ballot.objects.filter(voter=request.user, poll__in=[p.pk for p in polls], void__isnull=True)
        .values_list("poll_id", flat=True)
        .distinct()
    )
    ctx = {
        "tab": tab,
        "tabs": [(t, len(groups[t])) for t in TABS],
        "items": groups[tab],
        "voted": voted,
        "now": now,
    }
    return render(request, "member/poll_list.html", ctx)


def _detail_ctx(request, poll: Poll, *, chosen: list[str] | None = None) -> dict:
    user = request.user
    options = list(poll.options.all())
    state = polls_svc.voter_state(user, poll)
    visible = polls_svc.can_see_results(user, poll)
    rows = result_rows(poll, options, polls_svc.results(poll) if visible else None)
    return {
        "poll": poll,
        "status": polls_svc.status_of(poll),
        "last_receipt": receipts.display(state["last_receipt"]) if state.get("last_receipt") else "",
        "rows": rows,
        "show_results": visible,
        "total_ballots": sum(r["votes"] for r in rows) if visible else None,
        "state": state,
        "chosen": set(chosen or []),
        "multi": poll.max_choices > 1,
        "awards": list(Award.objects.filter(poll=poll).select_related("option").order_by("rank", "id")),
        "errors": {},
        "error": "",
        "error_code": "",
    }


@login_required
def poll_detail(request, pk: int):
    poll = _poll_or_404(request.user, pk)
    if request.method == "POST":
        return _vote(request, poll)
    return _with_device_cookie(request, render(request, "member/poll_detail.html", _detail_ctx(request, poll)))


def _vote(request, poll: Poll):
    raw = [v for v in request.POST.getlist("option") if v]
    option_ids = [int(v) if v.isdigit() else v for v in raw]  # anything else is the service's invalid_choice
    try:
        polls_svc.cast_ballot(request.user, poll.pk, option_ids, ip=client_ip(request), device=_device(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise Http404 from None
        ctx = _detail_ctx(request, poll, chosen=raw)
        ctx.update(error_context(e))
        ctx["error"] = e.message if not e.fields else " ".join(str(m) for m in e.fields.values())
        return render(request, "member/poll_detail.html", ctx, status=e.status)
    return redirect(reverse("member:poll_receipt", args=[poll.pk]) + "?new=1")


@login_required
def poll_receipt(request, pk: int):
    poll = _poll_or_404(request.user, pk)
    ballots = list(polls_svc.my_ballots(request.user, poll))
    ballots.sort(key=lambda b: (b.created_at, b.pk), reverse=True)
    by_id = {o.pk: o for o in poll.options.all()}
    mine = [
        {
            "ballot": b,
            "code": receipts.display(b.receipt),
            "choices": [by_id[int(i)] for i in b.choices.split(",") if i.isdigit() and int(i) in by_id],
        }
        for b in ballots
    ]
    ctx = {
        "poll": poll,
        "latest": mine[0] if mine else None,
        "earlier": mine[1:],
        "state": polls_svc.voter_state(request.user, poll),
        "status": polls_svc.status_of(poll),
        "is_new": request.GET.get("new") == "1",
    }
    return render(request, "member/poll_receipt.html", ctx)


def _option_or_404(poll: Poll, option_id: int) -> Option:
    option = poll.options.filter(pk=option_id).first()
    if option is None:
        raise Http404
    return option


@login_required
def poll_share(request, pk: int, option_id: int):
    poll = _poll_or_404(request.user, pk)
    option = _option_or_404(poll, option_id)
    link = request.build_absolute_uri(reverse("member:poll", args=[poll.pk])) + f"#option-{option.pk}"
    visible = polls_svc.can_see_results(request.user, poll)
    votes = None
    if visible:
        votes = next((o["votes"] for o in polls_svc.results(poll)["options"] if o["id"] == option.pk), 0)
    ctx = {
        "poll": poll,
        "option": option,
        "link": link,
        "qr": qr_svg(link, 5),
        "votes": votes,
        "status": polls_svc.status_of(poll),
    }
    return render(request, "member/poll_share.html", ctx)


@login_required
def poll_photo(request, pk: int, option_id: int):
    poll = _poll_or_404(request.user, pk)
    return photo_response(_option_or_404(poll, option_id))
