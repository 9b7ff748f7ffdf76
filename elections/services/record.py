"""The public record of a closed election, and the recount that anyone can run against it.

The record holds everything needed to check the result and nothing personal: the roll's size
(not its names), every receipt (sorted; a receipt proves that its holder took part, and nothing
about the choice: it is drawn at random and stored only on the participation row, never on or
beside the ballot), every anonymous ballot (its random public id and marks, in public-id order,
with the running hash of the chain), the chain head, the receipts digest and the published
result. The voter is never shown their ballot's public id, so they cannot point at "their"
ballot to prove a choice to anyone.

A recount recomputes the tally and outcome from the ballots with the same counting function as
the close (elections.services.counting), recomputes the chain, and compares both with what was
published at close. A ballot removed, added or altered after close changes the chain head;
a receipt removed or added changes the receipts digest and count.

Few ballots: below MIN_PUBLISHED_BALLOTS the record publishes the totals only (no ballot list, no
receipt list). With two voters, the list of ballots tells each voter the other's whole ballot and
tells anyone who saw one voter's marks (or who voted first, if order ever leaked) the rest; the
totals cannot be withheld (they are the result). Five is the smallest cell that statistical
offices publish, and the batch a ballot hides in grows with the roll from there.

A closed election's record never changes, so it is computed once and kept in the cache under its
election, chain head and closing time (`sealed_record`, `sealed_record_json`); the recount is kept
for RECOUNT_SECONDS only, so tampering with the stored ballots shows on the public recount within
that time (`manage.py recount_election` always recomputes).
"""

from __future__ import annotations

import dataclasses
import json

from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Election, ElectionStatus
from . import chain, counting
from .elections import candidates_of, rules_of, stored_ballots, stored_receipts

MIN_PUBLISHED_BALLOTS = 5
RECORD_SECONDS = 7 * 24 * 3600
RECOUNT_SECONDS = 600

COMPARED = ("eligible", "voted", "valid", "quorum_met", "candidates", "runoff_candidate_ids", "state", "open_seats")


def withheld(election: Election) -> bool:
    """Too few ballots to publish them one by one: the record shows the totals only."""
    return int((election.result or {}).get("ballots") or 0) < MIN_PUBLISHED_BALLOTS


def public_record(election: Election) -> dict:
    """The record of a closed election (callers check it is closed), computed now."""
    hidden = withheld(election)
    ballots = [] if hidden else stored_ballots(election)
    hashes = chain.links(election.pk, ballots)
    return {
        "id": election.pk,
        "title": election.title,
        "org": {"id": election.org_id, "name": election.org.name},
        "round": election.round,
        "kind": election.kind,
        "parent_id": election.parent_id,
        "seats": election.seats,
        "majority_of": election.majority_of,
        "quorum": election.quorum,
        "opens_at": election.opens_at.isoformat(),
        "closes_at": election.closes_at.isoformat(),
        "closed_at": election.closed_at.isoformat() if election.closed_at else None,
        "closed_early": election.closed_early,
        "eligible": election.eligible,
        "candidates": [{"id": c.pk, "name": c.name} for c in candidates_of(election)],
        "result": election.result,
        "algorithm": chain.ALGORITHM,
        "chain_head": election.chain_head,
        "withheld": hidden,
        "min_published_ballots": MIN_PUBLISHED_BALLOTS,
        "receipts": [] if hidden else stored_receipts(election),
        "ballots": [{"id": pid, "marks": marks, "chain": h} for (pid, marks), h in zip(ballots, hashes, strict=True)],
    }


def _sealed_key(election: Election, what: str) -> str:
    # The closing time too: a test database hands the same id and (with no ballots) head out again.
    closed = election.closed_at.timestamp() if election.closed_at else 0
    return f"election-{what}:v1:{election.pk}:{election.chain_head}:{closed}"


def sealed_record(election: Election) -> dict:
    """public_record, computed once per closed election and then served from the cache."""
    key = _sealed_key(election, "record")
    record = cache.get(key)
    if record is None:
        record = public_record(election)
        cache.set(key, record, RECORD_SECONDS)
    return record


def sealed_record_json(election: Election) -> bytes:
    """The record as the downloadable JSON text (UTF-8), encoded once and cached."""
    key = _sealed_key(election, "record-json")
    body = cache.get(key)
    if body is None:
        body = json.dumps(sealed_record(election), ensure_ascii=False, indent=1).encode()
        cache.set(key, body, RECORD_SECONDS)
    return body


