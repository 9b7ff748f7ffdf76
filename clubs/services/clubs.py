"""What people do with interest clubs (兴趣联盟): propose, decide, join, leave, approve joins,
promote, post — and who may see and run a club.

Reach: a member sees the active clubs of their own union and of every union above it (a
street-level club is open to everyone under the street). A club's page outside that reach
answers 404 like a missing one, except for the proposer (their own proposal) and a person who
still holds a membership (so they can always leave).

`members_count` is a database fact: every change of an active membership moves it with a
conditional UPDATE in the same transaction, and a CHECK keeps it ≥ 0. Admin changes (the last
admin may not leave) take the club row's lock first, so two admins leaving at once cannot both
pass the "another admin remains" check.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.errors import DomainError, Forbidden, Invalid, NotFound
from members.services import standing_of
from notifications.services.notices import notify
from orgs import scoping

from ..models import Club, ClubMembership, ClubPost, ClubRole, ClubStatus, JoinPolicy, MembershipStatus

MAX_OPEN_PROPOSALS = 3  # pending proposals per person: enough for real use, too few to flood the cadres


class ClubErrors:
    NOT_A_MEMBER = "not_a_member"  # not a certified member (followers can't join or propose)
    NAME_TAKEN = "name_taken"
    TOO_MANY_PROPOSALS = "too_many_proposals"
    NOT_PROPOSED = "not_proposed"
    REASON_REQUIRED = "reason_required"
    NOT_ACTIVE = "club_not_active"
    ALREADY_MEMBER = "already_member"
    ALREADY_PENDING = "already_pending"
    NOT_IN_CLUB = "not_in_club"
    LAST_ADMIN = "last_admin"
    NOT_CLUB_ADMIN = "not_club_admin"
    NOT_PENDING = "not_pending"


# --- who sees what ----------------------------------------------------------------------------


def _reach_q(user) -> Q:
    """Active clubs of the person's union and of the unions above it."""
    st = standing_of(user)
    if not st.certified or not st.org_path:
        return Q(pk__in=[])
    return Q(status=ClubStatus.ACTIVE, org__path__in=scoping.self_and_ancestor_paths(st.org_path))


def clubs_for_user(user) -> QuerySet[Club]:
    """Every active club the person may join (their union and above), biggest first."""
    if not getattr(user, "is_authenticated", False):
        return Club.objects.none()
    return Club.objects.filter(_reach_q(user)).select_related("org")


def my_clubs(user) -> QuerySet[Club]:
    """Clubs the person belongs to or has asked to join, and their own proposals (pending or turned down)."""
    if not getattr(user, "is_authenticated", False):
        return Club.objects.none()
    return (
        Club.objects.filter(
            Q(memberships__user=user) | Q(proposed_by=user, status__in=[ClubStatus.PROPOSED, ClubStatus.REJECTED])
        )
        .select_related("org")
        .distinct()
    )


def club_for_user(user, club_id: object) -> Club:
    """The club if the person may see it (in reach, their own proposal, or a membership); NotFound otherwise."""
    try:
        pk = int(club_id)
    except (TypeError, ValueError):
        raise NotFound(_("未找到该兴趣联盟")) from None
    if not getattr(user, "is_authenticated", False):
        raise NotFound(_("未找到该兴趣联盟"))
    club = (
        Club.objects.filter(pk=pk)
        .filter(_reach_q(user) | Q(proposed_by=user) | Q(memberships__user=user))
        .select_related("org")
        .first()
    )
    if club is None:
        raise NotFound(_("未找到该兴趣联盟"))
    return club


def clubs_for_cadre(user) -> QuerySet[Club]:
    """Clubs of the orgs the cadre's roles reach."""
    return scoping.scoped(Club.objects.select_related("org"), user, "org__path")


def club_for_cadre(user, club_id: object) -> Club:
    try:
        pk = int(club_id)
    except (TypeError, ValueError):
        raise NotFound(_("未找到该兴趣联盟")) from None
    club = clubs_for_cadre(user).filter(pk=pk).first()
    if club is None:
        raise NotFound(_("未找到该兴趣联盟"))
    return club


def membership_of(user, club: Club) -> ClubMembership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return ClubMembership.objects.filter(club=club, user=user).first()


def is_club_member(user, club: Club) -> bool:
    """An active member (admins included) of an active club."""
    if not getattr(user, "is_authenticated", False) or club.status != ClubStatus.ACTIVE:
        return False
    return ClubMembership.objects.filter(club=club, user=user, status=MembershipStatus.ACTIVE).exists()


