"""积分抽奖: create a lottery, enter it, draw it verifiably, verify a prize's pickup code.

Verifiable draw
---------------
When a lottery is created the platform draws a secret seed (64 hex characters,
``secrets.token_hex(32)``) and publishes only its commitment, ``sha256(seed).hexdigest()``
(the SHA-256 of the seed's hex text, UTF-8). The seed is kept encrypted until the draw.
At the draw the seed is published, and anyone can check the commitment and re-run the draw
from the published record (``public_record``: seed, entries, prizes) with
``manage.py verify_lottery <id> [--json FILE]`` or by hand:

1. Entries are taken in ascending entry id. Each entry carries ``m``: the entrant's number in
   this lottery (1, 2, … in order of their first entry), so the record shows who holds several
   entries without naming anyone.
2. Prizes are taken in draw order (``position``, then id: first prize first); each prize gives
   ``quantity`` slots. Slots are numbered 0, 1, 2, … across all prizes.
3. For slot ``k``: ``h = int(sha256(f"{seed}:{k}").hexdigest(), 16)``; the winner is
   ``remaining[h % len(remaining)]`` where ``remaining`` is the list of still-eligible entry
   ids in ascending order.
4. One prize per member: the winner's entry and every other entry of the same entrant (same
   ``m``) leave ``remaining``. A member with more entries has better odds, never two prizes.
5. When ``remaining`` is empty the draw stops: the prizes left are not awarded. So no prize is
   ever given more than its quantity, and nobody wins twice.

The seed is fixed before any entry exists (the commitment is public from the start) and the
entry ids are assigned by the database in order of entry, so neither the organiser nor an
entrant can steer the outcome without breaking the commitment.

Points: an entry moves ``entry_cost`` from the member to the lottery's pool account. After the
draw the pool keeps the losers' points, unless ``refund_losers``: then each losing entry gets a
LOTTERY_REFUND movement back to its member.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, pii
from core.errors import DomainError, Forbidden, Invalid, NotFound
from members.services import member_of
from orgs import scoping
from orgs.models import Org
from points.models import Account, MovementKind
from points.services import ledger

from ..models import Eligibility, Lottery, LotteryEntry, LotteryStatus, Prize, Win
from . import codes
from .mall import MallErrors, _positive_int
from .verifiers import may_verify

ALGORITHM = "sha256-slot-v1"
MAX_PRIZES = 50


class LotteryErrors(MallErrors):
    NOT_YET = "not_yet"
    ALREADY_DRAWN = "already_drawn"


def commitment_of(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def compute_winners(
    seed: str, entry_ids: Iterable[int], prizes: Iterable[tuple[int, int]], entry_users: dict | None = None
) -> list[tuple[int, int]]:
    """The draw, pure: [(entry_id, prize_id)] in slot order. Same inputs, same winners; no database.

    `prizes` is [(prize_id, quantity)] in draw order; `entry_users` maps entry id → entrant key
    (an entry missing from it counts as its own entrant).
    """
    entry_users = entry_users or {}
    remaining = sorted(set(entry_ids))
    by_user: dict = {}
    for e in remaining:
        by_user.setdefault(entry_users.get(e, ("entry", e)), []).append(e)
    winners: list[tuple[int, int]] = []
    slot = 0
    for prize_id, quantity in prizes:
        for _i in range(quantity):
            if not remaining:
                return winners
            h = int(hashlib.sha256(f"{seed}:{slot}".encode()).hexdigest(), 16)
            winner = remaining[h % len(remaining)]
            winners.append((winner, prize_id))
            for e in by_user.pop(entry_users.get(winner, ("entry", winner)), [winner]):
                i = bisect.bisect_left(remaining, e)
                if i < len(remaining) and remaining[i] == e:
                    del remaining[i]
            slot += 1
    return winners


# --- creating -----------------------------------------------------------------------------------


def _when(value: object, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise Invalid("invalid_time", _("请填写时间"), fields={field: _("必填")})
    return value if timezone.is_aware(value) else timezone.make_aware(value)


@transaction.atomic
def create_lottery(
    actor,
    org: Org,
    *,
    title: object,
    entry_cost: object,
    prizes: list,
    opens_at: object,
    closes_at: object,
    draw_at: object = None,
    max_entries_per_member: object = 1,
    eligibility: str = Eligibility.MEMBERS,
    refund_losers: bool = False,
    description: str = "",
    ip: str | None = None,
) -> Lottery:
    """A new open lottery with its seed committed (sha256 published, seed kept encrypted)."""
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以发起抽奖"))
    title = str(title or "").strip()
    if not title or len(title) > 100:
        raise Invalid("invalid_title", _("请填写抽奖名称（不超过100字）"), fields={"title": _("必填，不超过100字")})
    cost = _positive_int(entry_cost, "entry_cost")
    cap = _positive_int(max_entries_per_member, "max_entries_per_member", limit=1000)
    if eligibility not in Eligibility.values:
        raise Invalid("invalid_eligibility", _("参与范围无效"), fields={"eligibility": _("无效")})
    opens_at, closes_at = _when(opens_at, "opens_at"), _when(closes_at, "closes_at")
    draw_at = _when(draw_at, "draw_at") if draw_at is not None else closes_at
    if closes_at <= opens_at:
        raise Invalid("invalid_window", _("截止时间应晚于开始时间"), fields={"closes_at": _("应晚于开始时间")})
    if draw_at < closes_at:
        raise Invalid("invalid_draw_time", _("开奖时间不能早于截止时间"), fields={"draw_at": _("不能早于截止时间")})
    cleaned = []
    for i, item in enumerate(prizes or []):
        name, qty = (item.get("name"), item.get("quantity")) if isinstance(item, dict) else item
        name = str(name or "").strip()
        if not name or len(name) > 100:
            raise Invalid("invalid_prize", _("请填写奖品名称"), fields={f"prizes.{i}.name": _("必填，不超过100字")})
        cleaned.append((name, _positive_int(qty, f"prizes.{i}.quantity", limit=100_000)))
    if not cleaned or len(cleaned) > MAX_PRIZES:
        raise Invalid("invalid_prizes", _("请至少设置一个奖项"), fields={"prizes": _("至少一个，最多50个")})
    seed = secrets.token_hex(32)
    lottery = Lottery.objects.create(
        org=org,
        title=title,
        description=str(description or "")[:2000],
        entry_cost=cost,
        max_entries_per_member=cap,
        eligibility=eligibility,
        opens_at=opens_at,
        closes_at=closes_at,
        draw_at=draw_at,
        refund_losers=bool(refund_losers),
        commitment=commitment_of(seed),
        seed_enc=pii.encrypt(seed),
        created_by=actor,
    )
    Prize.objects.bulk_create(
        [Prize(lottery=lottery, name=name, quantity=qty, position=i) for i, (name, qty) in enumerate(cleaned)]
    )
    summary = f"{title} · {cost}分 · " + "、".join(f"{n}×{q}" for n, q in cleaned)
    audit.record(actor, "lottery.create", org=org, target=lottery, summary=summary, ip=ip)
    return lottery


# --- finding --------------------------------------------------------------------------------------


def lotteries_for_member(user):
    """Lotteries the person may see: their union's and its ancestors'; followers see 'everyone' ones."""
    member = member_of(user)
    qs = Lottery.objects.exclude(status=LotteryStatus.CANCELLED).select_related("org")
    if member is None:
        return qs.filter(eligibility=Eligibility.EVERYONE)
    return qs.filter(org__path__in=scoping.self_and_ancestor_paths(member.org.path))


def lottery_for_member(user, lottery_id: object) -> Lottery:
    """The lottery if the person's scope reaches it (404 otherwise). A follower (signed in, no
    membership, no role) reaches every "everyone" lottery; a members-only one is not found, as a
    missing one, whether read or entered."""
    lottery = get_lottery(lottery_id)
    member = member_of(user)
    if member is not None and lottery.org.path in scoping.self_and_ancestor_paths(member.org.path):
        return lottery
    # A cadre who is not a member is no follower: their roles are their scope.
    if member is not None or scoping.is_cadre(user):
        if not scoping.covers(user, lottery.org):
            raise NotFound(_("未找到该抽奖"))
        return lottery
    if lottery.eligibility != Eligibility.EVERYONE:
        raise NotFound(_("未找到该抽奖"))
    return lottery


def get_lottery(lottery_id: object) -> Lottery:
    try:
        return Lottery.objects.select_related("org").get(pk=int(lottery_id))
    except (Lottery.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("未找到该抽奖")) from None


# --- entering -------------------------------------------------------------------------------------


def enter(user, lottery_id: object) -> LotteryEntry:
    """One entry: points to the pool, entry row numbered n (UNIQUE caps it), in one transaction."""
    lottery = lottery_for_member(user, lottery_id)
    member = member_of(user)
    if lottery.eligibility == Eligibility.MEMBERS and (member is None or not member.certified):
        raise Forbidden(LotteryErrors.NOT_ELIGIBLE, _("该抽奖仅限认证会员参与"))
    now = timezone.now()
    account = ledger.member_account(user)
    pool = ledger.lottery_account(lottery.pk)
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk=account.pk).first()  # one member's requests queue here
        lottery = Lottery.objects.get(pk=lottery.pk)
        if lottery.status != LotteryStatus.OPEN or now < lottery.opens_at or now >= lottery.closes_at:
            raise DomainError(LotteryErrors.NOT_AVAILABLE, _("不在抽奖参与时间内"))
        n = LotteryEntry.objects.filter(lottery=lottery, user=user).count() + 1
        if n > lottery.max_entries_per_member:
            raise DomainError(LotteryErrors.LIMIT_REACHED, _("已达到每人参与次数上限"))
        mv = ledger.post(
            MovementKind.LOTTERY_ENTRY,
            [(account, pool, lottery.entry_cost)],
            reason=_("抽奖：%(title)s") % {"title": lottery.title},
            actor=user,
            org=lottery.org,
            source=f"lottery:{lottery.pk}",
        )
        try:
            with transaction.atomic():
                return LotteryEntry.objects.create(lottery=lottery, user=user, n=n, movement=mv)
        except IntegrityError:  # the same n taken meanwhile: the cap holds, the debit rolls back
            raise DomainError(LotteryErrors.LIMIT_REACHED, _("已达到每人参与次数上限")) from None


# --- drawing --------------------------------------------------------------------------------------


def _entrant_numbers(entries: list[tuple[int, int]]) -> dict[int, int]:
    """entry id → entrant number (1, 2, … by first entry), from [(entry_id, user_id)] in id order."""
    numbers: dict[int, int] = {}
    out = {}
    for entry_id, user_id in entries:
        out[entry_id] = numbers.setdefault(user_id, len(numbers) + 1)
    return out


def _prize_slots(lottery) -> list[tuple[int, int]]:
    return list(Prize.objects.filter(lottery=lottery).order_by("position", "id").values_list("id", "quantity"))


def draw(actor, lottery_id: object, *, ip: str | None = None) -> Lottery:
    """Draw once, at or after draw_at: winners from (seed, entries), wins with codes, refunds, seed published."""
    lottery = get_lottery(lottery_id)
    if actor is not None:
        if not scoping.covers(actor, lottery.org):
            raise NotFound(_("未找到该抽奖"))
        if not scoping.covers(actor, lottery.org, admin=True):
            raise Forbidden("admin_required", _("只有该组织或上级组织的管理员可以开奖"))
    now = timezone.now()
    if lottery.status == LotteryStatus.CANCELLED:
        raise DomainError(LotteryErrors.NOT_AVAILABLE, _("该抽奖已取消"))
    if lottery.status == LotteryStatus.DRAWN:
        raise DomainError(LotteryErrors.ALREADY_DRAWN, _("该抽奖已开奖"))
    if now < lottery.draw_at:
        raise DomainError(LotteryErrors.NOT_YET, _("未到开奖时间"))
    seed = pii.decrypt(lottery.seed_enc)
    if commitment_of(seed) != lottery.commitment:  # never publish a seed that does not match
        raise DomainError("seed_mismatch", _("抽奖种子与承诺值不符，无法开奖"), status=500)
    with transaction.atomic():
        if not Lottery.objects.filter(pk=lottery.pk, status=LotteryStatus.OPEN).update(
            status=LotteryStatus.DRAWN, drawn_at=now, seed=seed
        ):
            raise DomainError(LotteryErrors.ALREADY_DRAWN, _("该抽奖已开奖"))
        entries = list(LotteryEntry.objects.filter(lottery=lottery).order_by("id").values_list("id", "user_id"))
        winners = compute_winners(seed, [e for e, _u in entries], _prize_slots(lottery), _entrant_numbers(entries))
        _create_wins(winners)
        if lottery.refund_losers:
            _refund_losers(lottery, entries, {e for e, _p in winners}, actor)
    lottery.refresh_from_db()
    audit.record(
        actor,
        "lottery.draw",
        org=lottery.org,
        target=lottery,
        summary=f"{lottery.title} · {len(entries)}人次 · {len(winners)}个奖",
        ip=ip,
    )
    return lottery


def _create_wins(winners: list[tuple[int, int]]) -> None:
    for _attempt in range(5):
        taken: set[str] = set()
        rows = []
        for entry_id, prize_id in winners:
            code = codes.pickup_code()
            while code in taken:
                code = codes.pickup_code()
            taken.add(code)
            rows.append(Win(entry_id=entry_id, prize_id=prize_id, code=code))
        try:
            with transaction.atomic():
                Win.objects.bulk_create(rows)
                return
        except IntegrityError:  # a pickup code already used elsewhere: draw new codes
            continue
    raise DomainError("code_collision", _("系统繁忙，请重试"))


def _refund_losers(lottery, entries: list[tuple[int, int]], won: set[int], actor) -> None:
    pool = ledger.lottery_account(lottery.pk)
    losers = [(e, u) for e, u in entries if e not in won]
    accounts = ledger.member_accounts(sorted({u for _e, u in losers}))
    reason = _("未中奖退还：%(title)s") % {"title": lottery.title}
    for entry_id, user_id in losers:
        mv = ledger.post(
            MovementKind.LOTTERY_REFUND,
            [(pool, accounts[user_id], lottery.entry_cost)],
            reason=reason,
            actor=actor,
            org=lottery.org,
            source=f"lottery_entry:{entry_id}",
        )
        LotteryEntry.objects.filter(pk=entry_id).update(refund=mv)


def draw_due(now: dt.datetime | None = None) -> list[tuple[int, str]]:
    """Draw every open lottery whose draw time has come: [(id, "drawn" | error code)]."""
    now = now or timezone.now()
    done = []
    for pk in Lottery.objects.filter(status=LotteryStatus.OPEN, draw_at__lte=now).values_list("pk", flat=True):
        try:
            draw(None, pk)
        except DomainError as e:
            done.append((pk, e.code))
        else:
            done.append((pk, "drawn"))
    return done


# --- prizes ---------------------------------------------------------------------------------------


def verify_win_pickup(actor, code: object, *, ip: str | None = None) -> Win:
    """核销 a prize: a cadre of the lottery's org (or above), or its 核销员, marks the code picked up, once."""
    code = codes.normalize(code)
    win = Win.objects.select_related("entry__lottery__org", "entry__user", "prize").filter(code=code).first()
    if win is None or not may_verify(actor, win.entry.lottery.org):
        raise NotFound(_("没有找到这个领奖码，或它不属于你管理的工会"))
    codes.mark_picked_up(Win, win, actor, cancelled_message=_("该奖品已取消"))
    lottery = win.entry.lottery
    audit.record(
        actor, "lottery.pickup", org=lottery.org, target=win, summary=f"{lottery.title} · {win.prize.name}", ip=ip
    )
    return win


