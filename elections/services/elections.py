"""选举: create an election with its roll, cast a secret ballot, close and publish, start the next round.

Every page, the API and the commands call these functions; each checks permission, enforces
the rule in the database, writes the audit row and raises a DomainError with API.md's code.

Concurrency, on SQLite and PostgreSQL alike:

- One ballot per voter: the roll row is UNIQUE (election, user), and a ballot is accepted only
  by ``UPDATE … SET voted_at, receipt WHERE election, user AND voted_at IS NULL`` in the same
  transaction as the ballot insert. Forty simultaneous ballots of one voter: one UPDATE hits the
  row, the others wait on its lock and then find ``voted_at`` set (409 already_voted), and their
  transactions roll back with nothing written. No check-then-insert.
- Where the ballot goes: the voter's transaction puts it in the pool; a flush moves it into the
  counted ballots later, in a shuffled batch (elections.services.ballots says why).
- Ballots and the close cannot interleave: a ballot takes a shared lock on the election row
  (``FOR SHARE`` on PostgreSQL) before it checks the status; closing takes ``FOR UPDATE`` on the
  same row, so it waits for the ballots in flight and every ballot after it sees the election
  closed. So the published tally covers exactly the stored ballots. (SQLite runs one writer at a
  time — BEGIN IMMEDIATE — which gives the same order.)
- Closing twice is impossible: the close is a conditional ``UPDATE … WHERE status = 'open'``
  under that row lock; a second closer (the admin's button, cron, a late results request) finds
  it closed.
- Time windows are the server's clock, checked inside the ballot's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterable, Mapping

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Forbidden, Invalid, NotFound
from core.sql import aware
from members.models import Member
from members.services import standing_of
from orgs import scoping
from orgs.models import Org

from ..models import (
    Candidate,
    Election,
    ElectionBallot,
    ElectionStatus,
    ElectionVoter,
    MajorityBase,
    Quorum,
    RoundKind,
)
from . import ballots, chain, counting

MAX_SEATS = 100
MAX_CANDIDATES = 200
MAX_ROLL_IDS = 100_000
RECEIPT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed back


class ElectionErrors:
    NOT_ELIGIBLE = "not_eligible"
    ALREADY_VOTED = "already_voted"
    POLL_CLOSED = "poll_closed"
    POLL_NOT_OPEN = "poll_not_open"
    TOO_MANY_FOR = "too_many_for"
    INVALID_CHOICE = "invalid_choice"
    NOT_CLOSED = "not_closed"
    ALREADY_CLOSED = "already_closed"
    ROUND_NOT_OFFERED = "round_not_offered"
    ROUND_EXISTS = "round_exists"
    INVALID_ROLL = "invalid_roll"
    EMPTY_ROLL = "empty_roll"
    INVALID_CANDIDATES = "invalid_candidates"
    INVALID_VALUE = "invalid_value"
    INVALID_WINDOW = "invalid_window"
    ADMIN_REQUIRED = "admin_required"


# --- small cleaners -----------------------------------------------------------------------------


def _int(value: object, field: str, *, low: int, high: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if not ok:
        msg = _("应为 %(low)s 到 %(high)s 之间的整数") % {"low": low, "high": high}
        raise Invalid(ElectionErrors.INVALID_VALUE, msg, fields={field: msg})
    return value


def _when(value: object, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise Invalid(ElectionErrors.INVALID_WINDOW, _("请填写时间"), fields={field: _("必填")})
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _window(opens_at: object, closes_at: object, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    opens = _when(opens_at, "opens_at") if opens_at is not None else now
    closes = _when(closes_at, "closes_at")
    if closes <= now or closes <= opens:
        msg = _("截止时间应晚于当前时间和开始时间")
        raise Invalid(ElectionErrors.INVALID_WINDOW, msg, fields={"closes_at": msg})
    return opens, closes


def _title(value: object) -> str:
    title = str(value or "").strip()
    if not title or len(title) > 100:
        msg = _("请填写选举名称（不超过100字）")
        raise Invalid("invalid_title", msg, fields={"title": _("必填，不超过100字")})
    return title


def _candidate_names(raw: object, seats: int) -> list[str]:
    if not isinstance(raw, list | tuple):
        raise Invalid(
            ElectionErrors.INVALID_CANDIDATES, _("请填写候选人名单"), fields={"candidates": _("应为候选人列表")}
        )
    names: list[str] = []
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else item
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            fields[f"candidates.{i}.name"] = _("姓名不能为空")
        elif len(name) > 50:
            fields[f"candidates.{i}.name"] = _("不能超过50个字")
        elif name in seen:
            fields[f"candidates.{i}.name"] = _("与前面的候选人重名")
        seen.add(name)
        names.append(name)
    if fields:
        raise Invalid(ElectionErrors.INVALID_CANDIDATES, _("候选人名单有误"), fields=fields)
    if len(names) < seats:
        msg = _("候选人人数（%(n)s）不能少于应选名额（%(seats)s）") % {"n": len(names), "seats": seats}
        raise Invalid(ElectionErrors.INVALID_CANDIDATES, msg, fields={"candidates": msg})
    if len(names) > MAX_CANDIDATES:
        msg = _("候选人最多 %(n)s 名") % {"n": MAX_CANDIDATES}
        raise Invalid(ElectionErrors.INVALID_CANDIDATES, msg, fields={"candidates": msg})
    return names


def _roll_ids(raw: object) -> list[int]:
    if not isinstance(raw, list | tuple) or not raw:
        msg = _('投票人应为 "members"（全体会员）或会员编号列表（代表名单）')
        raise Invalid(ElectionErrors.INVALID_ROLL, msg, fields={"voters": msg})
    if len(raw) > MAX_ROLL_IDS:
        msg = _("代表名单最多 %(n)s 人") % {"n": MAX_ROLL_IDS}
        raise Invalid(ElectionErrors.INVALID_ROLL, msg, fields={"voters": msg})
    ids: list[int] = []
    bad: list[str] = []
    dupes: list[str] = []
    seen: set[int] = set()
    for value in raw:
        try:
            n = int(value) if not isinstance(value, bool | float) else None
        except (TypeError, ValueError):
            n = None
        if n is None or n <= 0:
            bad.append(str(value))
        elif n in seen:
            dupes.append(str(n))
        else:
            seen.add(n)
            ids.append(n)
    if bad or dupes:
        parts = []
        if bad:
            parts.append(_("不是会员编号：%(ids)s") % {"ids": "、".join(bad[:50])})
        if dupes:
            parts.append(_("重复：%(ids)s") % {"ids": "、".join(dupes[:50])})
        msg = "；".join(parts)
        raise Invalid(ElectionErrors.INVALID_ROLL, msg, fields={"voters": msg})
    return ids


def _id_list(raw: object) -> list[int] | None:
    """A list of positive integer ids (numbers or digit strings), or None if it is not one."""
    if not isinstance(raw, list | tuple):
        return None
    out = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
            return None
        out.append(int(value))
    return out


def _choice(value: object, choices, field: str, default: str) -> str:
    value = default if value in (None, "") else value
    if value not in choices.values:
        msg = _("可选值：%(values)s") % {"values": "、".join(choices.values)}
        raise Invalid(ElectionErrors.INVALID_VALUE, msg, fields={field: msg})
    return value


# --- creating -----------------------------------------------------------------------------------

_MEMBERS_ROLL_SQL = (
    "INSERT INTO elections_electionvoter (election_id, user_id)"
    " SELECT %s, m.user_id FROM members_member m JOIN orgs_org o ON o.id = m.org_id"
    " WHERE o.path LIKE %s AND m.certified_at IS NOT NULL"
)


def _admin_over(actor, org: Org, message: str) -> None:
    if not scoping.covers(actor, org):
        raise NotFound(_("未找到该选举"))
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden(ElectionErrors.ADMIN_REQUIRED, message)


@transaction.atomic
def create_election(
    actor,
    org: Org,
    *,
    title: object,
    seats: object,
    candidates: object,
    voters: object = "members",
    majority_of: object = MajorityBase.ELIGIBLE,
    quorum: object = Quorum.TWO_THIRDS,
    opens_at: object = None,
    closes_at: object = None,
    ip: str | None = None,
) -> Election:
    """A new open election (secret ballot) with its roll frozen now: one ElectionVoter per voter."""
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden(ElectionErrors.ADMIN_REQUIRED, _("只有该组织或上级组织的管理员可以发起选举"))
    now = timezone.now()
    title = _title(title)
    seats = _int(seats, "seats", low=1, high=MAX_SEATS)
    names = _candidate_names(candidates, seats)
    majority_of = _choice(majority_of, MajorityBase, "majority_of", MajorityBase.ELIGIBLE)
    quorum = _choice(quorum, Quorum, "quorum", Quorum.TWO_THIRDS)
    opens, closes = _window(opens_at, closes_at, now)
    roll_ids: list[int] | None = None
    if voters != "members":
        roll_ids = _roll_ids(voters)
        found = set(
            Member.objects.filter(
                user_id__in=roll_ids, org__path__startswith=org.path, certified_at__isnull=False
            ).values_list("user_id", flat=True)
        )
        missing = [str(i) for i in roll_ids if i not in found]
        if missing:
            msg = _("这些编号不是本组织（含下级）的认证会员：%(ids)s") % {"ids": "、".join(missing[:50])}
            if len(missing) > 50:
                msg += _(" 等 %(n)s 个") % {"n": len(missing)}
            raise Invalid(ElectionErrors.INVALID_ROLL, msg, fields={"voters": msg})
    election = Election.objects.create(
        org=org,
        title=title,
        seats=seats,
        majority_of=majority_of,
        quorum=quorum,
        roll_kind="members" if roll_ids is None else "delegates",
        opens_at=opens,
        closes_at=closes,
        created_by=actor,
    )
    Candidate.objects.bulk_create([Candidate(election=election, name=name, position=i) for i, name in enumerate(names)])
    if roll_ids is None:
        # One statement however large the subtree (a district has tens of thousands of members).
        with connection.cursor() as cursor:
            cursor.execute(_MEMBERS_ROLL_SQL, [election.pk, org.path + "%"])
    else:
        ElectionVoter.objects.bulk_create(
            [ElectionVoter(election=election, user_id=uid) for uid in roll_ids], batch_size=2000
        )
    eligible = ElectionVoter.objects.filter(election=election).count()
    if eligible == 0:
        msg = _("该组织（含下级）还没有认证会员，无法生成选民名单")
        raise Invalid(ElectionErrors.EMPTY_ROLL, msg, fields={"voters": msg})
    Election.objects.filter(pk=election.pk).update(eligible=eligible)
    election.eligible = eligible
    audit.record(
        actor,
        "election.create",
        org=org,
        target=election,
        summary=f"{title} · {seats}名 · {len(names)}名候选人 · {eligible}名选民",
        data={"roll": election.roll_kind, "majority_of": majority_of, "quorum": quorum},
        ip=ip,
    )
    return election


# --- finding ------------------------------------------------------------------------------------


def get_election(election_id: object) -> Election:
    try:
        return Election.objects.select_related("org").get(pk=int(election_id))
    except (Election.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("未找到该选举")) from None


def on_roll(user, election: Election) -> ElectionVoter | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return ElectionVoter.objects.filter(election=election, user=user).first()


def can_see(user, election: Election) -> bool:
    """A cadre over the org, a member of its subtree, or a voter on its roll."""
    if scoping.covers(user, election.org):
        return True
    path = standing_of(user).org_path
    if path is not None and path.startswith(election.org.path):
        return True
    return ElectionVoter.objects.filter(election=election, user=user).exists()


def election_for(user, election_id: object) -> Election:
    """The election if the person may see it; NotFound (the same as missing) otherwise."""
    election = get_election(election_id)
    if not can_see(user, election):
        raise NotFound(_("未找到该选举"))
    return election


def elections_for_cadre(user) -> QuerySet[Election]:
    return scoping.scoped(Election.objects.select_related("org"), user, "org__path")


def elections_for_voter(user) -> QuerySet[Election]:
    """Elections with this person on the roll."""
    return Election.objects.filter(voters__user=user).select_related("org")


def turnout(election: Election) -> int:
    """How many on the roll have voted: a count only, never a partial tally."""
    return ElectionVoter.objects.filter(election=election, voted_at__isnull=False).count()


def candidates_of(election: Election) -> list[Candidate]:
    return list(Candidate.objects.filter(election=election).order_by("position", "id"))


def is_accepting(election: Election, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return election.status == ElectionStatus.OPEN and election.opens_at <= now < election.closes_at


# --- voting -------------------------------------------------------------------------------------


def clean_marks(raw: object, candidate_ids: Iterable[int], seats: int) -> dict[str, str]:
    """{"<candidate id>": mark} for every candidate (unmarked = abstain), or Invalid naming the field.

    Keys must be this election's candidate ids, written as the API gives them ("12"); values
    "for" | "against" | "abstain"; at most `seats` marked "for".
    """
    ids = [str(c) for c in candidate_ids]
    if not isinstance(raw, Mapping):
        raise Invalid(
            ElectionErrors.INVALID_CHOICE,
            _("marks 应为对象：{候选人编号: for/against/abstain}"),
            fields={"marks": _("应为对象")},
        )
    fields: dict[str, str] = {}
    marks = dict.fromkeys(ids, "abstain")
    known = set(ids)
    for key, value in raw.items():
        k = str(key)
        if k not in known:
            fields[f"marks.{k}"] = _("不是本次选举的候选人")
        elif value not in counting.MARKS:
            fields[f"marks.{k}"] = _("应为 for（赞成）、against（反对）或 abstain（弃权）")
        else:
            marks[k] = value
    if fields:
        raise Invalid(ElectionErrors.INVALID_CHOICE, _("选票上有无效的选项"), fields=fields)
    n_for = sum(1 for m in marks.values() if m == "for")
    if n_for > seats:
        msg = _("赞成票最多投 %(seats)s 人（应选名额），您投了 %(n)s 人") % {"seats": seats, "n": n_for}
        raise Invalid(ElectionErrors.TOO_MANY_FOR, msg, fields={"marks": msg})
    return marks


def _receipt() -> str:
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _lock_shared(election_id: int) -> tuple[str, dt.datetime, dt.datetime] | None:
    """The election's status and window, with the row held against a concurrent close."""
    sql = "SELECT status, opens_at, closes_at FROM elections_election WHERE id = %s"
    if connection.vendor == "postgresql":
        sql += " FOR SHARE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [election_id])
        row = cursor.fetchone()
    if row is None:
        return None
    status, opens, closes = row
    return status, aware(opens), aware(closes)


