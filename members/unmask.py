"""Unmasked views of members' ID numbers and phones, limited per cadre.

Every unmasked view is already an audit row (members.services.reveal_pii); this bounds how many a
cadre can take, so a stolen console session, or a script driving one, cannot walk the roster. The
count is a fixed-window row in the shared rate-counter table (votes.models.RateCount, the same
upsert the ballot limits use), bumped by one atomic statement, so parallel requests from several
server processes never both read "29" and both pass.

Limits: settings `CONSOLE_UNMASK_LIMIT` (default 30) per `CONSOLE_UNMASK_WINDOW` seconds (default
3600), windows aligned to the clock like the other rate counters.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _

from core import audit
from core.errors import Throttled
from votes.models import RateCount

from . import services
from .models import Member

DEFAULT_LIMIT = 30
DEFAULT_WINDOW = 3600

_BUMP_SQL = (
    "INSERT INTO {table} (key, window_start, hits) VALUES (%s, %s, 1)"
    " ON CONFLICT (key, window_start) DO UPDATE SET hits = {table}.hits + 1 RETURNING hits"
)


class UnmaskErrors:
    TOO_MANY = "too_many_unmasks"


def limits() -> tuple[int, int]:
    """(views allowed, window seconds)."""
    lim = int(getattr(settings, "CONSOLE_UNMASK_LIMIT", DEFAULT_LIMIT))
    win = max(1, int(getattr(settings, "CONSOLE_UNMASK_WINDOW", DEFAULT_WINDOW)))
    return lim, win


def _key(user_id: int) -> str:
    return f"unmask:u:{user_id}"


def take_slot(actor, *, org=None, ip: str | None = None, now: float | None = None) -> None:
    """Count one unmask for the cadre; past the limit raise Throttled (nothing is shown, nothing
    more is counted against the member). The first refusal in a window is itself audited, so a
    burst stops being invisible."""
    lim, win = limits()
    now = time.time() if now is None else now
    start = int(now // win) * win
    sql = _BUMP_SQL.format(table=connection.ops.quote_name(RateCount._meta.db_table))
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, [_key(actor.pk), start])
        (hits,) = cur.fetchone()
    if hits <= lim:
        return
    if hits == lim + 1:
        audit.record(
            actor, "pii.view_refused", org=org, summary=_("查看完整信息次数超过上限"), data={"limit": lim}, ip=ip
        )
    wait = max(1, int(start + win - now))
    minutes = max(1, (wait + 59) // 60)
    raise Throttled(
        UnmaskErrors.TOO_MANY,
        _("查看完整信息过于频繁（上限%(limit)s次），请%(minutes)s分钟后再试") % {"limit": lim, "minutes": minutes},
        retry_after=wait,
    )


def reveal(actor, member: Member, *, ip: str | None = None) -> dict[str, str]:
    """The unmasked ID number and phone (audited by reveal_pii), if the cadre has a view left.
    Scope is checked before a slot is spent: a member out of scope answers NotFound uncounted."""
    services.member_for_cadre(actor, member.pk)
    take_slot(actor, org=member.org, ip=ip)
    return services.reveal_pii(actor, member, ip=ip)