def is_club_admin(user, club: Club) -> bool:
    """An admin of an active club (club admins post announcements and run club-only activities)."""
    if not getattr(user, "is_authenticated", False) or club.status != ClubStatus.ACTIVE:
        return False
    return ClubMembership.objects.filter(
        club=club, user=user, status=MembershipStatus.ACTIVE, role=ClubRole.ADMIN
    ).exists()


def _require_admin(user, club: Club) -> None:
    if not is_club_admin(user, club):
        raise Forbidden(ClubErrors.NOT_CLUB_ADMIN, _("只有联盟管理员可以这样做"))


def members(club: Club) -> QuerySet[ClubMembership]:
    """Active members, admins first, then by joining order."""
    return (
        ClubMembership.objects.filter(club=club, status=MembershipStatus.ACTIVE)
        .select_related("user")
        .order_by(F("role").asc(), "joined_at", "id")  # "admin" < "member"
    )


def join_requests(club: Club) -> QuerySet[ClubMembership]:
    return ClubMembership.objects.filter(club=club, status=MembershipStatus.PENDING).select_related("user")


def display_name(user) -> str:
    """A person's name as club pages show it: the name only, never the phone."""
    return user.name or _("会员%(id)s") % {"id": user.pk}


# --- proposing and deciding -------------------------------------------------------------------


def _text(raw: object, field: str, limit: int, *, required: bool, label: str) -> str:
    value = str(raw or "").strip()
    if required and not value:
        raise Invalid("required", _("请填写%(label)s") % {"label": label}, fields={field: _("必填")})
    if len(value) > limit:
        msg = _("%(label)s不能超过%(n)s个字") % {"label": label, "n": limit}
        raise Invalid("too_long", msg, fields={field: msg})
    return value


def propose(
    user, *, name: object, category: object = "", description: object = "", join_policy: object = JoinPolicy.OPEN
) -> Club:
    """A certified member proposes a club for their own union; a cadre of that union decides."""
    st = standing_of(user)
    if not st.certified or st.org_id is None:
        raise Forbidden(ClubErrors.NOT_A_MEMBER, _("完成实名认证的会员才能发起兴趣联盟"))
    name = _text(name, "name", 50, required=True, label=_("联盟名称"))
    category = _text(category, "category", 20, required=False, label=_("类别"))
    description = _text(description, "description", 2000, required=True, label=_("联盟简介"))
    if join_policy not in JoinPolicy.values:
        raise Invalid("invalid_choice", _("加入方式无效"), fields={"join_policy": _("请选择加入方式")})
    open_count = Club.objects.filter(proposed_by=user, status=ClubStatus.PROPOSED).count()
    if open_count >= MAX_OPEN_PROPOSALS:
        raise DomainError(
            ClubErrors.TOO_MANY_PROPOSALS,
            _("您已有%(n)s个待审核的联盟申请，请等待审核后再发起") % {"n": open_count},
        )
    try:
        with transaction.atomic():
            club = Club.objects.create(
                org_id=st.org_id,
                name=name,
                category=category,
                description=description,
                join_policy=join_policy,
                proposed_by=user,
            )
    except IntegrityError:
        msg = _("本工会已有同名的兴趣联盟")
        raise DomainError(ClubErrors.NAME_TAKEN, msg, fields={"name": msg}) from None
    audit.record(user, "club.propose", org=club.org, target=club, summary=club.name)
    return club


def pending_proposals(cadre) -> QuerySet[Club]:
    return clubs_for_cadre(cadre).filter(status=ClubStatus.PROPOSED).select_related("proposed_by").order_by("id")


