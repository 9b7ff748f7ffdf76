"""评选大赛: contests that add judges' scores to the online votes, rank the candidates and award
prize tiers.

final = vote_weight% × vote_norm + (100 − vote_weight)% × judge_norm, where
- vote_norm = the candidate's votes / the most votes any candidate got (0 when nobody voted);
- judge_norm = the mean over the contest's judges of Σ weight × score / Σ weight × max_score
  (a score a judge has not given counts 0; publishing waits until every score is in).
Finals are compared rounded to 4 decimals; equal finals share a rank (1, 2, 2, 4). Prize tiers are
handed out by position in that order ("一等奖" × 1, "二等奖" × 2 …). When a tie straddles a tier
boundary, the ranking says so (`tie_at_cut`) and awards are not published until a cadre decides
each tied candidate's tier explicitly: ties are shown, never silently broken.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from core import audit
from core.errors import DomainError, Forbidden, Invalid
from orgs.models import CadreRole

from ..models import Award, Criterion, Judge, Option, Poll, PollKind, Score
from .errors import VoteErrors
from .polls import require_admin, results
from .tally import ensure_sealed, is_closed

MAX_JUDGES = 50
MAX_CRITERIA = 20
FOUR = Decimal("0.0001")


def _contest(poll: Poll) -> None:
    if poll.kind != PollKind.CONTEST:
        raise Invalid(VoteErrors.NOT_A_CONTEST, _("只有评选大赛可以设置评委和评分"), fields={"kind": _("不是评选大赛")})


def _not_published(poll: Poll) -> None:
    if Award.objects.filter(poll=poll).exists():
        raise DomainError(VoteErrors.AWARDS_PUBLISHED, _("获奖结果已公布，不能再修改"))


# --- setting up ------------------------------------------------------------------------------------


def judge_pool(org):
    """The accounts that may judge a contest of `org`: active accounts of people within its
    subtree — certified members of a union in it, or cadres with a role on an active org in it.
    The console's judge picker offers exactly these; set_judges accepts exactly these.

    A contest is its union's own affair, and an admin of a small union must not be able to turn
    the judges' list into a directory of the whole deployment: anyone else is refused exactly like
    an id that does not exist."""
    path = org.path
    members = Q(member__certified_at__isnull=False, member__org__path__startswith=path)
    cadres = Q(pk__in=CadreRole.objects.filter(org__path__startswith=path, org__is_active=True).values("user_id"))
    return User.objects.filter(members | cadres, is_active=True).distinct()


def eligible_judges(poll: Poll, user_ids: list[int]) -> set[int]:
    """Which of these accounts may judge the contest (judge_pool of the poll's org)."""
    return set(judge_pool(poll.org).filter(pk__in=user_ids).values_list("pk", flat=True))


@transaction.atomic
def set_judges(actor, poll: Poll, user_ids: object, *, ip: str | None = None) -> list[Judge]:
    """The contest's judges are exactly these accounts (a removed judge's scores go with them), each
    a person within the poll's org subtree (eligible_judges). An id outside it and one that does not
    exist get the same error, which names only the ids the caller sent: no oracle of who exists."""
    require_admin(actor, poll.org, _("只有该组织或上级组织的管理员可以设置评委"))
    _contest(poll)
    _not_published(poll)
    ok = isinstance(user_ids, list | tuple) and len(user_ids) <= MAX_JUDGES
    ok = ok and all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**62 for i in user_ids)
    if not ok:
        raise Invalid(VoteErrors.INVALID_JUDGES, _("评委名单无效"), fields={"user_ids": _("最多50个账号编号")})
    wanted = list(dict.fromkeys(user_ids))
    accepted = eligible_judges(poll, wanted)
    refused = [i for i in wanted if i not in accepted]
    if refused:
        message = _("这些账号不能担任评委（评委须是本组织及下级组织的认证会员或干部）：%(ids)s") % {
            "ids": "、".join(map(str, refused))
        }
        raise Invalid(VoteErrors.INVALID_JUDGES, message, fields={"user_ids": message})
    Judge.objects.filter(poll=poll).exclude(user_id__in=wanted).delete()
    have = set(Judge.objects.filter(poll=poll).values_list("user_id", flat=True))
    Judge.objects.bulk_create([Judge(poll=poll, user_id=i) for i in wanted if i not in have])
    judges = list(Judge.objects.filter(poll=poll).select_related("user").order_by("id"))
    audit.record(
        actor, "contest.judges", org=poll.org, target=poll, summary=f"{poll.title} · 评委{len(judges)}人", ip=ip
    )
    return judges


