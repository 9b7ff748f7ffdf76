"""The points ledger: append-only double entry.

Every movement is one `Movement` with balanced `Entry` rows (they sum to zero). Each
`Account` keeps a stored balance, updated in the same transaction as its entries and held
non-negative by a CHECK constraint; only the issuance account (where all points come from)
may go below zero. `manage.py reconcile_points` checks stored balances against entries.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orgs.models import Org


class AccountKind(models.TextChoices):
    ISSUANCE = "issuance", _("积分发行")  # the single source: minting moves points out of it
    BUDGET = "budget", _("组织积分预算")
    MEMBER = "member", _("会员积分")
    MALL = "mall", _("积分商城")  # points spent in an org's mall
    LOTTERY = "lottery", _("抽奖奖池")
    EXPIRY = "expiry", _("过期积分")


class Account(models.Model):
    kind = models.CharField(max_length=10, choices=AccountKind.choices)
    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="point_accounts")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="point_account"
    )
    # Lottery pools are keyed by the lottery id (rewards.Lottery); kept as a plain number so the
    # ledger does not depend on the mall.
    ref = models.BigIntegerField(null=True, blank=True)
    balance = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(kind="issuance"), name="account_balance_not_negative"
            ),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(kind__in=["issuance", "expiry"]), name="one_global_account"
            ),
            models.UniqueConstraint(
                fields=["kind", "org"], condition=Q(kind__in=["budget", "mall"]), name="one_org_account"
            ),
            models.UniqueConstraint(fields=["kind", "ref"], condition=Q(kind="lottery"), name="one_lottery_account"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.org_id or self.user_id or self.ref or ''}"


class MovementKind(models.TextChoices):
    MINT = "mint", _("发行")
    ALLOCATE = "allocate", _("预算下拨")
    GRANT = "grant", _("工会发放")
    EARN = "earn", _("积分奖励")
    REDEEM = "redeem", _("兑换")
    REFUND = "refund", _("退还")
    LOTTERY_ENTRY = "lottery_entry", _("抽奖")
    LOTTERY_REFUND = "lottery_refund", _("抽奖退还")
    EXPIRE = "expire", _("过期")


class Movement(models.Model):
    """One business event that moves points; its entries sum to zero."""

    kind = models.CharField(max_length=16, choices=MovementKind.choices)
    reason = models.CharField(max_length=200)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # What caused it (e.g. "redemption:12", "rule:3"), for the member's history and audits.
    source = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)


class Entry(models.Model):
    movement = models.ForeignKey(Movement, on_delete=models.PROTECT, related_name="entries")
    # Indexed by (account, -id) below, which also serves every lookup by account alone.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    amount = models.BigIntegerField()  # + credit to the account, − debit from it
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-id"])]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_not_zero")]


class EarnAction(models.TextChoices):
    CHECKIN = "checkin", _("每日签到")
    READ_ARTICLE = "read_article", _("阅读文章")
    VOTE = "vote", _("参与投票")
    SURVEY = "survey", _("参与问卷")
    ACTIVITY_CHECKIN = "activity_checkin", _("活动签到")


class EarningRule(models.Model):
    """How many points an action earns members of the org's subtree; the nearest org's rule wins.

    Points are paid from the rule's org budget, so every earned point traces back to a budget.
    """

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="earning_rules")
    action = models.CharField(max_length=20, choices=EarnAction.choices)
    amount = models.PositiveIntegerField()
    daily_cap = models.PositiveSmallIntegerField(default=1)  # times a day
    total_cap = models.PositiveIntegerField(null=True, blank=True)  # times in all (None: no cap)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "action"], name="one_rule_per_action_per_org"),
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(daily_cap__gt=0), name="rule_positive"),
        ]


class Earning(models.Model):
    """The n-th time today that a person earned by a rule; UNIQUE makes the daily cap a database fact."""

    rule = models.ForeignKey(EarningRule, on_delete=models.CASCADE, related_name="earnings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    n = models.PositiveSmallIntegerField()
    ref = models.CharField(max_length=64, blank=True)  # e.g. the article read; one earning per ref
    movement = models.OneToOneField(Movement, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "user", "day", "n"], name="earning_nth_of_day"),
            models.UniqueConstraint(fields=["rule", "user", "ref"], condition=~Q(ref=""), name="earning_once_per_ref"),
        ]


class ExpiryPolicy(models.Model):
    """Points of members in the org's subtree expire every year on month/day (e.g. 12-31)."""

    org = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="points_expiry")
    month = models.PositiveSmallIntegerField()
    day = models.PositiveSmallIntegerField()
    notice_days = models.PositiveSmallIntegerField(default=30)
    last_run_on = models.DateField(null=True, blank=True)
