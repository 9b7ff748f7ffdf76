"""Publishing and finding activities: create (or propose), decide proposals, edit, cover, cancel.

Who publishes: an admin cadre whose scope covers the org publishes at once; the admin of an
active interest club publishes club-only activities for its members; a certified member of the
org's subtree (who is neither) proposes, and an admin cadre covering the org approves (with
edits) or rejects with a reason.

Who reaches an activity (else 404, like a missing one), the same rule as polls: an activity open
to everyone reaches everybody; members reach the activities of their union and of every union
above it; club members reach their clubs' activities; cadres reach those in their subtrees; the
organizer and the proposer reach their own. Proposals and rejected ones reach only the proposer
and cadres. Who may sign up is signups.py's business.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from clubs.models import Club, ClubMembership, ClubRole, ClubStatus, MembershipStatus
from core import audit
from core.errors import DomainError, Forbidden, Invalid, NotFound
from members.services import standing_of
from notifications.services.notices import notify
from orgs import scoping
from orgs.models import CadreRole, CadreRoleKind, Org

from ..models import Activity, ActivityStatus, Eligibility, Signup, SignupStatus
from . import fields as checks
from .covers import set_cover
from .errors import ActivityErrors

__all__ = [
    "activities_for_cadre",
    "activities_for_user",
    "activity_for_user",
    "can_manage",
    "can_edit",
    "cancel_activity",
    "create_activity",
    "decide_proposal",
    "member_url",
    "proposals_for_cadre",
    "reaches",
    "set_cover",
    "update_activity",
]


def member_url(activity_or_id) -> str:
    """Where the member end shows the activity (for notices)."""
    return f"/m/activities/{getattr(activity_or_id, 'pk', activity_or_id)}/"


def _club_admin(user, club: Club | None) -> bool:
    return (
        club is not None
        and club.status == ClubStatus.ACTIVE
        and ClubMembership.objects.filter(
            club=club, user=user, role=ClubRole.ADMIN, status=MembershipStatus.ACTIVE
        ).exists()
    )


def my_club_ids(user) -> list[int]:
    """The active clubs the person is an active member of."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        ClubMembership.objects.filter(
            user=user, status=MembershipStatus.ACTIVE, club__status=ClubStatus.ACTIVE
        ).values_list("club_id", flat=True)
    )


# --- publishing ------------------------------------------------------------------------------------


