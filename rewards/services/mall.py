"""积分兑换: list rewards, redeem, cancel (refund), verify pickup.

A redemption is all or nothing: points debited, stock taken, the movement, its entries and the
redemption written in one transaction, or none of it. The reward is read and checked first,
outside any transaction; the writes then run where SQLite holds its one writer lock (one read
decides, five writes follow) or, on PostgreSQL, behind a lock on the member's account (their
parallel requests queue) in one statement. CHECK constraints (balance >= 0, stock >= 0) back them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, idempotency
from core.errors import DomainError, Forbidden, Invalid, NotFound
from core.recent import Recent
from core.sql import DriverCursor, aware, fetchall, loaded
from members.services import standing_of
from orgs import scoping
from orgs.models import Org
from points.models import Account, AccountKind, MovementKind
from points.services import ledger

from ..models import Eligibility, PickupStatus, Redemption, Reward, RewardKind
from . import codes
from .verifiers import may_verify


class MallErrors:
    INSUFFICIENT_POINTS = "insufficient_points"
    OUT_OF_STOCK = "out_of_stock"
    LIMIT_REACHED = "limit_reached"
    NOT_AVAILABLE = "not_available"
    NOT_ELIGIBLE = "not_eligible"
    ALREADY_PICKED_UP = "already_picked_up"
    CANCELLED = "cancelled"
    NOT_CANCELLABLE = "not_cancellable"


def _positive_int(value: object, field: str, *, zero_ok: bool = False, limit: int = 10**9) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and (0 if zero_ok else 1) <= value <= limit
    if not ok:
        raise Invalid("invalid_value", _("应为正整数"), fields={field: _("应为正整数")})
    return value


@transaction.atomic
def create_reward(
    actor,
    org: Org,
    *,
    title: object,
    cost: object,
    stock: object,
    per_member_limit: object = 1,
    kind: str = RewardKind.GOODS,
    description: str = "",
    eligibility: str = Eligibility.MEMBERS,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    ip: str | None = None,
) -> Reward:
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以上架商品"))
    title = str(title or "").strip()
    if not title or len(title) > 100:
        raise Invalid("invalid_title", _("请填写商品名称（不超过100字）"), fields={"title": _("必填，不超过100字")})
    cost = _positive_int(cost, "cost")
    stock = _positive_int(stock, "stock", zero_ok=True)
    limit = _positive_int(per_member_limit, "per_member_limit", limit=1000)
    if kind not in RewardKind.values:
        raise Invalid("invalid_kind", _("商品类型无效"), fields={"kind": _("无效")})
    if eligibility not in Eligibility.values:
        raise Invalid("invalid_eligibility", _("兑换范围无效"), fields={"eligibility": _("无效")})
    if starts_at and ends_at and ends_at <= starts_at:
        raise Invalid("invalid_window", _("结束时间应晚于开始时间"), fields={"ends_at": _("应晚于开始时间")})
    reward = Reward.objects.create(
        org=org,
        title=title,
        description=str(description or "")[:2000],
        kind=kind,
        cost=cost,
        stock=stock,
        stock_total=stock,
        per_member_limit=limit,
        eligibility=eligibility,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor,
    )
    audit.record(actor, "reward.create", org=org, target=reward, summary=f"{title} · {cost}分 × {stock}", ip=ip)
    return reward


def rewards_for_member(user):
    """Rewards the person may see: their union's and its ancestors'; followers see 'everyone' rewards."""
    standing = standing_of(user)
    qs = Reward.objects.filter(active=True).select_related("org")
    if standing.org_path is None:
        return qs.filter(eligibility=Eligibility.EVERYONE)
    return qs.filter(org__path__in=scoping.self_and_ancestor_paths(standing.org_path))


_REWARD_SQL = (
    "SELECT r.id, r.title, r.cost, r.per_member_limit, r.eligibility, r.starts_at, r.ends_at, r.active,"
    " r.kind, r.stock, r.stock_total, o.id, o.path, o.name, o.depth,"
    " (SELECT a.id FROM points_account a WHERE a.kind = %s AND a.org_id = r.org_id)"
    " FROM rewards_reward r JOIN orgs_org o ON o.id = r.org_id WHERE r.id = %s"
)


def _reward_row(reward_id: int) -> tuple | None:
    """The reward with its org and its org's mall account id, in one plain statement: this runs
    first in every redemption of a rush, where the ORM's query building cost more than the query."""
    rows = fetchall(_REWARD_SQL, [AccountKind.MALL.value, reward_id])
    return rows[0] if rows else None


