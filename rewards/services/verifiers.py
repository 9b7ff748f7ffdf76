"""核销员: merchant accounts that may confirm pickups (mall redemptions and lottery prizes) of an org's
subtree, and do nothing else. A supermarket or a cinema that hands out the goods is rarely a cadre;
the org's admin cadres add it by the phone it signed up with, and remove it."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from core import audit, phones, pii
from core.errors import Invalid, NotFound
from orgs import scoping
from orgs.models import Org

from ..models import Verifier

MAX_NOTE = 60


def verifier_paths(user) -> list[str]:
    """The org paths the person confirms pickups in as a 核销员 (read once per request)."""
    if not getattr(user, "is_authenticated", False):
        return []
    paths = getattr(user, "_verifier_paths", None)
    if paths is None:
        paths = list(Verifier.objects.filter(user=user, org__is_active=True).values_list("org__path", flat=True))
        user._verifier_paths = paths
    return paths


def is_verifier(user) -> bool:
    return bool(verifier_paths(user))


def may_verify(user, org: Org) -> bool:
    """A cadre whose scope reaches the org, or a 核销员 of it or of an org above it."""
    return scoping.covers(user, org) or any(org.path.startswith(p) for p in verifier_paths(user))


def verifiers_for(actor):
    """The 核销员 of every org the actor administers."""
    return (
        Verifier.objects.filter(scoping.path_q(actor, "org__path", admin=True))
        .select_related("org", "user")
        .order_by("org__path", "id")
    )


def add_verifier(actor, org_id: object, phone_raw: object, note: object = "", *, ip: str | None = None) -> Verifier:
    """An admin cadre of the org adds the account registered with this phone; 422 naming the field
    (phone unknown or invalid, already a 核销员 here, note too long)."""
    org = scoping.org_for_cadre(actor, org_id, admin=True)
    try:
        phone = phones.validate(phone_raw)
    except phones.PhoneError as e:
        raise Invalid(e.code, e.message, fields={"phone": e.message}) from None
    note = str(note or "").strip()
    if len(note) > MAX_NOTE:
        message = _("不能超过%(n)s字") % {"n": MAX_NOTE}
        raise Invalid("invalid_note", message, fields={"note": message})
    user = User.objects.filter(phone_hash=pii.phone_index(phone), is_active=True).first()
    if user is None:
        message = _("这个手机号还没有注册，请对方先在会员端注册")
        raise Invalid("user_not_found", message, fields={"phone": message})
    try:
        with transaction.atomic():
            verifier = Verifier.objects.create(org=org, user=user, note=note, added_by=actor)
    except IntegrityError:
        message = _("此人已是该组织的核销员")
        raise Invalid("already_verifier", message, fields={"phone": message}) from None
    audit.record(
        actor, "reward.verifier_add", org=org, target=verifier, summary=f"{user.phone_masked} {note}".strip(), ip=ip
    )
    return verifier


def remove_verifier(actor, verifier_id: object, *, ip: str | None = None) -> None:
    try:
        verifier = Verifier.objects.select_related("org", "user").get(pk=int(verifier_id))
    except (Verifier.DoesNotExist, TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该核销员")) from None
    if not scoping.covers(actor, verifier.org, admin=True):
        raise NotFound(_("未找到该核销员"))
    audit.record(
        actor, "reward.verifier_remove", org=verifier.org, target=verifier, summary=verifier.user.phone_masked, ip=ip
    )
    verifier.delete()
