"""Pickup codes: how they look, and the one rule both mall redemptions and prizes follow."""

import secrets

from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import DomainError

from ..models import PickupStatus

# No 0/O, 1/I/L: a cadre types these from a phone screen.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def pickup_code(length: int = 10) -> str:
    # One draw from the whole code space, spelled in the alphabet (a draw per letter cost 10×).
    n = secrets.randbelow(len(ALPHABET) ** length)
    letters = []
    for _position in range(length):
        n, i = divmod(n, len(ALPHABET))
        letters.append(ALPHABET[i])
    return "".join(letters)


def normalize(code: object) -> str:
    return str(code or "").strip().upper().replace(" ", "").replace("-", "")


def mark_picked_up(model, obj, actor, *, cancelled_message: str) -> None:
    """Issued → picked up, exactly once (a conditional UPDATE); else say when it already was."""
    if model.objects.filter(pk=obj.pk, status=PickupStatus.ISSUED).update(
        status=PickupStatus.PICKED_UP, picked_up_at=timezone.now(), picked_up_by=actor
    ):
        obj.refresh_from_db()
        return
    obj.refresh_from_db()
    if obj.status == PickupStatus.PICKED_UP:
        at = timezone.localtime(obj.picked_up_at).strftime("%Y-%m-%d %H:%M")
        raise DomainError("already_picked_up", _("该兑换码已于%(at)s核销") % {"at": at})
    raise DomainError("cancelled", cancelled_message)