def create_activity(
    actor,
    org: Org,
    *,
    title: object,
    starts_at: object,
    ends_at: object,
    capacity: object,
    waitlist: object = True,
    eligibility: object = Eligibility.MEMBERS,
    category: object = "other",
    description: object = "",
    place: object = "",
    signup_opens_at: object = None,
    signup_closes_at: object = None,
    cancel_until: object = None,
    extra_fields: object = None,
    points_cost: object = 0,
    points_reward: object = 0,
    club: Club | None = None,
    ip: str | None = None,
) -> Activity:
    """Publish an activity (admin cadre covering the org, or a club admin for club members), or
    propose it (a certified member of the org's subtree). Invalid names every bad value; nothing
    is saved unless all are good. A proposal carries no points reward (refused on the field): the
    cadre who approves it sets one, in the approval's edits or later by editing."""
    if club is not None:
        org = club.org  # a club's activities belong to the club's union
    is_cadre = scoping.covers(actor, org, admin=True)
    standing = standing_of(actor)
    in_subtree = standing.certified and standing.org_path is not None and standing.org_path.startswith(org.path)
    data = {
        "title": title,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "capacity": capacity,
        "waitlist": waitlist,
        "eligibility": eligibility,
        "category": category,
        "description": description,
        "place": place,
        "signup_opens_at": signup_opens_at,
        "signup_closes_at": signup_closes_at,
        "cancel_until": cancel_until,
        "extra_fields": extra_fields,
        "points_cost": points_cost,
        "points_reward": points_reward,
    }
    club_publish = not is_cadre and eligibility == Eligibility.CLUB and _club_admin(actor, club)
    if not (is_cadre or club_publish or in_subtree):
        raise Forbidden(
            ActivityErrors.NOT_ALLOWED, _("只有该工会或上级工会的管理员可以发布活动；会员可以发起本工会的活动")
        )
    problems: dict[str, str] = {}
    try:
        values = checks.clean(data, creating=True)
    except Invalid as e:
        values, first = None, e
        problems.update(e.fields)
    # Problems only the club and the caller's standing decide, reported with the rest.
    extra: dict[str, str] = {}
    if eligibility == Eligibility.CLUB and club is None:
        extra["club"] = _("请选择兴趣联盟")
    if club is not None and club.status != ClubStatus.ACTIVE:
        extra["club"] = _("该兴趣联盟尚未成立或已解散")
    # A reward is paid from the org's budget at check-in: only an admin cadre of the org decides it,
    # when approving a proposal or by editing, never the member or club admin who asks for it.
    if club_publish and checks.as_int(points_reward):
        extra["points_reward"] = _("签到奖励积分由工会干部设置")
    elif not (is_cadre or club_publish) and points_reward not in (None, "") and checks.as_int(points_reward) != 0:
        extra["points_reward"] = _("会员发起的活动不能设置签到奖励积分，由审核的工会干部在通过时设置")
    if extra:
        problems.update(extra)
        if len(problems) == 1:
            ((name, message),) = problems.items()
            raise Invalid(ActivityErrors.INVALID, message, fields=problems)
        raise Invalid(ActivityErrors.INVALID, _("请检查以下各项：") + "；".join(problems.values()), fields=problems)
    if values is None:
        raise first
    published = is_cadre or club_publish
    with transaction.atomic():
        activity = Activity.objects.create(
            org=org,
            club=club,
            status=ActivityStatus.PUBLISHED if published else ActivityStatus.PROPOSED,
            organizer=actor,
            member_initiated=not is_cadre,
            created_by=actor,
            **values,
        )
        if published:
            audit.record(actor, "activity.create", org=org, target=activity, summary=activity.title, ip=ip)
        else:
            audit.record(actor, "activity.propose", org=org, target=activity, summary=activity.title, ip=ip)
            _notify_deciders(activity)
    return activity


def _notify_deciders(activity: Activity) -> None:
    """Tell the admin cadres of the nearest union (the org or the closest one above it that has
    admins) that a proposal waits for them."""
    paths = scoping.self_and_ancestor_paths(activity.org.path)
    roles = list(
        CadreRole.objects.filter(org__path__in=paths, role=CadreRoleKind.ADMIN, org__is_active=True).values_list(
            "user_id", "org__depth"
        )
    )
    if not roles:
        return
    deepest = max(depth for _, depth in roles)
    notify(
        [u for u, depth in roles if depth == deepest],
        kind="activity.proposed",
        title=_("待审核的活动：%(title)s") % {"title": activity.title},
        body=_("会员发起的活动等待审核"),
        url=f"/c/activities/{activity.pk}/",
        ref=f"activity:{activity.pk}",
    )


def _locked(activity: Activity | int) -> Activity:
    pk = getattr(activity, "pk", activity)
    try:
        return Activity.objects.select_for_update(of=("self",)).select_related("org", "club").get(pk=pk)
    except (Activity.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("未找到该活动")) from None


def can_manage(user, activity: Activity) -> bool:
    """The organizer or a cadre whose scope covers the activity's org: sees sign-ups, checks in."""
    return activity.organizer_id == getattr(user, "pk", None) or scoping.covers(user, activity.org)


def can_edit(user, activity: Activity) -> bool:
    """The organizer or an admin cadre covering the org: edits, messages, cancels."""
    return activity.organizer_id == getattr(user, "pk", None) or scoping.covers(user, activity.org, admin=True)


def _require_edit(actor, activity: Activity) -> None:
    if can_edit(actor, activity):
        return
    if reaches(actor, activity):
        raise Forbidden(ActivityErrors.NOT_ALLOWED, _("只有活动组织者或工会管理员可以操作"))
    raise NotFound(_("未找到该活动"))


