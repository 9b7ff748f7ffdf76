"""In-app notifications and the outbox that carries them to other channels.

Every notice is an in-app row the member sees on their page. Each one also gets an outbox
row per external channel (WeChat template messages later, SMS for some kinds): a worker
delivers outbox rows through the channel's adapter and records the attempt, so a notice is
never lost when a channel is down, and never sent twice once it is marked sent.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)  # e.g. activity.promoted, activity.cancelled, activity.reminder
    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)  # where the member end shows the subject
    ref = models.CharField(max_length=64, blank=True)  # "activity:12": what it is about, for dedupe
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"], name="notification_user_recent")]

    def __str__(self) -> str:
        return self.title


class Channel(models.TextChoices):
    WECHAT = "wechat", _("微信模板消息")
    SMS = "sms", _("短信")


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败")
    SKIPPED = "skipped", _("无需发送")  # e.g. the person has no WeChat binding


class OutboxMessage(models.Model):
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="outbox")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="outbox_once_per_channel"),
        ]
        indexes = [models.Index(fields=["status", "id"], name="outbox_pending")]
