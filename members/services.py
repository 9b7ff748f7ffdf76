"""What members and cadres do with membership: apply to join, transfer, verify cards (certification: certification.py)."""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from core import audit, idcard, pii
from core.errors import DomainError, Forbidden, Invalid, NotFound
from orgs import scoping
from orgs.models import Org

from .models import JoinApplication, Member, MemberRequest, MembershipPeriod, RequestStatus, Transfer


class MemberErrors:
    ALREADY_CERTIFIED = "already_certified"
    ALREADY_MEMBER = "already_member"
    ID_NUMBER_IN_USE = "id_number_in_use"
    APPLICATION_PENDING = "application_pending"
    TRANSFER_PENDING = "transfer_pending"
    NOT_A_MEMBER = "not_a_member"
    SAME_ORG = "same_org"
    ORG_INACTIVE = "org_inactive"
    REASON_REQUIRED = "reason_required"
    NOT_PENDING = "not_pending"
    CARD_EXPIRED = "card_expired"
    CARD_INVALID = "card_invalid"


def _clean_id(raw: object) -> str:
    try:
        return idcard.validate(raw)
    except idcard.IdNumberError as e:
        raise Invalid(e.code, e.message, fields={"id_number": e.message}) from None


def _clean_name(raw: object) -> str:
    name = str(raw or "").strip()
    if not name:
        raise Invalid("required", _("请填写真实姓名"), fields={"name": _("请填写真实姓名")})
    if len(name) > 50:
        raise Invalid("too_long", _("姓名不能超过50个字"), fields={"name": _("不能超过50个字")})
    return name


def member_of(user) -> Member | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.member
    except Member.DoesNotExist:
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Standing:
    """What most checks need to know about a person: certified member of which org (path)."""

    certified: bool
    org_id: int | None
    org_path: str | None


def standing_of(user) -> Standing:
    """The person's standing; free when the API's token lookup already loaded it."""
    ms = getattr(user, "membership", None)
    if ms is not None:
        return Standing(ms.certified, ms.org_id, ms.org_path)
    member = member_of(user)
    if member is None:
        return Standing(False, None, None)
    return Standing(member.certified, member.org_id, member.org.path)


@transaction.atomic
def apply_to_join(user: User, org: Org, name: object, id_number: object, workplace: object = "") -> JoinApplication:
    name, id_number = _clean_name(name), _clean_id(id_number)
    workplace = str(workplace or "").strip()[:100]
    if member_of(user) is not None:
        raise DomainError(MemberErrors.ALREADY_MEMBER, _("您已是会员"))
    if not org.is_active:
        raise DomainError(MemberErrors.ORG_INACTIVE, _("该工会已停用，请选择其他工会"))
    # No roster check here: an answer naming a roster row would be the oracle that certification
    # refuses to be. A cadre approving an application whose ID number is on a roster is told so.
    id_hash = pii.id_number_index(id_number)
    try:
        with transaction.atomic():
            app = JoinApplication.objects.create(
                user=user,
                org=org,
                name=name,
                id_number_enc=pii.encrypt(id_number),
                id_number_hash=id_hash,
                workplace=workplace,
            )
    except IntegrityError:
        raise DomainError(MemberErrors.APPLICATION_PENDING, _("您已有一份待审核的入会申请")) from None
    if not user.name:
        user.name = name
        user.save(update_fields=["name"])
    audit.record(user, "join.apply", org=org, target=app, summary=name)
    return app


def join_applications_for(actor, status: str | None = RequestStatus.PENDING):
    qs = scoping.scoped(JoinApplication.objects.select_related("org", "user"), actor, "org__path")
    return qs.filter(status=status) if status else qs