@transaction.atomic
def decide_proposal(
    actor, activity: Activity, *, approve: bool, reason: str = "", edits: dict | None = None, ip: str | None = None
) -> Activity:
    """Approve (optionally with edits: it is published with the member as organizer) or reject
    with a reason; the proposer is told either way."""
    activity = _locked(activity)
    if not scoping.covers(actor, activity.org, admin=True):
        if not reaches(actor, activity):
            raise NotFound(_("未找到该活动"))
        raise Forbidden(ActivityErrors.NOT_ALLOWED, _("只有该工会或上级工会的管理员可以审核活动"))
    if activity.status != ActivityStatus.PROPOSED:
        raise DomainError(ActivityErrors.NOT_PROPOSED, _("该活动不在待审核状态"))
    reason = str(reason or "").strip()[:300]
    now = timezone.now()
    if approve:
        edits = dict(edits or {})
        # The activity's times are checked again: a proposal approved late may have to move.
        values = checks.clean({**edits, "starts_at": edits.get("starts_at", activity.starts_at)}, current=activity)
        for name, value in values.items():
            setattr(activity, name, value)
        activity.status = ActivityStatus.PUBLISHED
    else:
        if not reason:
            raise Invalid(ActivityErrors.REASON_REQUIRED, _("驳回时请填写原因"), fields={"reason": _("请填写驳回原因")})
        activity.status = ActivityStatus.REJECTED
    activity.decision_reason, activity.decided_by, activity.decided_at = reason, actor, now
    activity.save()
    if approve:
        title = _("您发起的活动已通过审核：%(title)s") % {"title": activity.title}
        body = _("活动已发布，您是活动组织者。") + (reason and " " + reason)
    else:
        title = _("您发起的活动未通过审核：%(title)s") % {"title": activity.title}
        body = _("原因：%(reason)s") % {"reason": reason}
    notify(
        [activity.created_by_id],
        kind="activity.approved" if approve else "activity.rejected",
        title=title,
        body=body,
        url=member_url(activity),
        ref=f"activity:{activity.pk}",
    )
    audit.record(
        actor,
        "activity.approve" if approve else "activity.reject",
        org=activity.org,
        target=activity,
        summary=activity.title + ("" if approve else f" · {reason}"),
        ip=ip,
    )
    return activity


def update_activity(actor, activity: Activity, *, ip: str | None = None, **fields) -> Activity:
    """Edit an activity (organizer or admin cadre). Capacity never goes below the confirmed count;
    more seats confirm the first on the waitlist at once; points cost and sign-up fields are fixed
    once someone has signed up; participants are told when time or place change."""
    from .signups import promote

    with transaction.atomic():
        activity = _locked(activity)
        _require_edit(actor, activity)
        if activity.status not in (ActivityStatus.PUBLISHED, ActivityStatus.PROPOSED):
            raise DomainError(ActivityErrors.NOT_PUBLISHED, _("已取消或未通过的活动不能修改"))
        values = checks.clean(fields, current=activity)
        has_signups = Signup.objects.filter(activity=activity).exists()
        locked = [
            name
            for name in ("points_cost", "extra_fields")
            if name in values and values[name] != getattr(activity, name) and has_signups
        ]
        if locked:
            raise DomainError(
                ActivityErrors.LOCKED_AFTER_SIGNUPS,
                _("已有人报名，报名所需积分和报名信息项不能再修改"),
                fields={name: _("已有人报名，不能修改") for name in locked},
            )
        if "capacity" in values and values["capacity"] < activity.confirmed_count:
            message = _("已有%(n)s人报名成功，名额不能少于此数") % {"n": activity.confirmed_count}
            raise Invalid(ActivityErrors.INVALID_CAPACITY, message, fields={"capacity": message})
        if (
            values.get("points_reward")
            and values["points_reward"] != activity.points_reward
            and not scoping.covers(actor, activity.org, admin=True)
        ):
            message = _("签到奖励积分由工会干部设置")
            raise Invalid(ActivityErrors.INVALID, message, fields={"points_reward": message})
        if values.get("eligibility") == Eligibility.CLUB and activity.club_id is None:
            message = _("请选择兴趣联盟")
            raise Invalid(ActivityErrors.INVALID, message, fields={"eligibility": message})
        moved = [n for n in ("starts_at", "ends_at", "place") if n in values and values[n] != getattr(activity, n)]
        for name, value in values.items():
            setattr(activity, name, value)
        if values:
            activity.save(update_fields=list(values))
        promoted = []
        free = activity.capacity - activity.confirmed_count
        if activity.status == ActivityStatus.PUBLISHED and free > 0 and activity.waitlist_count:
            promoted = promote(activity, free)
        if moved and activity.status == ActivityStatus.PUBLISHED:
            people = Signup.objects.filter(activity=activity).exclude(status=SignupStatus.CANCELLED)
            local = timezone.localtime(activity.starts_at)
            notify(
                people.values_list("user_id", flat=True),
                kind="activity.changed",
                title=_("活动信息有变更：%(title)s") % {"title": activity.title},
                body=_("时间：%(when)s；地点：%(place)s")
                % {"when": local.strftime("%Y-%m-%d %H:%M"), "place": activity.place or "-"},
                url=member_url(activity),
                ref=f"activity:{activity.pk}",
            )
        if values:
            audit.record(
                actor,
                "activity.update",
                org=activity.org,
                target=activity,
                summary=f"{activity.title} · " + ",".join(sorted(values)),
                data={"promoted": [s.user_id for s in promoted]} if promoted else None,
                ip=ip,
            )
    return activity


