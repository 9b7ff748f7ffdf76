from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core import pii
from orgs.models import Org


class Gender(models.TextChoices):
    MALE = "M", _("男")
    FEMALE = "F", _("女")


class Member(models.Model):
    """A real-name union member. One per person in the whole deployment (unique ID-number index)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="member")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="members")
    name = models.CharField(max_length=50)
    id_number_enc = models.BinaryField()
    id_number_hash = models.CharField(max_length=64, unique=True)
    phone_enc = models.BinaryField()  # contact phone from the roster; the login phone is the user's
    phone_hash = models.CharField(max_length=64, db_index=True)
    gender = models.CharField(max_length=1, choices=Gender.choices, blank=True)
    joined_on = models.DateField(null=True, blank=True)
    workplace = models.CharField(max_length=100, blank=True)
    # Set when the person proved, signed in, that they are this roster row (实名认证).
    certified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["org", "name"])]

    def __str__(self) -> str:
        return self.name

    @property
    def certified(self) -> bool:
        return self.certified_at is not None

    @property
    def phone_masked(self) -> str:
        return pii.mask_phone(pii.decrypt(self.phone_enc))

    @property
    def id_number_masked(self) -> str:
        return pii.mask_id_number(pii.decrypt(self.id_number_enc))


class MembershipPeriod(models.Model):
    """Which union a member belonged to and when; a transfer closes one period and opens the next."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="periods")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    how = models.CharField(max_length=20)  # roster | application | transfer

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["member"], condition=Q(ended_at__isnull=True), name="one_open_period")
        ]


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    APPROVED = "approved", _("已通过")
    REJECTED = "rejected", _("已驳回")
    CANCELLED = "cancelled", _("已撤回")


class MemberRequest(models.Model):
    """What a member asks and a cadre decides: pending until approved, rejected (with a reason) or cancelled."""

    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    decision_reason = models.CharField(max_length=200, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class JoinApplication(MemberRequest):
    """入会申请: a follower whose name and ID match no roster asks a union to take them in."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="join_applications")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="join_applications")
    name = models.CharField(max_length=50)
    id_number_enc = models.BinaryField()
    id_number_hash = models.CharField(max_length=64, db_index=True)
    workplace = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(status="pending"), name="one_pending_join_application")
        ]

    @property
    def id_number_masked(self) -> str:
        return pii.mask_id_number(pii.decrypt(self.id_number_enc))


class CertificationReview(MemberRequest):
    """认证审核: a person who matched a roster row (its code went to the roster phone) but cannot read
    that phone asks a cadre of the row's union to vouch for them; approval hands the row over."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certification_reviews"
    )
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="certification_reviews")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="certification_reviews")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(status="pending"), name="one_pending_certification")
        ]


class CertificationTry(models.Model):
    """One try of a name and ID number at 实名认证, counted per account, per ID number and per
    address. The ID number and the address are kept as keyed hashes only."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    id_key = models.CharField(max_length=64)
    ip_key = models.CharField(max_length=64)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "at"]),
            models.Index(fields=["id_key", "at"]),
            models.Index(fields=["ip_key", "at"]),
        ]


class Transfer(MemberRequest):
    """会员转接: a member moves to another union; the receiving union's cadres decide."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="transfers")
    from_org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="transfers_out")
    to_org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="transfers_in")
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["member"], condition=Q(status="pending"), name="one_pending_transfer")
        ]


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("导入中")
    DONE = "done", _("已完成")
    FAILED = "failed", _("失败")


class ImportJob(models.Model):
    """A roster import: its file, its progress, and its outcome (counts and every bad row)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="import_jobs")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=200)
    stored_path = models.CharField(max_length=255, blank=True)
    dry_run = models.BooleanField(default=False)
    language = models.CharField(max_length=10, blank=True)  # of the cadre who started it: row errors speak it
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    progress = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    failure = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def percent(self) -> int:
        return int(100 * self.progress / self.total) if self.total else (100 if self.status == ImportStatus.DONE else 0)
