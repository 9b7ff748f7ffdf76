"""Send a notice to people: in-app rows plus one outbox row per external channel, in bulk."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..models import Channel, Notification, OutboxMessage

CHUNK = 1000


def notify(
    user_ids: Iterable[int],
    *,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    ref: str = "",
    channels: tuple[str, ...] = (Channel.WECHAT,),
) -> int:
    """Notify each person once; returns how many were notified. Runs inside the caller's
    transaction when there is one, so a notice exists exactly when the change it reports does."""
    ids = list(dict.fromkeys(int(i) for i in user_ids))
    if not ids:
        return 0
    with transaction.atomic():
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            made = Notification.objects.bulk_create(
                [Notification(user_id=i, kind=kind, title=title[:100], body=body, url=url, ref=ref) for i in part]
            )
            if channels:
                if any(n.pk is None for n in made):  # backends without RETURNING on bulk insert
                    made = list(
                        Notification.objects.filter(user_id__in=part, kind=kind, ref=ref).order_by("-id")[: len(part)]
                    )
                OutboxMessage.objects.bulk_create(
                    [OutboxMessage(notification=n, channel=c) for n in made for c in channels]
                )
    return len(ids)


def unread_count(user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def recent(user, limit: int = 50):
    return Notification.objects.filter(user=user)[:limit]


def mark_read(user, notification_ids: Iterable[int] | None = None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        qs = qs.filter(pk__in=list(notification_ids))
    return qs.update(read_at=timezone.now())