def _window_error(status: str, opens: dt.datetime, closes: dt.datetime, now: dt.datetime) -> DomainError | None:
    if status != ElectionStatus.OPEN or now >= closes:
        return DomainError(ElectionErrors.POLL_CLOSED, _("投票已结束"))
    if now < opens:
        return DomainError(ElectionErrors.POLL_NOT_OPEN, _("投票尚未开始"))
    return None


_VOTE_SQL = (
    "UPDATE elections_electionvoter SET voted_at = %s, receipt = %s"
    " WHERE election_id = %s AND user_id = %s AND voted_at IS NULL"
)


def cast_ballot(user, election_id: object, marks: object) -> str:
    """Cast one secret ballot; returns the receipt code (proof of taking part, not of the choice).

    Order of answers: 404 not visible → 409 poll_not_open/poll_closed → 403 not_eligible →
    422 invalid_choice/too_many_for → 409 already_voted. Nothing is written unless all pass.
    """
    election = election_for(user, election_id)
    now = timezone.now()
    early = _window_error(election.status, election.opens_at, election.closes_at, now)
    if early is not None:
        raise early
    voter = on_roll(user, election)
    if voter is None:
        raise Forbidden(ElectionErrors.NOT_ELIGIBLE, _("您不在本次选举的选民名单中"))
    cleaned = clean_marks(
        marks, Candidate.objects.filter(election=election).values_list("id", flat=True), election.seats
    )
    if voter.voted_at is not None:
        raise DomainError(ElectionErrors.ALREADY_VOTED, _("您已投过票"))
    for _attempt in range(5):
        receipt = _receipt()
        try:
            with transaction.atomic():
                return _record_ballot(user, election, cleaned, receipt)
        except IntegrityError:  # a receipt code already issued (about 1 in 10^17): draw another
            continue
    raise DomainError("receipt_collision", _("系统繁忙，请重试"))