# --- the public record ----------------------------------------------------------------------------


def mask_name(name: str) -> str:
    """张三 → 张*: the first character only, so a list of entrants names nobody."""
    name = (name or "").strip()
    return (name[0] if name else "") + "*"


def public_record(lottery: Lottery) -> dict:
    """Everything needed to check the draw, and nothing personal: masked names, no phones or ID numbers."""
    entries = list(
        LotteryEntry.objects.filter(lottery=lottery).order_by("id").values_list("id", "user_id", "user__name")
    )
    numbers = _entrant_numbers([(e, u) for e, u, _n in entries])
    drawn = lottery.status == LotteryStatus.DRAWN
    winners = []
    if drawn:
        winners = [
            {"entry_id": e, "prize_id": p}
            for e, p in Win.objects.filter(entry__lottery=lottery)
            .order_by("prize__position", "prize_id", "id")
            .values_list("entry_id", "prize_id")
        ]
    return {
        "id": lottery.pk,
        "title": lottery.title,
        "org": {"id": lottery.org_id, "name": lottery.org.name},
        "entry_cost": lottery.entry_cost,
        "max_entries_per_member": lottery.max_entries_per_member,
        "opens_at": lottery.opens_at.isoformat(),
        "closes_at": lottery.closes_at.isoformat(),
        "draw_at": lottery.draw_at.isoformat(),
        "refund_losers": lottery.refund_losers,
        "status": lottery.status,
        "algorithm": ALGORITHM,
        "commitment": lottery.commitment,
        "seed": lottery.seed if drawn else None,
        "drawn_at": lottery.drawn_at.isoformat() if lottery.drawn_at else None,
        "prizes": [
            {"id": p.pk, "name": p.name, "quantity": p.quantity, "position": p.position}
            for p in Prize.objects.filter(lottery=lottery).order_by("position", "id")
        ],
        "entries": [{"id": e, "m": numbers[e], "member": mask_name(name)} for e, _u, name in entries],
        "winners": winners,
    }


