"""The points mall (积分兑换) and lotteries (积分抽奖). Points move only through points.services.ledger."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from orgs.models import Org
from points.models import Movement


class Eligibility(models.TextChoices):
    MEMBERS = "members", _("本工会及下级工会的认证会员")
    EVERYONE = "everyone", _("所有用户（含粉丝）")


class RewardKind(models.TextChoices):
    GOODS = "goods", _("实物")
    VOUCHER = "voucher", _("优惠券")
    TICKET = "ticket", _("票券")


class Reward(models.Model):
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="rewards")
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=RewardKind.choices, default=RewardKind.GOODS)
    cost = models.PositiveIntegerField()
    stock = models.IntegerField()  # what is left; the CHECK below is the no-oversell guarantee
    stock_total = models.PositiveIntegerField()
    per_member_limit = models.PositiveSmallIntegerField(default=1)
    eligibility = models.CharField(max_length=10, choices=Eligibility.choices, default=Eligibility.MEMBERS)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="reward_stock_not_negative"),
            models.CheckConstraint(condition=Q(stock__lte=F("stock_total")), name="reward_stock_within_total"),
            models.CheckConstraint(condition=Q(cost__gt=0) & Q(per_member_limit__gt=0), name="reward_positive"),
        ]

    def __str__(self) -> str:
        return self.title


class PickupStatus(models.TextChoices):
    ISSUED = "issued", _("待领取")
    PICKED_UP = "picked_up", _("已领取")
    CANCELLED = "cancelled", _("已取消")


class Redemption(models.Model):
    # Indexed by (reward, user) below, which also serves every lookup by reward alone.
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="redemptions")
    code = models.CharField(max_length=12, unique=True)  # the pickup code, also in the QR
    cost = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=PickupStatus.choices, default=PickupStatus.ISSUED)
    movement = models.OneToOneField(Movement, on_delete=models.PROTECT, related_name="+")
    refund = models.OneToOneField(Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    # Indexed only where set (below): a sale writes NULL here, and a full index would take a write for it.
    picked_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["reward", "user"]),
            models.Index(fields=["picked_up_by"], condition=Q(picked_up_by__isnull=False), name="redemption_picked_by"),
        ]


class LotteryStatus(models.TextChoices):
    OPEN = "open", _("进行中")
    DRAWN = "drawn", _("已开奖")
    CANCELLED = "cancelled", _("已取消")


class Lottery(models.Model):
    """积分抽奖 with a verifiable draw: commitment = SHA-256 of a secret seed, published before
    entries open; the seed is published after the draw so anyone can re-run it."""

    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="lotteries")
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    entry_cost = models.PositiveIntegerField()
    max_entries_per_member = models.PositiveSmallIntegerField(default=1)
    eligibility = models.CharField(max_length=10, choices=Eligibility.choices, default=Eligibility.MEMBERS)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    draw_at = models.DateTimeField()
    refund_losers = models.BooleanField(default=False)
    commitment = models.CharField(max_length=64)  # hex SHA-256 of the seed
    seed_enc = models.BinaryField()  # the secret seed, encrypted until the draw
    seed = models.CharField(max_length=64, blank=True)  # published after the draw
    status = models.CharField(max_length=10, choices=LotteryStatus.choices, default=LotteryStatus.OPEN)
    drawn_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=F("opens_at")) & Q(draw_at__gte=F("closes_at")), name="lottery_times_in_order"
            ),
            models.CheckConstraint(condition=Q(entry_cost__gt=0), name="lottery_cost_positive"),
        ]

    def __str__(self) -> str:
        return self.title


class Prize(models.Model):
    lottery = models.ForeignKey(Lottery, on_delete=models.CASCADE, related_name="prizes")
    name = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField(default=0)  # draw order: first prize first

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="prize_quantity_positive")]


class LotteryEntry(models.Model):
    lottery = models.ForeignKey(Lottery, on_delete=models.PROTECT, related_name="entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="lottery_entries")
    n = models.PositiveSmallIntegerField()  # the member's n-th entry: UNIQUE caps entries per member
    movement = models.OneToOneField(Movement, on_delete=models.PROTECT, related_name="+")
    refund = models.OneToOneField(Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["lottery", "user", "n"], name="lottery_entry_nth")]


class Win(models.Model):
    entry = models.OneToOneField(LotteryEntry, on_delete=models.PROTECT, related_name="win")
    prize = models.ForeignKey(Prize, on_delete=models.PROTECT, related_name="wins")
    code = models.CharField(max_length=12, unique=True)
    status = models.CharField(max_length=10, choices=PickupStatus.choices, default=PickupStatus.ISSUED)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    picked_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class Verifier(models.Model):
    """核销员: a merchant's account (not a cadre) that may confirm pickups of an org's rewards and prizes,
    in the org's subtree, and nothing else. Added and removed by the org's admin cadres."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verifier_roles")
    note = models.CharField(max_length=60, blank=True)  # e.g. the merchant's name
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="verifier_once_per_org")]