def _record_ballot(user, election: Election, marks: dict[str, str], receipt: str) -> str:
    locked = _lock_shared(election.pk)
    if locked is None:
        raise NotFound(_("未找到该选举"))
    now = timezone.now()
    late = _window_error(*locked, now)
    if late is not None:
        raise late
    with connection.cursor() as cursor:
        cursor.execute(_VOTE_SQL, [connection.ops.adapt_datetimefield_value(now), receipt, election.pk, user.pk])
        updated = cursor.rowcount
    if updated != 1:
        if ElectionVoter.objects.filter(election=election, user=user).exists():
            raise DomainError(ElectionErrors.ALREADY_VOTED, _("您已投过票"))
        raise Forbidden(ElectionErrors.NOT_ELIGIBLE, _("您不在本次选举的选民名单中"))
    ballots.pool(election.pk, marks)
    return receipt


def receipt_of(user, election_id: int) -> str | None:
    """The voter's receipt, kept on their roll row (where `me.receipt` reads it)."""
    return (
        ElectionVoter.objects.filter(election_id=election_id, user=user, receipt__isnull=False)
        .values_list("receipt", flat=True)
        .first()
    )


# --- closing ------------------------------------------------------------------------------------


def rules_of(election: Election) -> counting.Rules:
    return counting.Rules(
        seats=election.seats, quorum=election.quorum, majority_of=election.majority_of, kind=election.kind
    )


