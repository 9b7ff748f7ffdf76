"""Polls and contests (API.md "Votes": /polls). Thin: parse, call votes.services, shape the answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from pydantic import StrictBool, StrictInt

from core.audit import client_ip
from core.errors import DomainError, Invalid, NotFound
from orgs import scoping
from votes.models import Eligibility, Judge, Poll, PollKind, ResultsVisibility
from votes.services import contest, monitor, polls, ratelimit
from votes.services.errors import VoteErrors
from votes.services.receipts import display

from .body import json_object, openapi_body, required_list
from .pagination import MAX_PAGE_SIZE, page_of

router = Router(tags=["votes"])


class Paging(Schema):
    page: int = 1
    page_size: int = 50


# --- shapes ----------------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def poll_out(poll: Poll, *, options: bool = True) -> dict:
    body = {
        "id": poll.pk,
        "org_id": poll.org_id,
        "org_name": poll.org.name,
        "kind": poll.kind,
        "title": poll.title,
        "description": poll.description,
        "max_choices": poll.max_choices,
        "ballots_per_day": poll.ballots_per_day,
        "eligibility": poll.eligibility,
        "results": poll.results,
        "opens_at": _iso(poll.opens_at),
        "closes_at": _iso(poll.closes_at),
        "closed_at": _iso(poll.closed_at),
        "closed_early": poll.closed_early,
        "status": polls.status_of(poll),
        "block_new_accounts": poll.block_new_accounts,
        "sealed": bool(poll.chain_head),
        "chain_head": poll.chain_head or None,
    }
    if poll.kind == PollKind.CONTEST:
        body["vote_weight"] = poll.vote_weight
        body["prize_tiers"] = poll.prize_tiers
    if options:
        body["options"] = [
            {"id": o.pk, "title": o.title, "description": o.description, "has_photo": bool(o.photo)}
            for o in poll.options.all()
        ]
    return body


def _json(body: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


# --- polls -----------------------------------------------------------------------------------------


class OptionIn(Schema):
    title: str
    description: str = ""


class TierIn(Schema):
    name: str
    count: StrictInt


class PollIn(Schema):
    org_id: StrictInt
    title: str
    options: list[OptionIn]
    max_choices: StrictInt
    ballots_per_day: StrictInt | None = None
    eligibility: str = Eligibility.MEMBERS
    results: str = ResultsVisibility.LIVE
    opens_at: dt.datetime
    closes_at: dt.datetime
    kind: str = PollKind.POLL
    description: str = ""
    block_new_accounts: StrictBool = False
    vote_weight: StrictInt = 100
    prize_tiers: list[TierIn] | None = None


@router.post("/polls", response={201: dict})
def poll_create(request: HttpRequest, payload: PollIn):
    org = scoping.org_for_cadre(request.auth, payload.org_id, admin=True)
    data = payload.dict(exclude={"org_id"})
    poll = polls.create_poll(request.auth, org, ip=client_ip(request), **data)
    return Status(201, poll_out(Poll.objects.select_related("org").get(pk=poll.pk)))


@router.get("/polls")
def poll_list(request: HttpRequest, paging: Query[Paging]):
    qs = polls.polls_for_user(request.auth).order_by("-opens_at", "-id")
    items, count = page_of(qs, paging.page, paging.page_size)
    return {"items": [poll_out(p, options=False) for p in items], "count": count}


@router.get("/polls/{int:poll_id}")
def poll_detail(request: HttpRequest, poll_id: int):
    poll = polls.poll_for_user(request.auth, poll_id)
    body = poll_out(poll)
    body["me"] = polls.voter_state(request.auth, poll)
    body["results_visible"] = polls.can_see_results(request.auth, poll)
    return body


# Each must be an option id of the poll: anything else is 422 invalid_choice. Parsed by hand (api.body).
_BALLOT_BODY = openapi_body(
    {"type": "object", "required": ["option_ids"], "properties": {"option_ids": {"type": "array", "items": {}}}}
)


@router.post("/polls/{int:poll_id}/ballots", response={201: dict}, openapi_extra=_BALLOT_BODY)
def ballot_cast(request: HttpRequest, poll_id: int):
    option_ids = required_list(json_object(request, required=True), "option_ids")
    ip = client_ip(request)
    device, identified = ratelimit.device_hash(
        request.headers.get("X-Device-Id", ""), request.headers.get("User-Agent", ""), ip
    )
    ballot = polls.cast_ballot(request.auth, poll_id, option_ids, ip=ip, device=device, device_identified=identified)
    # Built by hand: the hot path of a vote rush (as /me in api.py).
    return _json(
        {
            "receipt": ballot.receipt,
            "receipt_display": display(ballot.receipt),
            "poll_id": ballot.poll_id,
            "n": ballot.n,
            "day": ballot.day.isoformat(),
            "created_at": ballot.created_at.isoformat(),
        },
        201,
    )


@router.get("/polls/{int:poll_id}/results")
def poll_results(request: HttpRequest, poll_id: int):
    poll = polls.poll_for_user(request.auth, poll_id)
    return polls.results_for(request.auth, poll)


@router.post("/polls/{int:poll_id}/close")
def poll_close(request: HttpRequest, poll_id: int):
    poll = polls.poll_for_cadre(request.auth, poll_id, admin=True)
    poll = polls.close_poll(request.auth, poll, ip=client_ip(request))
    body = poll_out(poll, options=False)
    body["tally"] = polls.results(poll)
    return body


class ReceiptQuery(Paging):
    page_size: int = 100
    q: str = ""
    # Keyset cursors (ballot ids from a previous answer's next_after / prev_before): every page costs
    # the same, where ?page=N reads past (N-1) × page_size ballots first.
    after: int | None = None
    before: int | None = None


def _public_poll(poll_id: int) -> Poll:
    """A poll whose record is public: closed. An open one answers as a missing one, since anyone
    may call this and a members-only poll's existence is not theirs to learn (the portal does the
    same)."""
    poll = Poll.objects.select_related("org").defer("chain_checkpoints").filter(pk=poll_id).first()
    if poll is None or not polls.is_closed(poll):
        raise NotFound(_("未找到该投票"))
    return polls.ensure_sealed(poll)


@router.get("/polls/{int:poll_id}/receipts", auth=None)
def poll_receipts(request: HttpRequest, poll_id: int, query: Query[ReceiptQuery]):
    """Public after close: every ballot's receipt and choices in id order, voided ones marked
    (`?q=` finds one receipt, typed with or without dashes). Page with `?after=<next_after>` (or
    `?before=<prev_before>`) from the previous answer: the same cost on any page. `?page=` still
    works, and answers `next_after` too."""
    poll = _public_poll(poll_id)
    if query.q.strip():
        poll = polls.require_closed(poll)
        found = polls.find_receipt(poll, query.q)
        return {"items": [found] if found else [], "count": 1 if found else 0}
    size = min(max(1, query.page_size), MAX_PAGE_SIZE)
    for name in ("after", "before"):
        value = getattr(query, name)
        if value is not None and not 0 <= value < 2**62:
            raise Invalid("invalid", _("翻页位置无效"), fields={name: _("应为上一页返回的编号")})
    if query.after is not None or query.before is not None:
        return polls.receipts_window(poll, after=query.after, before=query.before, size=size)
    body = polls.receipts_page(poll, query.page, size)
    full = len(body["items"]) == size
    body["next_after"] = body["items"][-1]["id"] if full else None
    return body


@router.get("/polls/{int:poll_id}/recount")
def poll_recount(request: HttpRequest, poll_id: int):
    """After close: the ballots counted again and the chain recomputed, against what was published.
    The recount stored on the poll (counted at the seal, again daily by close_polls and by
    recount_poll), with `recounted_at`: a big poll is never counted per request."""
    poll = polls.poll_for_user(request.auth, poll_id)
    poll = polls.require_closed(poll)  # after close only; sealed first if nobody has
    latest = polls.latest_recount(poll)
    if latest is None:
        raise DomainError(VoteErrors.RECOUNT_PENDING, _("正在重新计票，请稍后再试"))
    rc, recounted_at = latest
    return {
        "tally": rc.tally,
        "chain_head": rc.chain_head,
        "ballots": rc.ballots,
        "tally_matches": rc.tally_matches,
        "chain_matches": rc.chain_matches,
        "first_bad_checkpoint": rc.first_bad_checkpoint,
        "published_tally": rc.published_tally,
        "published_head": rc.published_head,
        "recounted_at": _iso(recounted_at),
    }


class MonitorQuery(Schema):
    hours: float | None = None


@router.get("/polls/{int:poll_id}/monitor")
def poll_monitor(request: HttpRequest, poll_id: int, query: Query[MonitorQuery]):
    poll = polls.poll_for_cadre(request.auth, poll_id)
    hours = query.hours if query.hours is None or 0 < query.hours <= 24 * 366 else None
    return monitor.monitor(poll, hours=hours)


class VoidIn(Schema):
    reason: str
    ip_prefix: str | None = None
    device: str | None = None
    new_accounts_only: StrictBool = False
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    ballot_ids: list[StrictInt] | None = None


def void_out(batch) -> dict:
    return {
        "id": batch.pk,
        "poll_id": batch.poll_id,
        "reason": batch.reason,
        "criteria": batch.criteria,
        "ballots": batch.ballots,
        "created_at": _iso(batch.created_at),
    }


@router.post("/polls/{int:poll_id}/voids", response={201: dict})
def poll_void(request: HttpRequest, poll_id: int, payload: VoidIn):
    poll = polls.poll_for_cadre(request.auth, poll_id, admin=True)
    batch = monitor.void_ballots(request.auth, poll, ip=client_ip(request), **payload.dict())
    return Status(201, void_out(batch))


@router.get("/polls/{int:poll_id}/voids")
def poll_voids(request: HttpRequest, poll_id: int):
    poll = polls.poll_for_cadre(request.auth, poll_id)
    batches = list(poll.void_batches.order_by("-id"))
    return {"items": [void_out(b) for b in batches], "count": len(batches)}


# --- contests --------------------------------------------------------------------------------------


class JudgesIn(Schema):
    user_ids: list[StrictInt]


@router.put("/polls/{int:poll_id}/judges")
def contest_judges_set(request: HttpRequest, poll_id: int, payload: JudgesIn):
    poll = polls.poll_for_cadre(request.auth, poll_id, admin=True)
    contest.set_judges(request.auth, poll, payload.user_ids, ip=client_ip(request))
    return {"items": contest.judge_progress(poll)}


@router.get("/polls/{int:poll_id}/judges")
def contest_judges(request: HttpRequest, poll_id: int):
    poll = polls.poll_for_cadre(request.auth, poll_id)
    return {"items": contest.judge_progress(poll)}


class CriterionIn(Schema):
    id: StrictInt | None = None
    name: str
    max_score: StrictInt = 10
    weight: StrictInt = 1


class CriteriaIn(Schema):
    criteria: list[CriterionIn]


def _criteria_out(poll: Poll) -> dict:
    return {
        "items": [
            {"id": c.pk, "name": c.name, "max_score": c.max_score, "weight": c.weight} for c in poll.criteria.all()
        ]
    }


@router.put("/polls/{int:poll_id}/criteria")
def contest_criteria_set(request: HttpRequest, poll_id: int, payload: CriteriaIn):
    poll = polls.poll_for_cadre(request.auth, poll_id, admin=True)
    contest.set_criteria(
        request.auth, poll, [c.dict(exclude_none=True) for c in payload.criteria], ip=client_ip(request)
    )
    return _criteria_out(poll)


def _poll_for_judge_or_reader(user, poll_id: int) -> Poll:
    """Judges reach their contest wherever they are; others by the usual rule (404 otherwise)."""
    if Judge.objects.filter(poll_id=poll_id, user_id=user.pk).exists():
        return Poll.objects.select_related("org").defer("chain_checkpoints").get(pk=poll_id)
    return polls.poll_for_user(user, poll_id)


@router.get("/polls/{int:poll_id}/criteria")
def contest_criteria(request: HttpRequest, poll_id: int):
    return _criteria_out(_poll_for_judge_or_reader(request.auth, poll_id))


class ScoresIn(Schema):
    option_id: StrictInt
    scores: dict[str, Any]


@router.post("/polls/{int:poll_id}/scores")
def contest_scores(request: HttpRequest, poll_id: int, payload: ScoresIn):
    poll = _poll_for_judge_or_reader(request.auth, poll_id)
    saved = contest.submit_scores(request.auth, poll, payload.option_id, payload.scores)
    return {
        "option_id": payload.option_id,
        "scores": {str(s.criterion_id): str(s.score) for s in saved},
    }


@router.get("/polls/{int:poll_id}/ranking")
def contest_ranking(request: HttpRequest, poll_id: int):
    poll = polls.poll_for_cadre(request.auth, poll_id)
    rows = contest.ranking(poll)
    for r in rows:
        r.pop("final_decimal", None)
    return {"items": rows, "progress": contest.judge_progress(poll)}


class AwardsIn(Schema):
    resolutions: dict[str, str | None] | None = None


def _awards_out(awards) -> dict:
    return {
        "items": [
            {
                "option_id": a.option_id,
                "title": a.option.title,
                "tier": a.tier,
                "rank": a.rank,
                "final_score": str(a.final_score),
            }
            for a in awards
        ]
    }


@router.post("/polls/{int:poll_id}/awards", response={201: dict})
def contest_publish(request: HttpRequest, poll_id: int, payload: AwardsIn):
    poll = polls.poll_for_cadre(request.auth, poll_id, admin=True)
    awards = contest.publish_awards(request.auth, poll, payload.resolutions, ip=client_ip(request))
    return Status(201, _awards_out(awards))


@router.get("/polls/{int:poll_id}/awards")
def contest_awards(request: HttpRequest, poll_id: int):
    poll = polls.poll_for_user(request.auth, poll_id)
    return _awards_out(poll.awards.select_related("option").order_by("rank", "id"))
