"""Elections (API.md "Votes": /elections): create, read, cast a secret ballot, close, results, rounds,
and the public record and recount that anyone can check."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError

from core import idempotency
from core.audit import client_ip
from core.errors import Invalid, NotFound
from elections.models import Election, ElectionStatus
from elections.services import elections as svc
from elections.services import record as records
from orgs import scoping

from .pagination import page_of

router = Router(tags=["elections"])


class CandidateIn(Schema):
    name: str


class ElectionIn(Schema):
    org_id: int
    title: str
    seats: int
    candidates: list[CandidateIn]
    voters: str | list[int] = "members"
    majority_of: str = "eligible"
    quorum: str = "two_thirds"
    opens_at: dt.datetime | None = None
    closes_at: dt.datetime


def _candidates(election: Election) -> list[dict]:
    return [{"id": c.pk, "name": c.name} for c in svc.candidates_of(election)]


def election_out(election: Election, user=None) -> dict:
    body = {
        "id": election.pk,
        "org": {"id": election.org_id, "name": election.org.name},
        "title": election.title,
        "seats": election.seats,
        "round": election.round,
        "kind": election.kind,
        "parent_id": election.parent_id,
        "majority_of": election.majority_of,
        "quorum": election.quorum,
        "secret": True,
        "opens_at": election.opens_at.isoformat(),
        "closes_at": election.closes_at.isoformat(),
        "status": election.status,
        "accepting_ballots": svc.is_accepting(election),
        "eligible": election.eligible,
        "voted": svc.turnout(election),
        "candidates": _candidates(election),
        "closed_at": election.closed_at.isoformat() if election.closed_at else None,
    }
    if user is not None:
        voter = svc.on_roll(user, election)
        body["me"] = {
            "on_roll": voter is not None,
            "voted": bool(voter and voter.voted_at),
            "receipt": voter.receipt if voter else None,
        }
    return body


def results_out(election: Election) -> dict:
    """API.md's fields first, then the extras (seats, state, chain head…)."""
    result = dict(election.result or {})
    body = {k: result.get(k) for k in svc.API_RESULT_FIELDS}
    body.update({k: v for k, v in result.items() if k not in body})
    return body


@router.post("/elections", response={201: dict})
def election_create(request: HttpRequest, payload: ElectionIn):
    org = scoping.org_for_cadre(request.auth, payload.org_id, admin=True)
    election = svc.create_election(
        request.auth,
        org,
        title=payload.title,
        seats=payload.seats,
        candidates=[c.name for c in payload.candidates],
        voters=payload.voters,
        majority_of=payload.majority_of,
        quorum=payload.quorum,
        opens_at=payload.opens_at,
        closes_at=payload.closes_at,
        ip=client_ip(request),
    )
    body = election_out(election)
    return Status(201, {"id": election.pk, "eligible": election.eligible, **body})


class ListFilter(Schema):
    page: int = 1
    page_size: int = 50
    status: str | None = None


@router.get("/elections", response=dict)
def election_list(request: HttpRequest, filters: Query[ListFilter]):
    """Elections the caller manages (a cadre's subtree) or is on the roll of, newest first."""
    user = request.auth
    qs = Election.objects.filter(pk__in=svc.elections_for_voter(user).values("pk"))
    if scoping.is_cadre(user):
        qs = qs | svc.elections_for_cadre(user)
    if filters.status in ElectionStatus.values:
        qs = qs.filter(status=filters.status)
    items, count = page_of(qs.select_related("org").order_by("-created_at", "-id"), filters.page, filters.page_size)
    return {"items": [election_out(e) for e in items], "count": count}


@router.get("/elections/{int:election_id}", response=dict)
def election_detail(request: HttpRequest, election_id: int):
    election = svc.close_if_due(svc.election_for(request.auth, election_id))
    return election_out(election, request.auth)