def stored_ballots(election: Election) -> list[tuple[str, dict]]:
    """The counted (flushed) ballots, in public-id order; after the close that is every ballot."""
    return list(
        ElectionBallot.objects.filter(election=election).order_by("id").values_list("id", "marks").iterator(2000)
    )


def stored_receipts(election: Election) -> list[str]:
    return sorted(
        ElectionVoter.objects.filter(election=election, receipt__isnull=False).values_list("receipt", flat=True)
    )


def compute_result(election: Election) -> dict:
    """The tally and outcome from the stored ballots, with the chain head and receipts digest."""
    ballots = stored_ballots(election)
    candidate_ids = [c.pk for c in candidates_of(election)]
    result = counting.count(rules_of(election), election.eligible, candidate_ids, [m for _i, m in ballots])
    receipts = stored_receipts(election)
    result.update(
        {
            "election_id": election.pk,
            "round": election.round,
            "kind": election.kind,
            "ballots": len(ballots),
            "receipts": len(receipts),
            "receipts_digest": chain.receipts_digest(receipts),
            "chain_head": chain.head(election.pk, ballots),
            "algorithm": chain.ALGORITHM,
        }
    )
    return result


def close_election(actor, election_id: object, *, ip: str | None = None) -> Election:
    """Close now (an admin, early or on time) or at closes_at (actor None: cron or a late reader).

    Computes the result once from the stored ballots and publishes it with the chain head.
    """
    election = get_election(election_id)
    if actor is not None:
        _admin_over(actor, election.org, _("只有该组织或上级组织的管理员可以结束选举"))
    now = timezone.now()
    with transaction.atomic():
        locked = Election.objects.select_for_update().filter(pk=election.pk).first()
        if locked is None:
            raise NotFound(_("未找到该选举"))
        if locked.status != ElectionStatus.OPEN:
            raise DomainError(ElectionErrors.ALREADY_CLOSED, _("该选举已结束"))
        if actor is None and now < locked.closes_at:
            raise DomainError(ElectionErrors.NOT_CLOSED, _("投票尚未截止"))
        # Every ballot, pooled or flushed, rewritten by this transaction in one random order.
        ballots.reseal(locked.pk)
        result = compute_result(locked)
        if result["receipts"] != result["ballots"]:
            # Cannot happen through cast_ballot (one transaction writes both); refuse to publish.
            raise DomainError("roll_ballot_mismatch", _("选票数与投票人数不一致，已停止计票，请检查数据"), status=500)
        early = now < locked.closes_at
        result["closed_at"] = now.isoformat()
        result["closed_early"] = early
        updated = Election.objects.filter(pk=locked.pk, status=ElectionStatus.OPEN).update(
            status=ElectionStatus.CLOSED,
            result=result,
            chain_head=result["chain_head"],
            closed_at=now,
            closed_by=actor,
            closed_early=early,
        )
        if updated != 1:
            raise DomainError(ElectionErrors.ALREADY_CLOSED, _("该选举已结束"))
    election.refresh_from_db()
    elected = sum(1 for c in result["candidates"] if c["elected"])
    audit.record(
        actor,
        "election.close_early" if early else "election.close",
        org=election.org,
        target=election,
        summary=f"{election.title} · 第{election.round}轮 · {result['voted']}/{result['eligible']}人投票 · 当选{elected}人",
        data={
            "chain_head": result["chain_head"],
            "receipts_digest": result["receipts_digest"],
            "state": result["state"],
            "early": early,
            "auto": actor is None,
            "scheduled_close": locked.closes_at.isoformat(),
        },
        ip=ip,
    )
    return election


