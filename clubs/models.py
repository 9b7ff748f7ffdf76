"""Interest clubs (兴趣联盟): proposed by members, approved by a cadre of their union."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orgs.models import Org


class ClubStatus(models.TextChoices):
    PROPOSED = "proposed", _("待审核")
    ACTIVE = "active", _("已成立")
    REJECTED = "rejected", _("未通过")
    CLOSED = "closed", _("已解散")


class JoinPolicy(models.TextChoices):
    OPEN = "open", _("自由加入")
    APPROVAL = "approval", _("需审核")


class Club(models.Model):
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="clubs")  # the union it belongs to
    name = models.CharField(max_length=50)
    category = models.CharField(max_length=20, blank=True)  # 户外, 摄影, 羽毛球, 书法…
    description = models.TextField(blank=True)
    join_policy = models.CharField(max_length=10, choices=JoinPolicy.choices, default=JoinPolicy.OPEN)
    status = models.CharField(max_length=10, choices=ClubStatus.choices, default=ClubStatus.PROPOSED)
    decision_reason = models.CharField(max_length=300, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    members_count = models.PositiveIntegerField(default=0)  # active members, kept with each join/leave
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-members_count", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "name"], condition=~Q(status="rejected"), name="club_name_unique_in_org"
            ),
            # Joins and leaves move the count with conditional UPDATEs; this backs them up by name
            # on every backend (PositiveIntegerField's implicit check is unnamed and vendor-specific).
            models.CheckConstraint(condition=Q(members_count__gte=0), name="club_members_count_not_negative"),
        ]
        indexes = [models.Index(fields=["status", "org"], name="club_status_org")]

    def __str__(self) -> str:
        return self.name


class ClubRole(models.TextChoices):
    MEMBER = "member", _("成员")
    ADMIN = "admin", _("管理员")


class MembershipStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    ACTIVE = "active", _("已加入")


class ClubMembership(models.Model):
    club = models.ForeignKey(Club, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="club_memberships")
    role = models.CharField(max_length=10, choices=ClubRole.choices, default=ClubRole.MEMBER)
    status = models.CharField(max_length=10, choices=MembershipStatus.choices, default=MembershipStatus.ACTIVE)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["club", "user"], name="club_membership_once"),
            # A club admin is always an active member (a pending request can't carry admin rights).
            models.CheckConstraint(condition=Q(role="member") | Q(status="active"), name="club_admin_is_active"),
        ]
        indexes = [models.Index(fields=["club", "status", "role"], name="club_membership_by_status")]


class ClubPost(models.Model):
    """An announcement by a club admin."""

    club = models.ForeignKey(Club, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=100)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