def cancel_activity(actor, activity: Activity, *, reason: str, ip: str | None = None) -> Activity:
    """Cancel before it starts, in one transaction: every live sign-up cancelled, points costs
    refunded through the ledger (from the org budget they were paid into), everyone told."""
    from .signups import refund_many

    reason = str(reason or "").strip()[:300]
    if not reason:
        raise Invalid(ActivityErrors.REASON_REQUIRED, _("请填写取消原因"), fields={"reason": _("请填写取消原因")})
    with transaction.atomic():
        activity = _locked(activity)
        _require_edit(actor, activity)
        now = timezone.now()
        if activity.status == ActivityStatus.CANCELLED:
            raise DomainError(ActivityErrors.ALREADY_CANCELLED, _("活动已取消"))
        if activity.status == ActivityStatus.REJECTED:
            raise DomainError(ActivityErrors.NOT_PUBLISHED, _("未通过审核的活动无需取消"))
        if activity.status == ActivityStatus.PUBLISHED and (now >= activity.starts_at or activity.checked_in_count):
            raise DomainError(ActivityErrors.ALREADY_STARTED, _("活动已开始，不能取消"))
        live = list(
            Signup.objects.select_for_update()
            .filter(activity=activity)
            .exclude(status=SignupStatus.CANCELLED)
            .order_by("id")
        )
        refund_many(activity, [s for s in live if s.payment_id and not s.refund_id], actor=actor)
        Signup.objects.filter(pk__in=[s.pk for s in live]).update(
            status=SignupStatus.CANCELLED, cancelled_at=now, cancelled_by_activity=True
        )
        activity.status = ActivityStatus.CANCELLED
        activity.cancelled_at, activity.cancel_reason = now, reason
        activity.confirmed_count = activity.waitlist_count = 0
        activity.save(update_fields=["status", "cancelled_at", "cancel_reason", "confirmed_count", "waitlist_count"])
        notify(
            [s.user_id for s in live],
            kind="activity.cancelled",
            title=_("活动已取消：%(title)s") % {"title": activity.title},
            body=_("原因：%(reason)s") % {"reason": reason}
            + (_("；报名积分已退回") if activity.points_cost and any(s.payment_id for s in live) else ""),
            url=member_url(activity),
            ref=f"activity:{activity.pk}",
        )
        audit.record(
            actor,
            "activity.cancel",
            org=activity.org,
            target=activity,
            summary=f"{activity.title} · {reason} · {len(live)}人",
            ip=ip,
        )
    return activity


