"""投票评选: create a poll, find it, vote, see results, close and seal it, list the receipts.

Who reaches a poll (else 404, like a missing one): everybody reaches polls open to everyone;
members reach the polls of their union and of every union above it; cadres reach the polls in
their subtrees. Who may vote (else 403 not_eligible): in a members poll, certified members of
the poll's union or a union below it; in an everyone poll, anyone signed in; with
`block_new_accounts`, only accounts that existed when the poll opened.

Casting is `ballots.cast_ballot` (the plain-SQL hot path); counting, sealing and recounts are
`tally` (the published tally and the SHA-256 chain). Their public names are re-exported here so
pages, the API and commands call one module.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Forbidden, Invalid, NotFound
from members.services import standing_of
from orgs import scoping
from orgs.models import Org

from ..models import COUNTER_SHARDS, Ballot, Eligibility, Option, OptionCount, Poll, PollKind, ResultsVisibility
from . import receipts as receipt_codes
from .ballots import ballot_day, cast_ballot, eligibility_error, state_error
from .errors import VoteErrors
from .tally import (
    Recount,
    counters,
    ensure_sealed,
    is_closed,
    latest_recount,
    recount,
    refresh_recount,
    refresh_stale_recounts,
    seal,
    seal_due_polls,
)

__all__ = [
    "Recount",
    "can_see_results",
    "cast_ballot",
    "close_poll",
    "create_poll",
    "find_receipt",
    "my_ballots",
    "poll_for_cadre",
    "poll_for_user",
    "polls_for_cadre",
    "polls_for_user",
    "public_record",
    "public_record_chunks",
    "latest_recount",
    "receipts_page",
    "receipts_window",
    "recount",
    "refresh_recount",
    "refresh_stale_recounts",
    "require_closed",
    "results",
    "results_for",
    "seal",
    "seal_due_polls",
    "set_option_photo",
    "status_of",
    "voter_state",
]

MAX_OPTIONS = 200
MIN_OPTIONS = 2
MAX_PER_DAY = 100
MAX_TIERS = 10
PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_MAX_SIDE = 800
PHOTO_MAX_PIXELS = 40_000_000  # a 5 MB file can still claim a huge canvas (a decompression bomb)
PHOTO_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


# --- creating ------------------------------------------------------------------------------------


def _int_or_none(value: object, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return None
    return value


def _when(value: object) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _clean_options(options: object, errors: dict) -> list[tuple[str, str]]:
    if not isinstance(options, list | tuple) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        errors["options"] = _("候选项应为2到200个")
        return []
    cleaned: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(options):
        if not isinstance(item, dict):
            errors[f"options.{i}"] = _("应为包含 title 的对象")
            continue
        title = item.get("title")
        title = title.strip() if isinstance(title, str) else ""
        description = item.get("description") or ""
        if not title or len(title) > 100:
            errors[f"options.{i}.title"] = _("必填，不超过100字")
        elif title in seen:
            errors[f"options.{i}.title"] = _("与前面的候选项重名")
        if not isinstance(description, str) or len(description) > 2000:
            errors[f"options.{i}.description"] = _("不超过2000字")
            description = ""
        seen.add(title)
        cleaned.append((title, description.strip()))
    return cleaned


def _clean_tiers(tiers: object, errors: dict) -> list[dict]:
    if tiers is None:
        return []
    if not isinstance(tiers, list | tuple) or len(tiers) > MAX_TIERS:
        errors["prize_tiers"] = _("奖项设置应为不超过10个的列表")
        return []
    out, names = [], set()
    for i, tier in enumerate(tiers):
        name = tier.get("name") if isinstance(tier, dict) else None
        name = name.strip() if isinstance(name, str) else ""
        count = _int_or_none(tier.get("count") if isinstance(tier, dict) else None, 1, 1000)
        if not name or len(name) > 20 or name in names:
            errors[f"prize_tiers.{i}.name"] = _("必填、不重复，不超过20字")
        if count is None:
            errors[f"prize_tiers.{i}.count"] = _("应为1到1000的整数")
        names.add(name)
        out.append({"name": name, "count": count})
    return out


def require_admin(actor, org: Org, message: str) -> None:
    if not scoping.covers(actor, org):
        raise NotFound(_("未找到该投票"))
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden(VoteErrors.ADMIN_REQUIRED, message)


@transaction.atomic
def create_poll(
    actor,
    org: Org,
    *,
    title: object,
    options: object,
    max_choices: object,
    opens_at: object,
    closes_at: object,
    ballots_per_day: object = None,
    eligibility: object = Eligibility.MEMBERS,
    results: object = ResultsVisibility.LIVE,
    kind: object = PollKind.POLL,
    description: object = "",
    block_new_accounts: object = False,
    vote_weight: object = 100,
    prize_tiers: object = None,
    ip: str | None = None,
) -> Poll:
    """A new poll with its options and their counter rows. Every bad field is named at once
    (Invalid with `fields`); nothing is written unless all are good."""
    if not scoping.covers(actor, org, admin=True):
        raise Forbidden(VoteErrors.ADMIN_REQUIRED, _("只有该组织或上级组织的管理员可以发起投票"))
    errors: dict[str, str] = {}
    title = title.strip() if isinstance(title, str) else ""
    if not title or len(title) > 100:
        errors["title"] = _("必填，不超过100字")
    if not isinstance(description, str) or len(description) > 5000:
        errors["description"] = _("不超过5000字")
        description = ""
    cleaned = _clean_options(options, errors)
    choices = _int_or_none(max_choices, 1, max(1, len(cleaned) or MAX_OPTIONS))
    if choices is None:
        errors["max_choices"] = _("应为1到候选项数之间的整数")
    per_day = None if ballots_per_day is None else _int_or_none(ballots_per_day, 1, MAX_PER_DAY)
    if ballots_per_day is not None and per_day is None:
        errors["ballots_per_day"] = _("应为1到100的整数，或不填（每人共一票）")
    if eligibility not in Eligibility.values:
        errors["eligibility"] = _("应为 members 或 everyone")
    if results not in ResultsVisibility.values:
        errors["results"] = _("应为 live 或 after_close")
    if kind not in PollKind.values:
        errors["kind"] = _("应为 poll 或 contest")
    if not isinstance(block_new_accounts, bool):
        errors["block_new_accounts"] = _("应为 true 或 false")
    weight = _int_or_none(vote_weight, 0, 100)
    if weight is None:
        errors["vote_weight"] = _("应为0到100的整数")
    tiers = _clean_tiers(prize_tiers, errors)
    start, end = _when(opens_at), _when(closes_at)
    if start is None:
        errors["opens_at"] = _("请填写开始时间（ISO 8601，带时区）")
    if end is None:
        errors["closes_at"] = _("请填写截止时间（ISO 8601，带时区）")
    elif end <= timezone.now():
        errors["closes_at"] = _("截止时间应晚于现在")
    elif start is not None and end <= start:
        errors["closes_at"] = _("截止时间应晚于开始时间")
    if errors:
        code = "invalid_window" if set(errors) <= {"opens_at", "closes_at"} else "invalid"
        raise Invalid(code, _("请检查：") + "、".join(errors), fields=errors)
    poll = Poll.objects.create(
        org=org,
        kind=kind,
        title=title,
        description=description.strip(),
        max_choices=choices,
        ballots_per_day=per_day,
        eligibility=eligibility,
        results=results,
        opens_at=start,
        closes_at=end,
        block_new_accounts=block_new_accounts,
        vote_weight=weight,
        prize_tiers=tiers,
        created_by=actor,
    )
    made = Option.objects.bulk_create(
        [Option(poll=poll, title=t, description=d, position=i) for i, (t, d) in enumerate(cleaned)]
    )
    OptionCount.objects.bulk_create(
        [OptionCount(option=o, shard=s) for o in made for s in range(COUNTER_SHARDS)], batch_size=1000
    )
    summary = f"{title} · {len(made)}项 · " + (f"每天{per_day}票" if per_day else "每人一票")
    audit.record(actor, "poll.create", org=org, target=poll, summary=summary, ip=ip)
    return poll


def set_option_photo(actor, option: Option, uploaded_file, *, ip: str | None = None) -> Option:
    """Store a candidate's photo re-encoded as a JPEG of at most 800 px (never the uploaded bytes):
    JPEG, PNG, WebP or GIF by content, up to 5 MB; Invalid(fields={"photo"}) otherwise."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    poll = Poll.objects.select_related("org").defer("chain_checkpoints").get(pk=option.poll_id)
    require_admin(actor, poll.org, _("只有该组织或上级组织的管理员可以设置候选照片"))

    def bad(message: str) -> Invalid:
        return Invalid("invalid_photo", message, fields={"photo": message})

    if uploaded_file is None:
        raise bad(_("请选择照片"))
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > PHOTO_MAX_BYTES:
        raise bad(_("照片不能超过5MB"))
    data = uploaded_file.read(PHOTO_MAX_BYTES + 1)
    if len(data) > PHOTO_MAX_BYTES:
        raise bad(_("照片不能超过5MB"))
    if not data:
        raise bad(_("照片文件是空的"))
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            if fmt not in PHOTO_FORMATS:
                raise bad(_("只支持 JPEG、PNG、WebP、GIF 格式的图片"))
            if probe.width * probe.height > PHOTO_MAX_PIXELS:
                raise bad(_("图片尺寸过大"))
            probe.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P"):
                img = img.convert("RGBA")
                canvas = Image.new("RGB", img.size, (255, 255, 255))
                canvas.paste(img, mask=img.getchannel("A"))
                img = canvas
            else:
                img = img.convert("RGB")
            img.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85, optimize=True)
    except Invalid:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise bad(_("无法识别的图片文件，请上传 JPEG、PNG、WebP 或 GIF")) from None
    old = option.photo.name if option.photo else ""
    option.photo.save(f"{uuid.uuid4().hex}.jpg", ContentFile(out.getvalue()), save=False)
    Option.objects.filter(pk=option.pk).update(photo=option.photo.name)
    if old:
        option.photo.storage.delete(old)
    audit.record(actor, "poll.option_photo", org=poll.org, target=poll, summary=option.title, ip=ip)
    return option