@transaction.atomic
def decide_join(actor, app_id: object, approve: bool, reason: str = "", *, ip: str | None = None) -> JoinApplication:
    app = _locked(join_applications_for(actor, None), app_id)
    reason = _check_decision(app, approve, reason)
    now = timezone.now()
    if approve:
        if member_of(app.user) is not None:
            raise DomainError(MemberErrors.ALREADY_MEMBER, _("申请人已是会员"))
        try:
            with transaction.atomic():
                member = Member.objects.create(
                    user=app.user,
                    org=app.org,
                    name=app.name,
                    id_number_enc=app.id_number_enc,
                    id_number_hash=app.id_number_hash,
                    phone_enc=app.user.phone_enc,
                    phone_hash=app.user.phone_hash,
                    gender=idcard.gender(pii.decrypt(app.id_number_enc)),
                    workplace=app.workplace,
                    joined_on=timezone.localdate(),
                    certified_at=now,
                )
        except IntegrityError:
            raise DomainError(MemberErrors.ID_NUMBER_IN_USE, _("该身份证号已在会员名册中")) from None
        MembershipPeriod.objects.create(member=member, org=app.org, started_at=now, how="application")
    _close(app, actor, approve, reason, now)
    audit.record(actor, "join.approve" if approve else "join.reject", org=app.org, target=app, summary=app.name, ip=ip)
    return app


def _check_decision(request: MemberRequest, approve: bool, reason: str) -> str:
    """A decision needs a pending request, and a rejection needs a reason. Returns the cleaned reason."""
    if request.status != RequestStatus.PENDING:
        raise DomainError(MemberErrors.NOT_PENDING, _("该申请已处理"))
    reason = (reason or "").strip()[:200]
    if not approve and not reason:
        raise Invalid(MemberErrors.REASON_REQUIRED, _("驳回时请填写原因"), fields={"reason": _("请填写驳回原因")})
    return reason


def _close(request: MemberRequest, actor, approve: bool, reason: str, now) -> None:
    request.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
    request.decision_reason, request.decided_by, request.decided_at = reason, actor, now
    request.save(update_fields=["status", "decision_reason", "decided_by", "decided_at"])


def _locked(qs, pk: object):
    try:
        return qs.select_for_update(of=("self",)).get(pk=int(pk))
    except (ValueError, TypeError, qs.model.DoesNotExist):
        raise NotFound() from None


@transaction.atomic
def request_transfer(user: User, to_org: Org, reason: object = "") -> Transfer:
    member = member_of(user)
    if member is None or not member.certified:
        raise DomainError(MemberErrors.NOT_A_MEMBER, _("只有已认证的会员可以申请转接"))
    if not to_org.is_active:
        raise DomainError(MemberErrors.ORG_INACTIVE, _("该工会已停用，请选择其他工会"))
    if to_org.pk == member.org_id:
        raise Invalid(MemberErrors.SAME_ORG, _("您已在该工会"), fields={"to_org": _("不能是当前所在工会")})
    try:
        with transaction.atomic():
            t = Transfer.objects.create(
                member=member, from_org_id=member.org_id, to_org=to_org, reason=str(reason or "").strip()[:200]
            )
    except IntegrityError:
        raise DomainError(MemberErrors.TRANSFER_PENDING, _("您已有一份待处理的转接申请")) from None
    audit.record(user, "transfer.request", org=to_org, target=t, summary=f"{member.org.name} → {to_org.name}")
    return t


def transfers_for(actor, status: str | None = RequestStatus.PENDING):
    """Transfers that either side's cadres can see."""
    qs = Transfer.objects.select_related("member", "from_org", "to_org").filter(
        scoping.path_q(actor, "from_org__path") | scoping.path_q(actor, "to_org__path")
    )
    return qs.filter(status=status) if status else qs