# --- finding ---------------------------------------------------------------------------------------


def _activities() -> QuerySet[Activity]:
    return Activity.objects.select_related("org", "club")


def reaches(user, activity: Activity) -> bool:
    """Whether the activity shows for the person at all (see the module docstring)."""
    uid = getattr(user, "pk", None)
    if uid is None:
        return False
    if activity.organizer_id == uid or activity.created_by_id == uid:
        return True
    if scoping.covers(user, activity.org):
        return True
    if activity.status in (ActivityStatus.PROPOSED, ActivityStatus.REJECTED):
        return False
    if activity.eligibility == Eligibility.EVERYONE:
        return True
    standing = standing_of(user)
    if standing.org_path is not None and standing.org_path.startswith(activity.org.path):
        return True
    if activity.club_id and activity.club_id in my_club_ids(user):
        return True
    # Someone who signed up keeps seeing it (e.g. after moving to another union).
    return Signup.objects.filter(activity_id=activity.pk, user_id=uid).exists()


def activity_for_user(user, activity_id: object) -> Activity:
    """The activity if it reaches the person; NotFound otherwise (missing and out of reach look alike)."""
    try:
        activity = _activities().select_related("organizer").get(pk=int(activity_id))
    except (Activity.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该活动")) from None
    if not reaches(user, activity):
        raise NotFound(_("未找到该活动"))
    return activity


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_current_timezone())


def activities_for_user(
    user,
    *,
    category: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    scope: str = "all",
    include_past: bool = False,
) -> QuerySet[Activity]:
    """Published activities the person reaches that have not ended (all of them with
    include_past), soonest first; scope "org" (their union and above), "clubs" (their clubs) or
    "mine" (those they signed up for, newest first, ended ones included).

    Each branch is a range scan on an (…, status, ends_at) index, so the page costs the same
    however many activities have ended or belong to other unions."""
    if not getattr(user, "is_authenticated", False):
        return Activity.objects.none()
    now = timezone.now()
    qs = _activities()
    if scope == "mine":
        mine = Signup.objects.filter(user=user).exclude(status=SignupStatus.CANCELLED).values("activity_id")
        qs = qs.filter(pk__in=mine).order_by("-starts_at", "-id")
    else:
        standing = standing_of(user)
        org_ids: list[int] = []
        if standing.org_path is not None:
            org_ids = list(
                Org.objects.filter(path__in=scoping.self_and_ancestor_paths(standing.org_path)).values_list(
                    "pk", flat=True
                )
            )
        clubs = my_club_ids(user)
        q = Q(pk__in=[])
        if scope in ("all", "org") and org_ids:
            q |= Q(org_id__in=org_ids)
        if scope in ("all", "clubs") and clubs:
            q |= Q(club_id__in=clubs)
        if scope == "all":
            q |= Q(eligibility=Eligibility.EVERYONE)
        qs = qs.filter(q, status=ActivityStatus.PUBLISHED).order_by("starts_at", "id")
        if not include_past:
            qs = qs.filter(ends_at__gt=now)
    if category:
        qs = qs.filter(category=category)
    if date_from:
        qs = qs.filter(starts_at__gte=_day_start(date_from))
    if date_to:
        qs = qs.filter(starts_at__lt=_day_start(date_to + dt.timedelta(days=1)))
    return qs


def activities_for_cadre(actor, *, status: str | None = None) -> QuerySet[Activity]:
    """Every activity in the cadre's subtrees, newest start first."""
    qs = scoping.scoped(_activities().select_related("organizer"), actor, "org__path")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-starts_at", "-id")


def proposals_for_cadre(actor) -> QuerySet[Activity]:
    """Members' proposals waiting for a decision in the cadre's subtrees, oldest first."""
    qs = scoping.scoped(_activities().select_related("organizer"), actor, "org__path")
    return qs.filter(status=ActivityStatus.PROPOSED).order_by("created_at", "id")