def decide(cadre, club_id: object, *, approve: bool, reason: object = "", ip: str | None = None) -> Club:
    """A cadre covering the club's union approves (the proposer becomes its first admin) or
    rejects with a reason. Deciding twice is refused (the status moves with a conditional UPDATE)."""
    club = club_for_cadre(cadre, club_id)
    reason = str(reason or "").strip()
    if not approve and not reason:
        msg = _("驳回时请填写原因")
        raise Invalid(ClubErrors.REASON_REQUIRED, msg, fields={"reason": msg})
    if len(reason) > 300:
        msg = _("原因不能超过300个字")
        raise Invalid("too_long", msg, fields={"reason": msg})
    now = timezone.now()
    new_status = ClubStatus.ACTIVE if approve else ClubStatus.REJECTED
    with transaction.atomic():
        moved = Club.objects.filter(pk=club.pk, status=ClubStatus.PROPOSED).update(
            status=new_status,
            decision_reason=reason,
            decided_by=cadre,
            decided_at=now,
            members_count=1 if approve else 0,
        )
        if moved != 1:
            raise DomainError(ClubErrors.NOT_PROPOSED, _("该申请已经处理过了"))
        club.refresh_from_db()
        if approve:
            ClubMembership.objects.create(
                club=club, user_id=club.proposed_by_id, role=ClubRole.ADMIN, status=MembershipStatus.ACTIVE
            )
            title = _("您发起的兴趣联盟“%(name)s”已通过审核") % {"name": club.name}
            body = _("您已成为联盟管理员，可以发布公告、审核加入申请、组织联盟活动。")
        else:
            title = _("您发起的兴趣联盟“%(name)s”未通过审核") % {"name": club.name}
            body = _("原因：%(reason)s") % {"reason": reason}
        notify(
            [club.proposed_by_id],
            kind="club.approved" if approve else "club.rejected",
            title=title,
            body=body,
            url=f"/m/clubs/{club.pk}/",
            ref=f"club:{club.pk}",
        )
        audit.record(
            cadre,
            "club.approve" if approve else "club.reject",
            org=club.org,
            target=club,
            summary=club.name,
            data={"reason": reason} if reason else None,
            ip=ip,
        )
    return club


# --- joining and leaving ----------------------------------------------------------------------


def _active_club_for(user, club_id: object) -> Club:
    club = club_for_user(user, club_id)
    if club.status != ClubStatus.ACTIVE:
        raise DomainError(ClubErrors.NOT_ACTIVE, _("该兴趣联盟尚未成立或已解散"))
    return club


def _count(club_id: int, delta: int) -> None:
    """Move members_count by ±1 with a conditional UPDATE (the CHECK backs it)."""
    qs = Club.objects.filter(pk=club_id, status=ClubStatus.ACTIVE)
    if delta < 0:
        qs = qs.filter(members_count__gte=-delta)
    if qs.update(members_count=F("members_count") + delta) != 1:
        raise DomainError(ClubErrors.NOT_ACTIVE, _("该兴趣联盟尚未成立或已解散"))


def join(user, club_id: object) -> ClubMembership:
    """Join an open club at once, or ask to join one that needs approval (a club admin decides)."""
    st = standing_of(user)
    if not st.certified:
        raise Forbidden(ClubErrors.NOT_A_MEMBER, _("完成实名认证的会员才能加入兴趣联盟"))
    club = _active_club_for(user, club_id)
    # Only clubs in reach can be joined (a former member who moved away can see, not rejoin).
    if not clubs_for_user(user).filter(pk=club.pk).exists():
        raise NotFound(_("未找到该兴趣联盟"))
    status = MembershipStatus.ACTIVE if club.join_policy == JoinPolicy.OPEN else MembershipStatus.PENDING
    with transaction.atomic():
        try:
            with transaction.atomic():
                ms = ClubMembership.objects.create(club=club, user=user, status=status)
        except IntegrityError:
            existing = membership_of(user, club)
            if existing is not None and existing.status == MembershipStatus.PENDING:
                raise DomainError(ClubErrors.ALREADY_PENDING, _("您的加入申请正在等待联盟管理员审核")) from None
            raise DomainError(ClubErrors.ALREADY_MEMBER, _("您已经是该联盟成员")) from None
        if status == MembershipStatus.ACTIVE:
            _count(club.pk, +1)
        else:
            admins = ClubMembership.objects.filter(
                club=club, role=ClubRole.ADMIN, status=MembershipStatus.ACTIVE
            ).values_list("user_id", flat=True)
            notify(
                admins,
                kind="club.join_request",
                title=_("%(who)s申请加入“%(name)s”") % {"who": display_name(user), "name": club.name},
                url=f"/m/clubs/{club.pk}/manage/",
                ref=f"club:{club.pk}",
            )
    return ms


