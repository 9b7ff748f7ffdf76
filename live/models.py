"""Live sessions (在线直播): scheduled streams, reminders, a moderated comment wall, attendance from heartbeats.

Attendance is counted in whole minutes from the player's heartbeats: one `Presence` row per
(session, person, minute), UNIQUE, written with INSERT … ON CONFLICT DO NOTHING, so two tabs (or
a retried request) never count a minute twice; attended minutes are the person's rows, and
concurrent viewers at a minute are the rows of that minute. Points for attending are paid once:
`AttendanceReward` is UNIQUE per (session, person) and is written in the same transaction as
the ledger movement that pays it.

A minute is an integer: minutes since the Unix epoch (UTC), the same on every backend, cheap
to group by.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orgs.models import Org
from points.models import Movement


class Audience(models.TextChoices):
    MEMBERS = "members", _("本工会及下级工会的认证会员")
    EVERYONE = "everyone", _("所有登录用户（含粉丝）")


class SessionStatus(models.TextChoices):
    """Computed from the times (and a cancellation); never stored."""

    SCHEDULED = "scheduled", _("即将开始")
    LIVE = "live", _("直播中")
    ENDED = "ended", _("已结束")
    CANCELLED = "cancelled", _("已取消")


class LiveSession(models.Model):
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="live_sessions")
    title = models.CharField(max_length=100)
    speaker = models.CharField(max_length=50)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    stream_url = models.URLField(max_length=500)  # HLS playlist (.m3u8) from the streaming provider
    replay_url = models.URLField(max_length=500, blank=True)  # set after the session (.m3u8 or .mp4)
    audience = models.CharField(max_length=10, choices=Audience.choices, default=Audience.MEMBERS)
    min_minutes = models.PositiveSmallIntegerField(default=10)  # watched minutes needed for the points
    points_reward = models.PositiveIntegerField(default=0)  # 0: no points for this session
    auto_approve_comments = models.BooleanField(default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="live_ends_after_start"),
            models.CheckConstraint(condition=Q(min_minutes__gte=1), name="live_min_minutes_positive"),
        ]
        indexes = [
            models.Index(fields=["starts_at"], name="live_session_start"),
            models.Index(fields=["org", "starts_at"], name="live_session_org_start"),
        ]

    def __str__(self) -> str:
        return self.title

    def status_at(self, now=None) -> str:
        now = now or timezone.now()
        if self.cancelled_at is not None:
            return SessionStatus.CANCELLED
        if now < self.starts_at:
            return SessionStatus.SCHEDULED
        if now < self.ends_at:
            return SessionStatus.LIVE
        return SessionStatus.ENDED

    @property
    def status(self) -> str:
        return self.status_at()

    def get_status_display(self) -> str:
        return SessionStatus(self.status).label


class Reminder(models.Model):
    """The person asked to be told before the session starts; `sent_at` makes it once."""

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="reminders")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="live_reminders")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="live_reminder_once")]
        indexes = [models.Index(fields=["session", "sent_at"], name="live_reminder_unsent")]


class Presence(models.Model):
    """The person was watching during this minute (one row per minute, however many heartbeats)."""

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="presence")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    minute = models.IntegerField()  # minutes since the Unix epoch (UTC)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "user", "minute"], name="live_presence_once")]
        indexes = [models.Index(fields=["session", "minute"], name="live_presence_by_minute")]


class AttendanceReward(models.Model):
    """Points paid for attending; UNIQUE per person and session, written with its movement."""

    session = models.ForeignKey(LiveSession, on_delete=models.PROTECT, related_name="rewards")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    minutes = models.PositiveIntegerField()  # attended minutes when it was paid
    movement = models.OneToOneField(Movement, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="live_reward_once")]


class CommentStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    APPROVED = "approved", _("已通过")
    REJECTED = "rejected", _("未通过")


class Comment(models.Model):
    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="comments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=CommentStatus.choices, default=CommentStatus.PENDING)
    minute = models.IntegerField()  # epoch minute of posting, for comments-per-minute
    created_at = models.DateTimeField(auto_now_add=True)
    moderated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moderated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["session", "status", "-id"], name="live_comment_wall"),
            models.Index(fields=["session", "user", "-id"], name="live_comment_mine"),
            models.Index(fields=["session", "minute"], name="live_comment_by_minute"),
        ]