def verify_record(record: dict) -> tuple[bool, list[str]]:
    """Re-run the draw from a published record: (ok, findings). Needs only the record itself."""
    findings = []
    seed = record.get("seed")
    if not seed:
        return False, [_("尚未开奖：记录中没有公布种子")]
    if commitment_of(seed) != record.get("commitment"):
        findings.append(_("种子的 SHA-256 与开奖前公布的承诺值不符"))
    entries = record.get("entries") or []
    prizes = sorted(record.get("prizes") or [], key=lambda p: (p["position"], p["id"]))
    expected = compute_winners(
        seed,
        [e["id"] for e in entries],
        [(p["id"], p["quantity"]) for p in prizes],
        {e["id"]: e.get("m", ("entry", e["id"])) for e in entries},
    )
    published = [(w["entry_id"], w["prize_id"]) for w in record.get("winners") or []]
    if sorted(expected) != sorted(published):
        missing = sorted(set(expected) - set(published))
        extra = sorted(set(published) - set(expected))
        findings.append(
            _("中奖名单与重新计算的结果不一致：应中奖未公布 %(missing)s；公布但不应中奖 %(extra)s")
            % {"missing": missing, "extra": extra}
        )
    return not findings, findings


def winners_by_entry(lottery) -> dict[int, Win]:
    return {w.entry_id: w for w in Win.objects.filter(entry__lottery=lottery).select_related("prize")}


def my_entries(user, lottery) -> list[LotteryEntry]:
    return list(LotteryEntry.objects.filter(lottery=lottery, user=user).order_by("id"))


def my_wins(user, lottery=None):
    qs = Win.objects.filter(entry__user=user).select_related("prize", "entry__lottery")
    return qs.filter(entry__lottery=lottery) if lottery is not None else qs


def lotteries_for_cadre(actor):
    return scoping.scoped(Lottery.objects.select_related("org"), actor, "org__path")
