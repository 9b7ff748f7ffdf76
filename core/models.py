from django.conf import settings
from django.db import models


class AuditLog(models.Model):
    """Append-only record of who did what to which object; PII never goes in `data`."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    # The org whose subtree may read this row (scoping uses the org's path).
    org_path = models.CharField(max_length=255, blank=True, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]


class IdempotencyRecord(models.Model):
    """The first answer to a write sent with an Idempotency-Key, replayed to every retry (API.md)."""

    # No index of its own: the unique (user, operation, key) below starts with it.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    operation = models.CharField(max_length=255)  # method and path: the key is scoped to it
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    done = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField(null=True)
    body = models.BinaryField(null=True)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "operation", "key"], name="idempotency_one_per_key"),
        ]