def close_if_due(election: Election) -> Election:
    """Past closes_at and still open: close it now (a lost race to another closer is fine)."""
    if election.status == ElectionStatus.OPEN and timezone.now() >= election.closes_at:
        try:
            return close_election(None, election.pk)
        except DomainError as e:
            if e.code != ElectionErrors.ALREADY_CLOSED:
                raise
        election.refresh_from_db()
    return election


def close_due(now: dt.datetime | None = None) -> list[tuple[int, str]]:
    """Close every open election whose time is up: [(id, "closed" | error code)]. For cron."""
    now = now or timezone.now()
    done = []
    for pk in Election.objects.filter(status=ElectionStatus.OPEN, closes_at__lte=now).values_list("pk", flat=True):
        try:
            close_election(None, pk)
        except DomainError as e:
            done.append((pk, e.code))
        else:
            done.append((pk, "closed"))
    return done


API_RESULT_FIELDS = ("eligible", "voted", "valid", "quorum_met", "candidates", "runoff_candidate_ids")


def results_for(user, election_id: object) -> Election:
    """The closed election for a reader in scope (closing it first when its time is up); 409 before."""
    election = close_if_due(election_for(user, election_id))
    if election.status != ElectionStatus.CLOSED:
        raise DomainError(ElectionErrors.NOT_CLOSED, _("选举尚未结束，结果在投票结束后公布"))
    return election


