"""Activities (活动): published by cadres or proposed by certified members, with sign-up quotas,
a first-come-first-served waitlist and on-site QR check-in.

Seats are a database guarantee: `confirmed_count` is moved by conditional UPDATEs in the
sign-up's transaction and the CHECK `confirmed_count <= capacity` backs them, so a rush can
never confirm more people than there are seats. One live sign-up per person and activity is a
partial unique constraint (a cancelled one does not count, so a person may sign up again).
The waitlist is ordered by sign-up id (first come, first served); a cancellation promotes the
first waitlisted person in the same transaction.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from clubs.models import Club
from orgs.models import Org
from points.models import Movement


def new_checkin_secret() -> str:
    """A fresh key for an activity's rotating check-in codes (an empty key would make them guessable)."""
    return secrets.token_hex(32)


class Category(models.TextChoices):
    SPORTS = "sports", _("体育健身")
    CULTURE = "culture", _("文化艺术")
    LECTURE = "lecture", _("讲座培训")
    VOLUNTEER = "volunteer", _("志愿服务")
    FAMILY = "family", _("亲子家庭")
    OUTING = "outing", _("户外踏青")
    OTHER = "other", _("其他")


class Eligibility(models.TextChoices):
    MEMBERS = "members", _("本工会及下级工会的认证会员")
    EVERYONE = "everyone", _("所有登录用户（含粉丝）")
    CLUB = "club", _("兴趣联盟成员")


class ActivityStatus(models.TextChoices):
    PROPOSED = "proposed", _("待审核")  # a member's proposal, not visible to others yet
    PUBLISHED = "published", _("已发布")
    REJECTED = "rejected", _("未通过")
    CANCELLED = "cancelled", _("已取消")


class Activity(models.Model):
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="activities")
    club = models.ForeignKey(Club, null=True, blank=True, on_delete=models.PROTECT, related_name="activities")
    title = models.CharField(max_length=100)
    category = models.CharField(max_length=12, choices=Category.choices, default=Category.OTHER)
    cover = models.ImageField(upload_to="activities/covers/", blank=True)  # re-encoded JPEG, never as uploaded
    description = models.TextField(blank=True)
    place = models.CharField(max_length=200, blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    signup_opens_at = models.DateTimeField()
    signup_closes_at = models.DateTimeField()
    cancel_until = models.DateTimeField()  # members may cancel until then (the cut-off)
    capacity = models.PositiveIntegerField()
    waitlist = models.BooleanField(default=True)
    eligibility = models.CharField(max_length=10, choices=Eligibility.choices, default=Eligibility.MEMBERS)
    # Extra sign-up fields: [{"key": "size", "label": "T恤尺码", "required": true, "choices": ["S", "M", "L"]}, …]
    extra_fields = models.JSONField(default=list, blank=True)
    points_cost = models.PositiveIntegerField(default=0)  # paid at sign-up, refunded on cancellation
    points_reward = models.PositiveIntegerField(default=0)  # earned at check-in
    status = models.CharField(max_length=10, choices=ActivityStatus.choices, default=ActivityStatus.PUBLISHED)
    decision_reason = models.CharField(max_length=300, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    organizer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    member_initiated = models.BooleanField(default=False)
    confirmed_count = models.PositiveIntegerField(default=0)
    waitlist_count = models.PositiveIntegerField(default=0)
    checked_in_count = models.PositiveIntegerField(default=0)
    checkin_secret = models.CharField(max_length=64, default=new_checkin_secret)  # signs the rotating check-in QR codes
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="activity_ends_after_start"),
            models.CheckConstraint(
                condition=Q(signup_closes_at__gt=F("signup_opens_at")) & Q(signup_opens_at__lt=F("starts_at")),
                name="activity_signup_window_in_order",
            ),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="activity_capacity_positive"),
            models.CheckConstraint(condition=Q(confirmed_count__lte=F("capacity")), name="activity_no_overbooking"),
            models.CheckConstraint(
                condition=Q(eligibility="club", club__isnull=False) | ~Q(eligibility="club"),
                name="activity_club_eligibility_has_club",
            ),
            # An activity saved without a key (a bulk insert, a fixture) would take check-in codes
            # anyone can compute; the default fills it, this refuses an explicit empty one.
            models.CheckConstraint(condition=~Q(checkin_secret=""), name="activity_has_checkin_secret"),
        ]
        indexes = [
            models.Index(fields=["status", "starts_at"], name="activity_status_start"),
            models.Index(fields=["org", "status", "starts_at"], name="activity_org_status_start"),
            # The member's list: open (not yet ended) activities of the orgs above them, and those
            # open to everyone, each a range scan on (…, status, ends_at) however many have ended.
            models.Index(fields=["org", "status", "ends_at"], name="activity_org_open"),
            models.Index(fields=["eligibility", "status", "ends_at"], name="activity_elig_open"),
        ]

    def __str__(self) -> str:
        return self.title


class SignupStatus(models.TextChoices):
    CONFIRMED = "confirmed", _("已报名")
    WAITLISTED = "waitlisted", _("候补中")
    CANCELLED = "cancelled", _("已取消")


class Signup(models.Model):
    # No single-column indexes on the foreign keys: the composite indexes below lead with activity
    # and user, and movements are never deleted (nothing looks a sign-up up by its movement). Each
    # index is one more page written by every sign-up of a rush; the redundant five doubled it.
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="signups", db_index=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="activity_signups", db_index=False
    )
    status = models.CharField(max_length=10, choices=SignupStatus.choices)
    answers = models.JSONField(default=dict, blank=True)  # the activity's extra fields
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by_activity = models.BooleanField(default=False)  # the whole activity was cancelled
    payment = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    refund = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    checked_in_at = models.DateTimeField(null=True, blank=True)
    checkin_method = models.CharField(max_length=10, blank=True)  # "qr" (member scanned) or "card" (organizer scanned)
    reward = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "user"], condition=~Q(status="cancelled"), name="signup_one_live_per_person"
            ),
            models.CheckConstraint(
                condition=Q(checked_in_at__isnull=True) | Q(status="confirmed"), name="signup_checkin_confirmed_only"
            ),
        ]
        indexes = [
            models.Index(fields=["activity", "status", "id"], name="signup_activity_queue"),
            models.Index(fields=["user", "-id"], name="signup_user_recent"),
        ]