def _positive(value: object, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return None
    return value


@transaction.atomic
def set_criteria(actor, poll: Poll, criteria: object, *, ip: str | None = None) -> list[Criterion]:
    """The contest's criteria, in this order: [{"name", "max_score", "weight", "id"?}]. An item with
    the id of an existing criterion updates it (its scores stay); criteria left out are removed."""
    require_admin(actor, poll.org, _("只有该组织或上级组织的管理员可以设置评分标准"))
    _contest(poll)
    _not_published(poll)
    if not isinstance(criteria, list | tuple) or not 1 <= len(criteria) <= MAX_CRITERIA:
        raise Invalid("invalid_criteria", _("评分标准应为1到20项"), fields={"criteria": _("1到20项")})
    existing = {c.pk: c for c in Criterion.objects.filter(poll=poll)}
    errors: dict[str, str] = {}
    cleaned = []
    names: set[str] = set()
    for i, item in enumerate(criteria):
        item = item if isinstance(item, dict) else {}
        name = item.get("name")
        name = name.strip() if isinstance(name, str) else ""
        max_score = _positive(item.get("max_score", 10), 1, 1000)
        weight = _positive(item.get("weight", 1), 1, 100)
        cid = item.get("id")
        if not name or len(name) > 50 or name in names:
            errors[f"criteria.{i}.name"] = _("必填、不重复，不超过50字")
        if max_score is None:
            errors[f"criteria.{i}.max_score"] = _("应为1到1000的整数")
        if weight is None:
            errors[f"criteria.{i}.weight"] = _("应为1到100的整数")
        if cid is not None and cid not in existing:
            errors[f"criteria.{i}.id"] = _("不是本大赛的评分标准")
        names.add(name)
        cleaned.append((cid, name, max_score, weight))
    if errors:
        raise Invalid("invalid_criteria", _("请检查评分标准：") + "、".join(errors), fields=errors)
    keep = {cid for cid, *_ in cleaned if cid is not None}
    Criterion.objects.filter(poll=poll).exclude(pk__in=keep).delete()
    out = []
    for position, (cid, name, max_score, weight) in enumerate(cleaned):
        if cid is None:
            out.append(
                Criterion.objects.create(poll=poll, name=name, max_score=max_score, weight=weight, position=position)
            )
        else:
            c = existing[cid]
            c.name, c.max_score, c.weight, c.position = name, max_score, weight, position
            c.save(update_fields=["name", "max_score", "weight", "position"])
            # A lower maximum must not leave a score above it.
            Score.objects.filter(criterion=c, score__gt=max_score).update(score=max_score)
            out.append(c)
    summary = f"{poll.title} · " + "、".join(f"{c.name}({c.max_score}分×{c.weight})" for c in out)
    audit.record(actor, "contest.criteria", org=poll.org, target=poll, summary=summary, ip=ip)
    return out


# --- scoring -------------------------------------------------------------------------------------


def _score(value: object, max_score: int) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        d = Decimal(value) if isinstance(value, int | str | Decimal) else None
    except InvalidOperation:
        return None
    if d is None or not d.is_finite() or d < 0 or d > max_score or d != d.quantize(Decimal("0.01")):
        return None
    return d.quantize(Decimal("0.01"))


def submit_scores(judge_user, poll: Poll, option_id: object, scores: object) -> list[Score]:
    """A judge's scores for one candidate, {criterion id: score} (0…max_score, up to 2 decimals);
    given again, they replace the earlier ones. Until the awards are published."""
    _contest(poll)
    judge = Judge.objects.filter(poll=poll, user_id=judge_user.pk).first()
    if judge is None:
        raise Forbidden(VoteErrors.NOT_A_JUDGE, _("您不是本次评选大赛的评委"))
    option = None
    if isinstance(option_id, int) and not isinstance(option_id, bool):
        option = Option.objects.filter(poll=poll, pk=option_id).first()
    if option is None:
        raise Invalid("invalid_option", _("候选项不属于本次评选"), fields={"option_id": _("不属于本次评选")})
    if not isinstance(scores, dict) or not scores:
        raise Invalid(VoteErrors.INVALID_SCORE, _("请填写分数"), fields={"scores": _("必填")})
    criteria = {c.pk: c for c in Criterion.objects.filter(poll=poll)}
    errors: dict[str, str] = {}
    cleaned: dict[int, Decimal] = {}
    for key, value in scores.items():
        cid = int(key) if isinstance(key, int) or (isinstance(key, str) and key.isdigit()) else None
        criterion = criteria.get(cid) if cid is not None else None
        if criterion is None:
            errors[str(key)] = _("不是本大赛的评分标准")
            continue
        score = _score(value, criterion.max_score)
        if score is None:
            errors[str(cid)] = _("应为0到%(max)s之间的数（最多两位小数）") % {"max": criterion.max_score}
            continue
        cleaned[cid] = score
    if errors:
        raise Invalid(VoteErrors.INVALID_SCORE, _("请检查分数：") + "、".join(errors), fields=errors)
    now = timezone.now()
    with transaction.atomic():
        # Awards are published under the same lock (the poll row), so a score cannot slip in after.
        Poll.objects.select_for_update(no_key=True).filter(pk=poll.pk).first()
        _not_published(poll)
        Score.objects.bulk_create(
            [
                Score(judge=judge, option=option, criterion_id=cid, score=score, updated_at=now)
                for cid, score in sorted(cleaned.items())
            ],
            update_conflicts=True,
            unique_fields=["judge", "option", "criterion"],
            update_fields=["score", "updated_at"],
        )
    return list(Score.objects.filter(judge=judge, option=option).order_by("criterion_id"))


def judge_progress(poll: Poll) -> list[dict]:
    """Per judge: candidates scored on every criterion, out of all candidates."""
    n_criteria = Criterion.objects.filter(poll=poll).count()
    n_options = Option.objects.filter(poll=poll).count()
    per: dict[int, dict[int, int]] = {}
    for judge_id, option_id in Score.objects.filter(judge__poll=poll).values_list("judge_id", "option_id"):
        per.setdefault(judge_id, {}).setdefault(option_id, 0)
        per[judge_id][option_id] += 1
    out = []
    for judge in Judge.objects.filter(poll=poll).select_related("user").order_by("id"):
        scored = sum(1 for n in per.get(judge.pk, {}).values() if n_criteria and n >= n_criteria)
        masked = judge.user.phone_masked
        out.append(
            {
                "judge_id": judge.pk,
                "user_id": judge.user_id,
                "name": judge.user.name or masked,
                "phone": masked,  # masked: a phone is never shown whole
                "scored": scored,
                "total": n_options,
                "pct": round(100 * scored / n_options) if n_options else 0,
                "complete": n_options > 0 and scored == n_options,
            }
        )
    return out


# --- ranking and awards --------------------------------------------------------------------------


def _tier_at(tiers: list[dict], position: int) -> str | None:
    """The prize tier of a 1-based position, or None past the last prize."""
    end = 0
    for tier in tiers:
        end += tier["count"]
        if position <= end:
            return tier["name"]
    return None


def ranking(poll: Poll) -> list[dict]:
    """Candidates best first: votes, vote_norm, judge_norm, final (rounded to 4 decimals), rank
    (ties share it), tier by position, `tied` when the rank is shared and `tie_at_cut` when a tie
    straddles a tier boundary (the cadre must resolve it before publishing)."""
    options = list(Option.objects.filter(poll=poll).order_by("position", "id"))
    votes = {o["id"]: o["votes"] for o in results(poll)["options"]}
    criteria = list(Criterion.objects.filter(poll=poll))
    judges = list(Judge.objects.filter(poll=poll).values_list("pk", flat=True))
    max_total = sum(c.weight * c.max_score for c in criteria)
    weight = {c.pk: c.weight for c in criteria}
    judged: dict[int, Fraction] = {o.pk: Fraction(0) for o in options}
    if judges and max_total:
        for option_id, criterion_id, score in Score.objects.filter(judge__poll=poll).values_list(
            "option_id", "criterion_id", "score"
        ):
            if option_id in judged and criterion_id in weight:
                judged[option_id] += Fraction(score) * weight[criterion_id]
        for option_id in judged:
            judged[option_id] /= max_total * len(judges)
    top = max((votes.get(o.pk, 0) for o in options), default=0)
    vw = Fraction(poll.vote_weight, 100)
    rows = []
    for o in options:
        vote_norm = Fraction(votes.get(o.pk, 0), top) if top else Fraction(0)
        final = vw * vote_norm + (1 - vw) * judged[o.pk]
        rows.append(
            {
                "option_id": o.pk,
                "title": o.title,
                "position": o.position,
                "votes": votes.get(o.pk, 0),
                "vote_norm": float(round(vote_norm, 4)),
                "judge_norm": float(round(judged[o.pk], 4)),
                "final_decimal": (Decimal(final.numerator) / Decimal(final.denominator)).quantize(FOUR, ROUND_HALF_UP),
            }
        )
    rows.sort(key=lambda r: (-r["final_decimal"], r["position"]))
    tiers = [t for t in (poll.prize_tiers or []) if t.get("count")]
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1]["final_decimal"] == rows[i]["final_decimal"]:
            j += 1
        first_tier, last_tier = _tier_at(tiers, i + 1), _tier_at(tiers, j + 1)
        for r in rows[i : j + 1]:
            r["rank"] = i + 1
            r["tier"] = first_tier
            r["tied"] = j > i
            r["tie_at_cut"] = j > i and first_tier != last_tier
        i = j + 1
    for r in rows:
        r["final"] = float(r["final_decimal"])
    return rows