def sealed_recount(election: Election) -> Recount:
    """recount, served from the cache for up to RECOUNT_SECONDS after it last ran."""
    key = _sealed_key(election, "recount")
    result = cache.get(key)
    if result is None:
        result = recount(election)
        cache.set(key, result, RECOUNT_SECONDS)
    return result


@dataclasses.dataclass
class Recount:
    matches: bool
    findings: list[str]
    recomputed: dict
    published: dict
    chain_head: str
    published_chain_head: str
    ballots: int
    receipts: int
    computed_at: str = ""


def _compare(recomputed: dict, published: dict, findings: list[str]) -> None:
    names = {
        "eligible": _("应到人数"),
        "voted": _("实到（投票）人数"),
        "valid": _("有效票"),
        "quorum_met": _("是否达到参选人数要求"),
        "candidates": _("各候选人得票与当选"),
        "runoff_candidate_ids": _("需再次投票的候选人"),
        "state": _("选举结果状态"),
        "open_seats": _("待补名额"),
    }
    for key in COMPARED:
        if recomputed.get(key) != published.get(key):
            findings.append(
                _("%(what)s不一致：公布 %(pub)s，重新计算 %(new)s")
                % {"what": names[key], "pub": published.get(key), "new": recomputed.get(key)}
            )


def _check(
    election_id: int,
    rules: counting.Rules,
    eligible: int,
    candidate_ids: list[int],
    ballots: list[tuple[str, dict]],
    receipts: list[str],
    published: dict,
    published_head: str,
) -> Recount:
    findings: list[str] = []
    recomputed = counting.count(rules, eligible, candidate_ids, [m for _i, m in ballots])
    head = chain.head(election_id, ballots)
    if head != published_head:
        findings.append(_("选票哈希链的链头与结束时公布的不一致：选票在公布后被增加、删除或修改过"))
    if published.get("chain_head") not in (None, published_head):
        findings.append(_("结果中记录的链头与公布的链头不一致"))
    if len(receipts) != len(ballots):
        findings.append(_("回执数（%(r)s）与选票数（%(b)s）不一致") % {"r": len(receipts), "b": len(ballots)})
    if "receipts_digest" in published and chain.receipts_digest(receipts) != published["receipts_digest"]:
        findings.append(_("回执清单与结束时公布的摘要不一致"))
    _compare(recomputed, published, findings)
    return Recount(
        matches=not findings,
        findings=findings,
        recomputed=recomputed,
        published=published,
        chain_head=head,
        published_chain_head=published_head,
        ballots=len(ballots),
        receipts=len(receipts),
        computed_at=timezone.now().isoformat(),
    )


def recount(election: Election) -> Recount:
    """Recompute from the stored ballots and receipts; compare with the published result."""
    if election.status != ElectionStatus.CLOSED or not election.result:
        raise ValueError("recount needs a closed election")
    return _check(
        election.pk,
        rules_of(election),
        election.eligible,
        [c.pk for c in candidates_of(election)],
        stored_ballots(election),
        stored_receipts(election),
        election.result,
        election.chain_head,
    )


def verify_record(record: dict) -> Recount:
    """The same check from a downloaded record alone (no database): `recount_election --json FILE`."""
    published = record.get("result") or {}
    if record.get("withheld"):
        n = record.get("min_published_ballots", MIN_PUBLISHED_BALLOTS)
        return Recount(
            matches=False,
            findings=[_("选票少于 %(n)s 张，公开记录只有总数，不能离线重新计票") % {"n": n}],
            recomputed={"candidates": []},
            published=published,
            chain_head="",
            published_chain_head=record.get("chain_head") or "",
            ballots=0,
            receipts=0,
        )
    rules = counting.Rules(
        seats=int(record["seats"]),
        quorum=record.get("quorum", "two_thirds"),
        majority_of=record.get("majority_of", "eligible"),
        kind=record.get("kind", "regular"),
    )
    ballots = [(b["id"], b["marks"]) for b in record.get("ballots") or []]
    out = _check(
        int(record["id"]),
        rules,
        int(record["eligible"]),
        [int(c["id"]) for c in record.get("candidates") or []],
        ballots,
        list(record.get("receipts") or []),
        published,
        record.get("chain_head") or "",
    )
    listed = [b.get("chain") for b in sorted(record.get("ballots") or [], key=lambda b: b["id"])]
    if any(listed) and listed != chain.links(int(record["id"]), ballots):
        out.findings.append(_("记录中逐张选票的链值与重新计算的不一致"))
        out.matches = False
    return out