@transaction.atomic
def decide_transfer(actor, transfer_id: object, approve: bool, reason: str = "", *, ip: str | None = None) -> Transfer:
    t = _locked(transfers_for(actor, None), transfer_id)
    if not scoping.covers(actor, t.to_org):
        raise Forbidden("receiving_union_decides", _("转接由转入工会的干部审核"))
    reason = _check_decision(t, approve, reason)
    now = timezone.now()
    if approve:
        member = Member.objects.select_for_update().get(pk=t.member_id)
        if member.org_id != t.from_org_id:
            raise DomainError(MemberErrors.NOT_PENDING, _("会员所在工会已变化，该申请已失效"))
        MembershipPeriod.objects.filter(member=member, ended_at__isnull=True).update(ended_at=now)
        MembershipPeriod.objects.create(member=member, org=t.to_org, started_at=now, how="transfer")
        member.org = t.to_org
        member.save(update_fields=["org", "updated_at"])
    _close(t, actor, approve, reason, now)
    summary = f"{t.member.name}: {t.from_org.name} → {t.to_org.name}"
    audit.record(
        actor, "transfer.approve" if approve else "transfer.reject", org=t.to_org, target=t, summary=summary, ip=ip
    )
    audit.record(
        actor, "transfer.approve" if approve else "transfer.reject", org=t.from_org, target=t, summary=summary, ip=ip
    )
    return t


@transaction.atomic
def cancel_transfer(user: User, transfer_id: object) -> Transfer:
    member = member_of(user)
    t = _locked(Transfer.objects.filter(member=member), transfer_id) if member else None
    if t is None:
        raise NotFound()
    if t.status != RequestStatus.PENDING:
        raise DomainError(MemberErrors.NOT_PENDING, _("该申请已处理"))
    t.status = RequestStatus.CANCELLED
    t.save(update_fields=["status"])
    return t


# --- member card ------------------------------------------------------------------------------

_CARD_SALT = "unionhome.member-card"


def card_token(member: Member) -> str:
    """A signed, expiring token naming only the member's id: the QR never carries an ID number."""
    return signing.dumps({"m": member.pk}, salt=_CARD_SALT, compress=True)


def verify_card(actor, token: str) -> Member:
    """A cadre checks a scanned card. Any cadre may verify any card (a member shows it anywhere)."""
    if not scoping.is_cadre(actor):
        raise Forbidden("cadre_only", _("只有工会干部可以核验会员证"))
    try:
        data = signing.loads(token.strip(), salt=_CARD_SALT, max_age=settings.MEMBER_CARD_TTL_SECONDS)
    except signing.SignatureExpired:
        raise DomainError(
            MemberErrors.CARD_EXPIRED, _("会员证二维码已过期，请会员刷新后重新出示"), status=422
        ) from None
    except signing.BadSignature:
        raise DomainError(MemberErrors.CARD_INVALID, _("这不是有效的会员证二维码"), status=422) from None
    member = Member.objects.select_related("org").filter(pk=data.get("m")).first()
    if member is None or not member.certified:
        raise DomainError(MemberErrors.CARD_INVALID, _("该会员证无效"), status=422)
    audit.record(actor, "card.verify", org=member.org, target=member, summary=member.name)
    return member


# --- cadre reads ------------------------------------------------------------------------------


def members_for(actor, org: Org, *, direct: bool = False):
    """Members of the org's subtree (or only its own), for a cadre whose role reaches the org."""
    if not scoping.covers(actor, org):
        raise NotFound(_("未找到该组织"))
    qs = Member.objects.select_related("org")
    return qs.filter(org=org) if direct else qs.filter(org__path__startswith=org.path)


def member_for_cadre(actor, member_id: object) -> Member:
    try:
        return scoping.scoped(Member.objects.select_related("org", "user"), actor, "org__path").get(pk=int(member_id))
    except (Member.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("未找到该会员")) from None


def reveal_pii(actor, member: Member, *, ip: str | None = None) -> dict[str, str]:
    """Unmasked ID number and phone for a cadre in scope; every reveal is audited."""
    member_for_cadre(actor, member.pk)
    audit.record(actor, "pii.view", org=member.org, target=member, summary=member.name, ip=ip)
    return {"id_number": pii.decrypt(member.id_number_enc), "phone": pii.decrypt(member.phone_enc)}