def _scores_complete(poll: Poll) -> bool:
    if poll.vote_weight >= 100:
        return True
    n_judges = Judge.objects.filter(poll=poll).count()
    n_criteria = Criterion.objects.filter(poll=poll).count()
    n_options = Option.objects.filter(poll=poll).count()
    if not n_judges or not n_criteria:
        return False
    return Score.objects.filter(judge__poll=poll).count() >= n_judges * n_criteria * n_options


def publish_awards(actor, poll: Poll, resolutions: dict | None = None, *, ip: str | None = None) -> list[Award]:
    """Award the prize tiers by the ranking, once, after close. A tie straddling a tier boundary is
    refused (409 tie_at_cut, naming the tied candidates) unless `resolutions` gives every such
    candidate its tier explicitly: {option id: tier name, or "" for no prize}."""
    require_admin(actor, poll.org, _("只有该组织或上级组织的管理员可以公布获奖结果"))
    _contest(poll)
    if not poll.prize_tiers:
        raise Invalid("no_prize_tiers", _("本大赛没有设置奖项"), fields={"prize_tiers": _("未设置")})
    if not is_closed(poll):
        raise DomainError(VoteErrors.NOT_CLOSED, _("投票结束后才能公布获奖结果"))
    poll = ensure_sealed(poll)
    if not _scores_complete(poll):
        raise DomainError(VoteErrors.SCORES_INCOMPLETE, _("还有评委没有完成评分"))
    resolved: dict[int, str | None] = {}
    names = {t["name"] for t in poll.prize_tiers}
    bad: dict[str, str] = {}
    for key, tier in (resolutions or {}).items():
        oid = int(key) if isinstance(key, int) or (isinstance(key, str) and key.isdigit()) else None
        if oid is None or (tier not in names and tier not in ("", None)):
            bad[str(key)] = _("应为本大赛的奖项名称，或留空表示不获奖")
            continue
        resolved[oid] = tier or None
    if bad:
        raise Invalid("invalid_resolution", _("并列处理无效"), fields=bad)
    rows = ranking(poll)
    unresolved = {str(r["option_id"]): r["title"] for r in rows if r["tie_at_cut"] and r["option_id"] not in resolved}
    if unresolved:
        raise DomainError(
            VoteErrors.TIE_AT_CUT,
            _("奖项名额分界处出现并列：%(names)s，请逐一指定奖项后再公布") % {"names": "、".join(unresolved.values())},
            fields={k: _("并列，请指定奖项") for k in unresolved},
        )
    awards = []
    for r in rows:
        tier = resolved[r["option_id"]] if r["tie_at_cut"] else r["tier"]
        if tier:
            awards.append(
                Award(
                    poll=poll,
                    option_id=r["option_id"],
                    tier=tier,
                    rank=r["rank"],
                    final_score=r["final_decimal"],
                    awarded_by=actor,
                )
            )
    try:
        with transaction.atomic():
            Poll.objects.select_for_update(no_key=True).filter(pk=poll.pk).first()
            _not_published(poll)
            Award.objects.bulk_create(awards)
            summary = f"{poll.title} · " + "、".join(f"{a.tier}:{a.option_id}" for a in awards)
            audit.record(
                actor,
                "contest.awards",
                org=poll.org,
                target=poll,
                summary=summary,
                data={"resolutions": {str(k): v for k, v in resolved.items()}},
                ip=ip,
            )
    except IntegrityError:
        raise DomainError(VoteErrors.AWARDS_PUBLISHED, _("获奖结果已公布")) from None
    return list(Award.objects.filter(poll=poll).select_related("option").order_by("rank", "id"))