def _marks_body(request: HttpRequest) -> object:
    """The body, parsed here rather than by a schema: a JSON object that names one candidate twice
    is an error (a schema would silently keep the last), and a body that is not JSON is a 400."""

    def no_duplicates(pairs):
        keys = [k for k, _v in pairs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise _Duplicate(dupes)
        return dict(pairs)

    try:
        body = json.loads(request.body or b"null", object_pairs_hook=no_duplicates)
    except _Duplicate as d:
        fields = {f"marks.{k}": _("同一候选人出现了多次") for k in d.keys}
        raise Invalid(svc.ElectionErrors.INVALID_CHOICE, _("选票上同一候选人出现了多次"), fields=fields) from None
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "bad_request") from None
    if not isinstance(body, dict):
        raise Invalid("invalid", _('请求体应为对象：{"marks": {...}}'), fields={"body": _("应为对象")})
    if "marks" not in body:
        raise Invalid("invalid", _("请求参数无效：marks"), fields={"marks": _("必填")})
    return body["marks"]


@dataclasses.dataclass
class _Duplicate(Exception):
    keys: list[str]


# Its own url_name: the poll ballot's view is also called ballot_cast, and only this one is secret.
@router.post("/elections/{int:election_id}/ballots", response={201: dict}, url_name="election_ballot_cast")
def ballot_cast(request: HttpRequest, election_id: int):
    """Cast the caller's secret ballot: `{"marks": {"<candidate id>": "for"|"against"|"abstain"}}`."""
    svc.election_for(request.auth, election_id)  # 404 before reading the body
    receipt = svc.cast_ballot(request.auth, election_id, _marks_body(request))
    return Status(201, {"receipt": receipt})


def _ballot_replayed(user, kwargs: dict) -> HttpResponse:
    """A retried ballot (same Idempotency-Key) that succeeded the first time: the receipt again,
    read from the roll row, since the idempotency record keeps nothing of the first answer."""
    receipt = svc.receipt_of(user, kwargs["election_id"])
    return HttpResponse(json.dumps({"receipt": receipt}), status=201, content_type="application/json")


# Neither the marks nor the receipt are kept beside the key (core.idempotency "Secret operations").
idempotency.keeps_secret("api:election_ballot_cast", _ballot_replayed)


@router.post("/elections/{int:election_id}/close", response=dict)
def election_close(request: HttpRequest, election_id: int):
    election = svc.close_election(request.auth, election_id, ip=client_ip(request))
    return results_out(election)


@router.get("/elections/{int:election_id}/results", response=dict)
def election_results(request: HttpRequest, election_id: int):
    return results_out(svc.results_for(request.auth, election_id))


class RoundIn(Schema):
    kind: str
    closes_at: dt.datetime
    opens_at: dt.datetime | None = None
    candidate_ids: list[int] | None = None


@router.post("/elections/{int:election_id}/rounds", response={201: dict})
def election_next_round(request: HttpRequest, election_id: int, payload: RoundIn):
    """Start the run-off or further round that the results offer (`kind`: "runoff" | "further")."""
    child = svc.start_next_round(
        request.auth,
        election_id,
        kind=payload.kind,
        opens_at=payload.opens_at,
        closes_at=payload.closes_at,
        candidate_ids=payload.candidate_ids,
        ip=client_ip(request),
    )
    return Status(201, election_out(child))


def _closed(election_id: int) -> Election:
    """A closed election, whose record is public; an open one answers as a missing one (anyone may
    call the record operations, and an open election of a union's members is not theirs to learn)."""
    election = svc.close_if_due(svc.get_election(election_id))
    if election.status != ElectionStatus.CLOSED:
        raise NotFound(_("未找到该选举"))
    return election


@router.get("/elections/{int:election_id}/record", auth=None, response=dict)
def election_record(request: HttpRequest, election_id: int):
    """Public after close: receipts, anonymous ballots, chain head and result (`recount_election --json`);
    with fewer than 5 ballots the totals only (`withheld`: true, empty lists). Computed once, then cached."""
    body = records.sealed_record_json(_closed(election_id))
    return HttpResponse(body, content_type="application/json; charset=utf-8")


@router.get("/elections/{int:election_id}/recount", auth=None, response=dict)
def election_recount(request: HttpRequest, election_id: int):
    """Public after close: the tally recomputed now from the stored ballots, against the published one."""
    r = records.sealed_recount(_closed(election_id))
    return {
        "matches": r.matches,
        "findings": r.findings,
        "ballots": r.ballots,
        "receipts": r.receipts,
        "chain_head": r.chain_head,
        "published_chain_head": r.published_chain_head,
        "recomputed": r.recomputed,
        "computed_at": r.computed_at,
    }