def leave(user, club_id: object) -> None:
    """Leave a club, or withdraw a pending request. The only admin can't leave (promote someone first)."""
    club = club_for_user(user, club_id)
    with transaction.atomic():
        ms = ClubMembership.objects.select_for_update().filter(club=club, user=user).first()
        if ms is None:
            raise DomainError(ClubErrors.NOT_IN_CLUB, _("您不是该联盟成员"))
        if ms.role == ClubRole.ADMIN:
            Club.objects.select_for_update().filter(pk=club.pk).first()  # admin changes queue on the club row
            others = (
                ClubMembership.objects.filter(club=club, role=ClubRole.ADMIN, status=MembershipStatus.ACTIVE)
                .exclude(user=user)
                .exists()
            )
            if not others and club.status == ClubStatus.ACTIVE:
                raise DomainError(ClubErrors.LAST_ADMIN, _("您是联盟唯一的管理员，请先设置其他成员为管理员再退出"))
        if ClubMembership.objects.filter(pk=ms.pk).delete()[0] != 1:
            raise DomainError(ClubErrors.NOT_IN_CLUB, _("您不是该联盟成员"))
        if ms.status == MembershipStatus.ACTIVE and club.status == ClubStatus.ACTIVE:
            _count(club.pk, -1)


def decide_join(admin, club_id: object, user_id: object, *, approve: bool) -> ClubMembership | None:
    """A club admin approves (the person becomes a member) or declines a join request."""
    club = _active_club_for(admin, club_id)
    _require_admin(admin, club)
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        raise NotFound(_("未找到该申请")) from None
    with transaction.atomic():
        ms = (
            ClubMembership.objects.select_for_update()
            .select_related("user")
            .filter(club=club, user_id=uid, status=MembershipStatus.PENDING)
            .first()
        )
        if ms is None:
            raise DomainError(ClubErrors.NOT_PENDING, _("该申请已经处理过了"))
        if approve:
            if (
                ClubMembership.objects.filter(pk=ms.pk, status=MembershipStatus.PENDING).update(
                    status=MembershipStatus.ACTIVE, joined_at=timezone.now()
                )
                != 1
            ):
                raise DomainError(ClubErrors.NOT_PENDING, _("该申请已经处理过了"))
            _count(club.pk, +1)
            ms.status = MembershipStatus.ACTIVE
            title = _("您已加入兴趣联盟“%(name)s”") % {"name": club.name}
        else:
            ClubMembership.objects.filter(pk=ms.pk).delete()
            title = _("您加入“%(name)s”的申请未通过") % {"name": club.name}
        notify([uid], kind="club.join_decided", title=title, url=f"/m/clubs/{club.pk}/", ref=f"club:{club.pk}")
    return ms if approve else None


def promote(admin, club_id: object, user_id: object) -> ClubMembership:
    """A club admin makes an active member an admin too."""
    club = _active_club_for(admin, club_id)
    _require_admin(admin, club)
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        raise NotFound(_("未找到该成员")) from None
    with transaction.atomic():
        Club.objects.select_for_update().filter(pk=club.pk).first()
        moved = ClubMembership.objects.filter(
            club=club, user_id=uid, status=MembershipStatus.ACTIVE, role=ClubRole.MEMBER
        ).update(role=ClubRole.ADMIN)
        ms = ClubMembership.objects.select_related("user").filter(club=club, user_id=uid).first()
        if ms is None or ms.status != MembershipStatus.ACTIVE:
            raise NotFound(_("未找到该成员"))
        if moved:
            notify(
                [uid],
                kind="club.promoted",
                title=_("您已成为“%(name)s”的管理员") % {"name": club.name},
                url=f"/m/clubs/{club.pk}/manage/",
                ref=f"club:{club.pk}",
            )
            audit.record(admin, "club.promote", org=club.org, target=club, summary=display_name(ms.user))
    return ms


# --- posts ------------------------------------------------------------------------------------


def post(admin, club_id: object, *, title: object, body: object) -> ClubPost:
    """A club admin posts an announcement; every other member is notified."""
    club = _active_club_for(admin, club_id)
    _require_admin(admin, club)
    title = _text(title, "title", 100, required=True, label=_("标题"))
    body = _text(body, "body", 5000, required=True, label=_("内容"))
    with transaction.atomic():
        p = ClubPost.objects.create(club=club, author=admin, title=title, body=body)
        others = (
            ClubMembership.objects.filter(club=club, status=MembershipStatus.ACTIVE)
            .exclude(user=admin)
            .values_list("user_id", flat=True)
        )
        notify(
            others,
            kind="club.post",
            title=f"{club.name}：{title}",
            body=body[:200],
            url=f"/m/clubs/{club.pk}/#post-{p.pk}",
            ref=f"clubpost:{p.pk}",
        )
    return p


def upcoming_activities(club: Club, limit: int = 10):
    """The club's published activities that have not started yet, soonest first."""
    from activities.models import Activity, ActivityStatus

    return Activity.objects.filter(club=club, status=ActivityStatus.PUBLISHED, starts_at__gte=timezone.now()).order_by(
        "starts_at", "id"
    )[:limit]