def _reward(row: tuple, *, with_stock: bool) -> Reward:
    org = loaded(Org, {"id": row[11], "path": row[12], "name": row[13], "depth": row[14]})
    values = {
        "id": row[0],
        "title": row[1],
        "cost": row[2],
        "per_member_limit": row[3],
        "eligibility": row[4],
        "starts_at": aware(row[5]),
        "ends_at": aware(row[6]),
        "active": bool(row[7]),
        "kind": row[8],
        "org_id": row[11],
    }
    if with_stock:  # otherwise deferred: read from the database if anything asks
        values["stock"], values["stock_total"] = row[9], row[10]
    return loaded(Reward, values, org=org)


# Rewards this process read in the last few seconds: a sale rush's redemptions skip the read.
# Nothing of a reward that a sale relies on changes once it is listed (cost, limit, eligibility,
# window, org, its org's mall account), except its stock, which the sale takes on the live row and
# which is never taken from here, and the org's path: an org moved in the tree is seen within
# _recent.seconds.
_recent: Recent[int, tuple] = Recent(5.0)


def _reward_in_scope(user, reward_id: object, *, redeeming: bool = False) -> tuple[Reward, int | None]:
    try:
        rid = int(reward_id)
    except (TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该商品")) from None
    row = _recent.get(rid)
    fresh = row is None
    if fresh:
        row = _reward_row(rid) if 0 < rid < 2**62 else None
        if row is None:
            raise NotFound(_("未找到该商品"))
        if row[15] is not None:  # its mall account exists: nothing more to read for the next sales
            _recent.put(rid, row)
    reward = _reward(row, with_stock=fresh)
    _check_scope(user, reward, redeeming=redeeming)
    return reward, row[15]


def _check_scope(user, reward: Reward, *, redeeming: bool = False) -> None:
    """A member reaches their union's rewards and its ancestors', a cadre their subtree's. A cadre
    who is not a member is no follower: another subtree's reward is not found.

    A follower (signed in, no membership, no role) reaches every "everyone" reward; a members-only
    one is not found, as a missing one, on every read. Redeeming it is refused with 403
    not_eligible (API.md's redemption row: "a follower"), checked by redeem()."""
    standing = standing_of(user)
    if standing.org_path is not None and standing.org_path.startswith(reward.org.path):
        return
    if standing.org_path is not None or scoping.is_cadre(user):
        if not scoping.covers(user, reward.org):
            raise NotFound(_("未找到该商品"))
        return
    if reward.eligibility != Eligibility.EVERYONE and not redeeming:
        raise NotFound(_("未找到该商品"))


def reward_for_member(user, reward_id: object) -> Reward:
    """The reward if the person's scope reaches it (404 otherwise; a follower: "everyone" rewards only)."""
    try:
        reward = Reward.objects.select_related("org").get(pk=int(reward_id))
    except (Reward.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该商品")) from None
    _check_scope(user, reward)
    return reward


def check_window(start, end, now) -> None:
    if (start and now < start) or (end and now >= end):
        raise DomainError(MallErrors.NOT_AVAILABLE, _("不在兑换时间内"))


def redeem(user, reward_id: object) -> Redemption:
    """Points debited, stock taken, the redemption and its ledger movement written — or nothing.

    The refusals (limit_reached, insufficient_points, out_of_stock) are decided before anything is
    written, so a refused redemption inside an Idempotency-Key request leaves the request's
    transaction clean for the stored answer, without a savepoint. See `_sell_sqlite`, `_sell_pg`."""
    reward, mall_account_id = _reward_in_scope(user, reward_id, redeeming=True)
    if reward.eligibility == Eligibility.MEMBERS and not standing_of(user).certified:
        raise Forbidden(MallErrors.NOT_ELIGIBLE, _("该商品仅限认证会员兑换"))
    if not reward.active:
        raise DomainError(MallErrors.NOT_AVAILABLE, _("该商品已下架"))
    now = timezone.now()
    check_window(reward.starts_at, reward.ends_at, now)
    cost = ledger.check_amount(reward.cost, "cost")
    sale = _Sale(
        reward_id=reward.pk,
        user_id=user.pk,
        account_id=getattr(user, "points_account_id", None) or ledger.member_account(user).pk,
        mall_id=mall_account_id or ledger.mall_account(reward.org).pk,
        org_id=reward.org.pk,
        cost=cost,
        limit=reward.per_member_limit,
        reason=(_("兑换：%(title)s") % {"title": reward.title})[:200],
        code=codes.pickup_code(),
        now=now,
    )
    # The writes begin here: in the request's Idempotency-Key transaction, opened now with the key
    # (everything above ran before it, outside SQLite's writer lock), or in one of their own.
    # Nothing is written on a refusal, and the error is raised only once out of the block.
    with idempotency.write_transaction(), DriverCursor() as db:
        outcome = _sell_pg(db, sale) if db.pg else _sell_sqlite(db, sale)
    if isinstance(outcome, DomainError):
        raise outcome
    redemption_id, movement_id = outcome
    return _loaded_redemption(redemption_id, reward, user, sale, movement_id)


@dataclasses.dataclass(frozen=True, slots=True)
class _Sale:
    reward_id: int
    user_id: int
    account_id: int
    mall_id: int
    org_id: int
    cost: int
    limit: int
    reason: str
    code: str
    now: dt.datetime


def _refusal(count: int, limit: int, balance_ok: bool, code_taken: bool) -> DomainError:
    if count >= limit:
        return DomainError(MallErrors.LIMIT_REACHED, _("已达到每人兑换上限"))
    if not balance_ok:
        return DomainError(MallErrors.INSUFFICIENT_POINTS, _("积分不足"))
    if code_taken:  # 1 in 31^10 a pair: nothing was written, the member may simply try again
        return DomainError("code_collision", _("系统繁忙，请重试"))
    return DomainError(MallErrors.OUT_OF_STOCK, _("商品已兑完"))


# SQLite: everything the decision needs, read inside the one writer lock (nobody else writes
# until this transaction ends, so what it reads stays true for the writes that follow).
_SQLITE_STATE_SQL = (
    "SELECT (SELECT balance FROM points_account WHERE id = ?), (SELECT stock FROM rewards_reward WHERE id = ?),"
    " (SELECT COUNT(*) FROM rewards_redemption WHERE reward_id = ? AND user_id = ? AND status <> 'cancelled'),"
    " EXISTS (SELECT 1 FROM rewards_redemption WHERE code = ?)"
)
_MOVEMENT_SQL = (
    "INSERT INTO points_movement (kind, reason, actor_id, org_id, source, created_at) VALUES (?, ?, ?, ?, ?, ?)"
    " RETURNING id"
)
_ENTRIES_SQL = (
    "INSERT INTO points_entry (movement_id, account_id, amount, created_at) VALUES (?, ?, ?, ?), (?, ?, ?, ?)"
)
# Both balances in one statement; CHECK (balance >= 0) backs the decision above.
_BALANCES_SQL = "UPDATE points_account SET balance = balance + (CASE WHEN id = ? THEN ? ELSE ? END) WHERE id IN (?, ?)"
_STOCK_SQL = "UPDATE rewards_reward SET stock = stock - 1 WHERE id = ? AND stock > 0"
_REDEMPTION_SQL = (
    "INSERT INTO rewards_redemption (reward_id, user_id, code, cost, status, movement_id, created_at)"
    " VALUES (?, ?, ?, ?, 'issued', ?, ?) RETURNING id"
)


def _sell_sqlite(db: DriverCursor, s: _Sale) -> tuple[int, int] | DomainError:
    at = db.dt(s.now)
    balance, stock, count, code_taken = db.run(
        _SQLITE_STATE_SQL, [s.account_id, s.reward_id, s.reward_id, s.user_id, s.code]
    ).fetchone()
    balance_ok = (balance or 0) >= s.cost
    if count >= s.limit or not balance_ok or code_taken or not stock:
        return _refusal(count, s.limit, balance_ok, code_taken)
    source = f"reward:{s.reward_id}"
    movement_id = db.run(
        _MOVEMENT_SQL, [MovementKind.REDEEM.value, s.reason, s.user_id, s.org_id, source, at]
    ).fetchone()[0]
    db.run(_ENTRIES_SQL, [movement_id, s.account_id, -s.cost, at, movement_id, s.mall_id, s.cost, at])
    db.run(_BALANCES_SQL, [s.account_id, -s.cost, s.cost, s.account_id, s.mall_id])
    db.run(_STOCK_SQL, [s.reward_id])
    redemption_id = db.run(_REDEMPTION_SQL, [s.reward_id, s.user_id, s.code, s.cost, movement_id, at]).fetchone()[0]
    return redemption_id, movement_id


# PostgreSQL, after the member's account is locked (their parallel requests queue on it, so the
# count and balance below are theirs alone): one statement decides on the stock — the row every
# buyer takes — and writes the movement, both entries, both balances and the redemption, only if
# it got a unit. Refusals write nothing. The pickup code is checked unused in the same condition;
# two sales drawing the same code in the same instant (1 in 31^10 a pair, twice over) would break
# the UNIQUE index and roll the whole request back with a 500 rather than write half of it.
_PG_LOCK_SQL = "SELECT balance FROM points_account WHERE id = %(account)s FOR UPDATE"
_PG_SELL_SQL = (
    "WITH c AS (SELECT COUNT(*) AS n FROM rewards_redemption"
    " WHERE reward_id = %(reward)s AND user_id = %(user)s AND status <> 'cancelled'),"
    " st AS (UPDATE rewards_reward SET stock = stock - 1 WHERE id = %(reward)s AND stock > 0"
    " AND (SELECT n FROM c) < %(limit)s AND %(balance_ok)s"
    " AND NOT EXISTS (SELECT 1 FROM rewards_redemption WHERE code = %(code)s) RETURNING id),"
    " mv AS (INSERT INTO points_movement (kind, reason, actor_id, org_id, source, created_at)"
    " SELECT %(kind)s, %(reason)s, %(user)s, %(org)s, %(source)s, %(at)s FROM st RETURNING id),"
    " en AS (INSERT INTO points_entry (movement_id, account_id, amount, created_at)"
    " SELECT mv.id, e.account, e.amount, %(at)s FROM mv,"
    " (VALUES (%(account)s::bigint, %(debit)s::bigint), (%(mall)s::bigint, %(cost)s::bigint)) AS e(account, amount)),"
    " ac AS (UPDATE points_account SET balance = balance + (CASE WHEN id = %(account)s THEN %(debit)s ELSE %(cost)s END)"
    " WHERE id IN (%(account)s, %(mall)s) AND EXISTS (SELECT 1 FROM st)),"
    " rd AS (INSERT INTO rewards_redemption (reward_id, user_id, code, cost, status, movement_id, created_at)"
    " SELECT %(reward)s, %(user)s, %(code)s, %(cost)s, 'issued', mv.id, %(at)s FROM mv RETURNING id)"
    " SELECT (SELECT id FROM rd), (SELECT id FROM mv), (SELECT n FROM c),"
    " EXISTS (SELECT 1 FROM rewards_redemption WHERE code = %(code)s)"
)


def _sell_pg(db: DriverCursor, s: _Sale) -> tuple[int, int] | DomainError:
    row = db.run(_PG_LOCK_SQL, {"account": s.account_id}).fetchone()
    balance_ok = row is not None and row[0] >= s.cost
    params = {
        "reward": s.reward_id,
        "user": s.user_id,
        "limit": s.limit,
        "balance_ok": balance_ok,
        "code": s.code,
        "kind": MovementKind.REDEEM.value,
        "reason": s.reason,
        "org": s.org_id,
        "source": f"reward:{s.reward_id}",
        "at": s.now,
        "account": s.account_id,
        "mall": s.mall_id,
        "cost": s.cost,
        "debit": -s.cost,
    }
    redemption_id, movement_id, count, code_taken = db.run(_PG_SELL_SQL, params).fetchone()
    if redemption_id is None:
        return _refusal(count, s.limit, balance_ok, code_taken)
    return redemption_id, movement_id


def _loaded_redemption(pk: int, reward: Reward, user, s: _Sale, movement_id: int) -> Redemption:
    values = {
        "id": pk,
        "reward_id": reward.pk,
        "user_id": user.pk,
        "code": s.code,
        "cost": s.cost,
        "status": PickupStatus.ISSUED,
        "movement_id": movement_id,
        "refund_id": None,
        "created_at": s.now,
        "picked_up_at": None,
        "picked_up_by_id": None,
        "cancelled_at": None,
    }
    return loaded(Redemption, values, reward=reward, user=user)


def cancel(actor, redemption_id: object, *, ip: str | None = None) -> Redemption:
    """Cancel an unpicked redemption: points and stock come back. The member or a cadre of the reward's org."""
    try:
        r = Redemption.objects.select_related("reward__org").get(pk=int(redemption_id))
    except (Redemption.DoesNotExist, TypeError, ValueError):
        raise NotFound() from None
    if r.user_id != actor.pk and not scoping.covers(actor, r.reward.org):
        raise NotFound()
    account = ledger.member_account(r.user)
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk=account.pk).first()
        if not Redemption.objects.filter(pk=r.pk, status=PickupStatus.ISSUED).update(
            status=PickupStatus.CANCELLED, cancelled_at=timezone.now()
        ):
            raise DomainError(MallErrors.NOT_CANCELLABLE, _("已领取或已取消的兑换不能取消"))
        Reward.objects.filter(pk=r.reward_id).update(stock=F("stock") + 1)
        mv = ledger.post(
            MovementKind.REFUND,
            [(ledger.mall_account(r.reward.org), account, r.cost)],
            reason=_("取消兑换：%(title)s") % {"title": r.reward.title},
            actor=actor,
            org=r.reward.org,
            source=f"redemption:{r.pk}",
        )
        Redemption.objects.filter(pk=r.pk).update(refund=mv)
    audit.record(actor, "reward.cancel", org=r.reward.org, target=r, summary=r.reward.title, ip=ip)
    r.refresh_from_db()
    return r


def verify_pickup(actor, code: object, *, ip: str | None = None) -> Redemption:
    """核销: a cadre of the reward's org (or above), or its 核销员, marks the code picked up, once."""
    code = codes.normalize(code)
    r = Redemption.objects.select_related("reward__org", "user").filter(code=code).first()
    if r is None or not may_verify(actor, r.reward.org):
        raise NotFound(_("没有找到这个兑换码，或它不属于你管理的工会"))
    codes.mark_picked_up(Redemption, r, actor, cancelled_message=_("该兑换已取消"))
    audit.record(actor, "reward.pickup", org=r.reward.org, target=r, summary=f"{r.reward.title} · {r.user.name}", ip=ip)
    return r


def rewards_for_cadre(actor):
    return scoping.scoped(Reward.objects.select_related("org"), actor, "org__path")
