"""Builders shared by the votes tests: polls open now, in the past or the future, and voters."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from conftest import make_id_number, make_member, make_user
from votes.services import polls

_births = iter(range(10**6))


def member(org, name: str = "投票人", **kw):
    """A certified member with an ID number of their own (conftest's pool repeats per birth date)."""
    n = next(_births)
    birth = (dt.date(1970, 1, 1) + dt.timedelta(days=n % 9000)).strftime("%Y%m%d")
    return make_member(org, f"{name}{n}", id_number=make_id_number(birth=birth), **kw)


def follower(name: str = "粉丝"):
    return make_user(name)


def poll(actor, org, *, n_options: int = 3, opens=None, closes=None, **kw):
    """A poll open from an hour ago for a day, unless told otherwise."""
    now = timezone.now()
    fields = {
        "title": kw.pop("title", "最美职工评选"),
        "options": kw.pop("options", None) or [{"title": f"候选人{i + 1}"} for i in range(n_options)],
        "max_choices": kw.pop("max_choices", 1),
        "opens_at": opens or now - dt.timedelta(hours=1),
        "closes_at": closes or now + dt.timedelta(days=1),
    }
    fields.update(kw)
    return polls.create_poll(actor, org, **fields)


def option_ids(p) -> list[int]:
    return list(p.options.order_by("position", "id").values_list("id", flat=True))


def backdate(p, *, opens=None, closes=None):
    """Move a poll's window (create_poll refuses a window in the past, tests need one)."""
    from votes.models import Poll

    fields = {}
    if opens is not None:
        fields["opens_at"] = opens
    if closes is not None:
        fields["closes_at"] = closes
    Poll.objects.filter(pk=p.pk).update(**fields)
    p.refresh_from_db()
    return p