# --- finding -------------------------------------------------------------------------------------


def _polls() -> QuerySet[Poll]:
    # The checkpoints (1,600 of them at 1.6M ballots) are read only by recounts.
    return Poll.objects.select_related("org").defer("chain_checkpoints")


def reaches(user, poll: Poll) -> bool:
    """Whether the poll shows for the person at all (see the module docstring)."""
    if poll.eligibility == Eligibility.EVERYONE:
        return True
    standing = standing_of(user)
    if standing.org_path is not None and standing.org_path.startswith(poll.org.path):
        return True
    return scoping.covers(user, poll.org)


def polls_for_user(user) -> QuerySet[Poll]:
    """Polls the person may see: open to everyone, of their union and above, in their cadre subtrees."""
    standing = standing_of(user)
    q = Q(eligibility=Eligibility.EVERYONE)
    if standing.org_path is not None:
        q |= Q(org__path__in=scoping.self_and_ancestor_paths(standing.org_path))
    if scoping.is_cadre(user):
        q |= scoping.path_q(user, "org__path")
    return _polls().filter(q)


def poll_for_user(user, poll_id: object) -> Poll:
    """The poll if it reaches the person; NotFound otherwise (missing and out of reach look alike)."""
    try:
        poll = _polls().get(pk=int(poll_id))
    except (Poll.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该投票")) from None
    if not reaches(user, poll):
        raise NotFound(_("未找到该投票"))
    return poll


def polls_for_cadre(actor) -> QuerySet[Poll]:
    return scoping.scoped(_polls(), actor, "org__path")


def poll_for_cadre(actor, poll_id: object, *, admin: bool = False) -> Poll:
    """A poll in the cadre's subtrees (NotFound otherwise); Forbidden when `admin` and only staff."""
    try:
        poll = _polls().get(pk=int(poll_id))
    except (Poll.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该投票")) from None
    if not scoping.covers(actor, poll.org):
        raise NotFound(_("未找到该投票"))
    if admin and not scoping.covers(actor, poll.org, admin=True):
        raise Forbidden(VoteErrors.ADMIN_REQUIRED, _("此操作需要该组织或上级组织的管理员权限"))
    return poll


def status_of(poll: Poll, now: dt.datetime | None = None) -> str:
    """ "upcoming" | "open" | "closed" (closed early, or past closes_at)."""
    now = now or timezone.now()
    if is_closed(poll, now):
        return "closed"
    if now < poll.opens_at:
        return "upcoming"
    return "open"


# --- results -------------------------------------------------------------------------------------


def _eligible(user, poll: Poll) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return eligibility_error(poll.eligibility, poll.org.path, False, poll.opens_at, standing_of(user), None) is None


def can_see_results(user, poll: Poll) -> bool:
    """The poll's cadres always; otherwise anyone eligible while results are live, and anyone the
    poll reaches after close (the portal publishes closed results)."""
    if getattr(user, "is_authenticated", False) and scoping.covers(user, poll.org):
        return True
    if status_of(poll) == "closed":
        return not getattr(user, "is_authenticated", False) or reaches(user, poll)
    return poll.results == ResultsVisibility.LIVE and _eligible(user, poll)


def results(poll: Poll) -> dict:
    """{"total_ballots", "options": [{"id", "votes"}]}: live from the counters (voided ballots are
    taken out of them); after close the published tally (sealing it first if nobody has)."""
    if not poll.chain_head and is_closed(poll):
        ensure_sealed(poll)
    if poll.chain_head and poll.published_tally is not None:
        return poll.published_tally
    return counters(poll.pk)


def results_for(user, poll: Poll) -> dict:
    """Results if the person may see them; Forbidden(results_hidden) otherwise."""
    if not can_see_results(user, poll):
        raise Forbidden(VoteErrors.RESULTS_HIDDEN, _("投票结束后公布结果"))
    return results(poll)


# --- the voter's side ----------------------------------------------------------------------------


def my_ballots(user, poll: Poll) -> QuerySet[Ballot]:
    return Ballot.objects.filter(poll_id=poll.pk, voter_id=user.pk).order_by("id")


def voter_state(user, poll: Poll) -> dict:
    """For the member page: can_vote, reason (an error code) and reason_text, ballots left today
    (or in all), and the last receipt. Reads only."""
    now = timezone.now()
    mine = list(my_ballots(user, poll).values_list("day", "receipt", "created_at"))
    last = max(mine, key=lambda b: b[2])[1] if mine else ""
    day, slots = ballot_day(poll, now)
    used = sum(1 for d, _r, _c in mine if d == day)
    left = max(0, slots - used)
    error = state_error(poll, now)
    if error is None and getattr(user, "is_authenticated", False):
        joined = user.date_joined if poll.block_new_accounts else None  # a deferred field for API users
        error = eligibility_error(
            poll.eligibility, poll.org.path, poll.block_new_accounts, poll.opens_at, standing_of(user), joined
        )
    if error is None and left == 0:
        if poll.ballots_per_day:
            error = DomainError(VoteErrors.DAILY_LIMIT_REACHED, _("今天的票已经投完，明天再来"))
        else:
            error = DomainError(VoteErrors.ALREADY_VOTED, _("您已经投过票了"))
    return {
        "can_vote": error is None,
        "reason": error.code if error else "",
        "reason_text": error.message if error else "",
        "left_today": left,
        "per_day": poll.ballots_per_day,
        "last_receipt": last,
        "voted": bool(mine),
    }


# --- closing -------------------------------------------------------------------------------------


def close_poll(actor, poll: Poll, *, ip: str | None = None) -> Poll:
    """Close now (an early close is recorded as such), then seal: the published tally and chain."""
    require_admin(actor, poll.org, _("只有该组织或上级组织的管理员可以结束投票"))
    now = timezone.now()
    with transaction.atomic():
        # FOR UPDATE: waits for ballots in flight (PostgreSQL: they hold the row FOR KEY SHARE); later ones see the close.
        locked = Poll.objects.select_for_update().only("id", "closes_at", "closed_at").get(pk=poll.pk)
        if locked.closed_at is not None or now >= locked.closes_at:
            raise DomainError(VoteErrors.ALREADY_CLOSED, _("投票已经结束"))
        early = now < locked.closes_at
        Poll.objects.filter(pk=poll.pk).update(closed_at=now, closed_early=early)
        audit.record(
            actor, "poll.close", org=poll.org, target=poll, summary=poll.title + (" · 提前结束" if early else ""), ip=ip
        )
    poll.closed_at, poll.closed_early = now, early
    seal(poll)
    poll.refresh_from_db()
    return poll


# --- the public record after close ---------------------------------------------------------------


def require_closed(poll: Poll) -> Poll:
    """The poll, sealed (now, if nobody has yet); 409 not_closed while it is open."""
    if not is_closed(poll):
        raise DomainError(VoteErrors.NOT_CLOSED, _("投票结束后公布投票凭证"))
    return ensure_sealed(poll)


def _receipt_item(ballot_id: int, receipt: str, choices: str, void_id, created_at) -> dict:
    return {
        "id": ballot_id,
        "receipt": receipt,
        "choices": [int(c) for c in choices.split(",") if c],
        "voided": void_id is not None,
        "created_at": timezone.localtime(created_at).isoformat(),
    }


def receipts_page(poll: Poll, page: int = 1, page_size: int = 100) -> dict:
    """{"items": [{"id", "receipt", "choices", "voided", "created_at"}], "count"}: every ballot in id
    order, voided ones marked (polls are open ballots; voters are not named). After close only."""
    poll = require_closed(poll)
    size = min(max(1, int(page_size)), 200)
    page = min(max(1, int(page)), 10**9)
    start = (page - 1) * size
    rows = (
        Ballot.objects.filter(poll_id=poll.pk)
        .order_by("id")
        .values_list("id", "receipt", "choices", "void_id", "created_at")[start : start + size]
    )
    count = poll.chain_length if poll.chain_head else Ballot.objects.filter(poll_id=poll.pk).count()
    return {"items": [_receipt_item(*r) for r in rows], "count": count}


MAX_RECEIPTS_PAGE = 200


def receipts_window(poll: Poll, *, after: int | None = None, before: int | None = None, size: int = 100) -> dict:
    """One page of the receipts list, found by ballot id (keyset) rather than by offset, so the last
    page of a 1.6M-ballot poll costs what the first does: `after` an id (the next page), `before` an
    id (the previous one), or neither (the first page); `before` past the last id gives the last
    page. → {"items", "count", "next_after", "prev_before"}: the cursors of the
    neighbouring pages, None at either end. At most MAX_RECEIPTS_PAGE items. After close only."""
    poll = require_closed(poll)
    size = min(max(1, int(size)), MAX_RECEIPTS_PAGE)
    fields = ("id", "receipt", "choices", "void_id", "created_at")
    ballots = Ballot.objects.filter(poll_id=poll.pk)
    if before is not None:
        rows = list(ballots.filter(id__lt=before).order_by("-id").values_list(*fields)[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        more_after = bool(rows) and ballots.filter(id__gt=rows[-1][0]).exists()
    else:
        page = ballots.filter(id__gt=after) if after is not None else ballots
        rows = list(page.order_by("id").values_list(*fields)[: size + 1])
        more_after = len(rows) > size
        rows = rows[:size]
        more_before = after is not None and bool(rows) and ballots.filter(id__lt=rows[0][0]).exists()
    count = poll.chain_length if poll.chain_head else ballots.count()
    return {
        "items": [_receipt_item(*r) for r in rows],
        "count": count,
        "next_after": rows[-1][0] if rows and more_after else None,
        "prev_before": rows[0][0] if rows and more_before else None,
    }


def find_receipt(poll: Poll, code: object) -> dict | None:
    """The ballot behind a receipt (typed with or without dashes, any case), or None."""
    code = receipt_codes.normalize(code)
    if not code:
        return None
    row = (
        Ballot.objects.filter(poll_id=poll.pk, receipt=code)
        .values_list("id", "receipt", "choices", "void_id", "created_at")
        .first()
    )
    return _receipt_item(*row) if row else None


def public_record_chunks(poll: Poll, chunk: int = 5000) -> Iterator[str]:
    """public_record as JSON text, in pieces (for a streaming response): the same document as
    json.dumps(public_record(poll)), with the ballots read CHUNK at a time by id (tally.stream), so
    a big poll's ballots are never all in memory at once. Checks (closed, sealed) happen here, before
    the first piece: a streaming response cannot turn into an error once it has started."""
    import json

    record = public_record(poll, with_ballots=False)
    del record["ballots"]  # last: streamed after the rest
    head = json.dumps(record, ensure_ascii=False)
    return _record_pieces(poll.pk, head[:-1] + ', "ballots": [', chunk)


def _record_pieces(poll_id: int, head: str, chunk: int) -> Iterator[str]:
    import json

    from .tally import stream

    yield head
    first = True
    part: list[str] = []
    for bid, receipt, choices, stamp, void_id in stream(poll_id):
        part.append(json.dumps([bid, receipt, [int(c) for c in choices.split(",") if c], stamp, void_id]))
        if len(part) >= chunk:
            yield ("" if first else ", ") + ", ".join(part)
            first, part = False, []
    if part:
        yield ("" if first else ", ") + ", ".join(part)
    yield "]}"


def public_record(poll: Poll, *, with_ballots: bool = True) -> dict:
    """Everything needed to recount by hand after close: options, published tally, chain, voids and
    every ballot as its chain line's fields. (Large polls: tens of MB; the portal serves it.)"""
    from .tally import ALGORITHM, genesis, stream

    poll = require_closed(poll)
    return {
        "poll": {
            "id": poll.pk,
            "title": poll.title,
            "org": poll.org.name,
            "max_choices": poll.max_choices,
            "ballots_per_day": poll.ballots_per_day,
            "opens_at": poll.opens_at.isoformat(),
            "closes_at": poll.closes_at.isoformat(),
            "closed_at": poll.closed_at.isoformat() if poll.closed_at else None,
            "closed_early": poll.closed_early,
        },
        "options": [{"id": o.pk, "title": o.title} for o in poll.options.all()],
        "published_tally": poll.published_tally,
        "chain": {
            "algorithm": ALGORITHM,
            "genesis": genesis(poll.pk),
            "line": '[id,"receipt",[option ids],"created_at UTC","void batch id or null"] (no spaces)',
            "rule": "h_i = sha256(h_{i-1} + line_i), hex",
            "head": poll.chain_head,
            "length": poll.chain_length,
            "checkpoints": poll.chain_checkpoints,
        },
        "void_batches": [
            {"id": v.pk, "reason": v.reason, "ballots": v.ballots, "created_at": v.created_at.isoformat()}
            for v in poll.void_batches.order_by("id")
        ],
        "ballots": [
            [bid, receipt, [int(c) for c in choices.split(",") if c], stamp, void_id]
            for bid, receipt, choices, stamp, void_id in (stream(poll.pk) if with_ballots else ())
        ],
    }