# --- rounds -------------------------------------------------------------------------------------


def offered_round(election: Election) -> str | None:
    """What the console offers after this round: "runoff", "further", or nothing."""
    if election.status != ElectionStatus.CLOSED or not election.result:
        return None
    state = election.result.get("state")
    if state == "runoff":
        return RoundKind.RUNOFF
    if state == "seats_remaining":
        return RoundKind.FURTHER
    return None


@transaction.atomic
def start_next_round(
    actor,
    election_id: object,
    *,
    kind: object,
    closes_at: object,
    opens_at: object = None,
    candidate_ids: object = None,
    ip: str | None = None,
) -> Election:
    """A run-off (tied candidates, the seats still open) or a further round (另行选举: the open seats
    among those not elected, all of them unless `candidate_ids` picks some) over the same roll."""
    parent = get_election(election_id)
    _admin_over(actor, parent.org, _("只有该组织或上级组织的管理员可以发起下一轮选举"))
    parent = Election.objects.select_for_update().get(pk=parent.pk)
    offered = offered_round(parent)
    if offered is None or kind != offered:
        raise DomainError(ElectionErrors.ROUND_NOT_OFFERED, _("本轮结果不需要这种下一轮选举"))
    if Election.objects.filter(parent=parent).exists():
        raise DomainError(ElectionErrors.ROUND_EXISTS, _("已发起过下一轮选举"))
    result = parent.result
    seats = result["open_seats"]
    if kind == RoundKind.RUNOFF:
        chosen = list(result["runoff_candidate_ids"])
    else:
        allowed = list(result["further_round_candidate_ids"])
        chosen = allowed
        if candidate_ids not in (None, [], ()):
            picked = _id_list(candidate_ids)
            if picked is None or any(c not in allowed for c in picked):
                msg = _("只能从本轮未当选的候选人中选择")
                raise Invalid(ElectionErrors.INVALID_CANDIDATES, msg, fields={"candidate_ids": msg})
            chosen = [c for c in allowed if c in set(picked)]
        if len(chosen) < seats:
            msg = _("候选人人数不能少于待选名额（%(n)s）") % {"n": seats}
            raise Invalid(ElectionErrors.INVALID_CANDIDATES, msg, fields={"candidate_ids": msg})
    now = timezone.now()
    opens, closes = _window(opens_at, closes_at, now)
    sources = {c.pk: c for c in Candidate.objects.filter(election=parent, pk__in=chosen)}
    try:
        with transaction.atomic():
            child = Election.objects.create(
                org_id=parent.org_id,
                title=parent.title,
                seats=seats,
                majority_of=parent.majority_of,
                quorum=parent.quorum,
                roll_kind=parent.roll_kind,
                opens_at=opens,
                closes_at=closes,
                parent=parent,
                round=parent.round + 1,
                kind=kind,
                eligible=parent.eligible,
                created_by=actor,
            )
    except IntegrityError:
        raise DomainError(ElectionErrors.ROUND_EXISTS, _("已发起过下一轮选举")) from None
    Candidate.objects.bulk_create(
        [
            Candidate(election=child, name=sources[cid].name, position=i, source=sources[cid])
            for i, cid in enumerate(chosen)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO elections_electionvoter (election_id, user_id)"
            " SELECT %s, user_id FROM elections_electionvoter WHERE election_id = %s",
            [child.pk, parent.pk],
        )
    child.org = parent.org
    audit.record(
        actor,
        "election.next_round",
        org=parent.org,
        target=child,
        summary=f"{parent.title} · 第{child.round}轮（{child.get_kind_display()}）· {seats}名 · {len(chosen)}名候选人",
        data={"parent_id": parent.pk, "kind": kind},
        ip=ip,
    )
    return child


def rounds_of(election: Election) -> list[Election]:
    """Every round of this election, first to last."""
    first = election
    while first.parent_id is not None:
        first = Election.objects.select_related("org").get(pk=first.parent_id)
    out = [first]
    while True:
        nxt = Election.objects.select_related("org").filter(parent=out[-1]).first()
        if nxt is None:
            return out
        out.append(nxt)


@dataclasses.dataclass
class Overall:
    seats: int
    elected: list[tuple[str, int]]  # (name, round)
    open_seats: int
    failed: bool


def overall(rounds: list[Election]) -> Overall:
    """Who is elected across the rounds so far, and how many of the first round's seats are open."""
    elected: list[tuple[str, int]] = []
    failed = False
    for r in rounds:
        if r.status != ElectionStatus.CLOSED or not r.result:
            continue
        names = {c.pk: c.name for c in candidates_of(r)}
        elected += [(names.get(c["id"], "?"), r.round) for c in r.result["candidates"] if c["elected"]]
        failed = failed or not r.result["quorum_met"]
    seats = rounds[0].seats
    return Overall(seats=seats, elected=elected, open_seats=seats - len(elected), failed=failed)
