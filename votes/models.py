"""Polls (投票评选) and contests with judges (评选大赛).

One ballot per rule is the unique constraint on (poll, voter, day, n): a poll with one ballot
in all uses the poll's opening day and n = 1 for every ballot; a poll with N ballots a day uses
the voter's day and n = 1…N. Parallel ballots of one voter race for the same row and all but
the allowed ones fail on the constraint, never on a check-then-insert.

Counts are kept in sharded counter rows (one row per option and shard, a ballot adds to the
rows of its shard), so a results query reads options × shards rows however many ballots there
are, and parallel ballots for one option do not all wait on one row. Voided ballots stay in the
table (the audit trail) and their votes are taken back out of the counters in the same
transaction. At close the poll is sealed: the tally is published with the head of a SHA-256
chain over the ballots in id order, so a ballot removed or altered after close is detected by
a recount.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.fields import RowidAutoField
from orgs.models import Org

COUNTER_SHARDS = 8


class PollKind(models.TextChoices):
    POLL = "poll", _("投票评选")
    CONTEST = "contest", _("评选大赛")


class Eligibility(models.TextChoices):
    MEMBERS = "members", _("本工会及下级工会的认证会员")
    EVERYONE = "everyone", _("所有登录用户（含粉丝）")


class ResultsVisibility(models.TextChoices):
    LIVE = "live", _("实时公布")
    AFTER_CLOSE = "after_close", _("结束后公布")


class Poll(models.Model):
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="polls")
    kind = models.CharField(max_length=10, choices=PollKind.choices, default=PollKind.POLL)
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    max_choices = models.PositiveSmallIntegerField(default=1)
    ballots_per_day = models.PositiveSmallIntegerField(null=True, blank=True)  # None: one ballot in all
    eligibility = models.CharField(max_length=10, choices=Eligibility.choices, default=Eligibility.MEMBERS)
    results = models.CharField(max_length=12, choices=ResultsVisibility.choices, default=ResultsVisibility.LIVE)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    # Anti-brushing: refuse accounts created after the poll opened (bought or bot accounts).
    block_new_accounts = models.BooleanField(default=False)
    # Contest: final score = vote_weight% × normalized votes + (100 − vote_weight)% × normalized judges' score.
    vote_weight = models.PositiveSmallIntegerField(default=100)
    prize_tiers = models.JSONField(default=list, blank=True)  # [{"name": "一等奖", "count": 1}, …]
    # Sealed at close: the published tally {"total_ballots", "options": [{"id", "votes"}]}, the chain
    # head over every ballot (voided ones included, with their void mark) and checkpoints every 1,000.
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_early = models.BooleanField(default=False)
    published_tally = models.JSONField(null=True, blank=True)
    chain_head = models.CharField(max_length=64, blank=True)
    chain_checkpoints = models.JSONField(default=list, blank=True)
    chain_length = models.PositiveIntegerField(default=0)  # ballots in the chain, voided ones included
    sealed_at = models.DateTimeField(null=True, blank=True)
    # The last recount of a sealed poll (tally.Recount's fields) and when it ran: the public recount
    # page serves it instead of reading every ballot per request. The seal stores its own count as
    # the first; `close_polls` and `recount_poll` count again (tally.refresh_recount).
    last_recount = models.JSONField(null=True, blank=True)
    recounted_at = models.DateTimeField(null=True, blank=True)
    # Taken by the one process that seals (a conditional UPDATE), so a rush of result readers right
    # after close does not seal the same 1.6M ballots many times over; expires if that process dies.
    seal_claimed_at = models.DateTimeField(null=True, blank=True)
    # The monitor's cluster counts (ClusterCount) hold every ballot created before this time.
    rollup_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-opens_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(closes_at__gt=F("opens_at")), name="poll_times_in_order"),
            models.CheckConstraint(condition=Q(max_choices__gte=1), name="poll_max_choices_positive"),
            models.CheckConstraint(
                condition=Q(ballots_per_day__isnull=True) | Q(ballots_per_day__gte=1), name="poll_per_day_positive"
            ),
            models.CheckConstraint(condition=Q(vote_weight__lte=100), name="poll_vote_weight_percent"),
        ]

    def __str__(self) -> str:
        return self.title


class Option(models.Model):
    """A candidate (候选人/作品) of a poll."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="options")
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    photo = models.ImageField(upload_to="votes/options/", blank=True)  # re-encoded JPEG, never as uploaded
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title


class OptionCount(models.Model):
    """`votes`: ballots that chose the option. `ballots`: ballots counted once, on the row of their
    lowest chosen option, so the sum over a poll's rows is its number of ballots even when a ballot
    chooses several options (results' total_ballots, without a counter row every ballot shares)."""

    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="counts")
    shard = models.PositiveSmallIntegerField()
    votes = models.IntegerField(default=0)
    ballots = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["option", "shard"], name="option_count_shard_unique"),
            models.CheckConstraint(condition=Q(votes__gte=0), name="option_count_not_negative"),
            models.CheckConstraint(condition=Q(ballots__gte=0), name="option_count_ballots_not_negative"),
        ]


class VoidBatch(models.Model):
    """Ballots voided together by a cadre from the monitor, with the reason on record."""

    poll = models.ForeignKey(Poll, on_delete=models.PROTECT, related_name="void_batches")
    reason = models.CharField(max_length=500)
    criteria = models.JSONField(default=dict, blank=True)  # what selected them (IP prefix, new accounts, window…)
    ballots = models.PositiveIntegerField(default=0)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)


class Ballot(models.Model):
    id = RowidAutoField(primary_key=True)  # no AUTOINCREMENT on SQLite: one page fewer a ballot
    # No single-column indexes on poll, voter and void: the composite indexes below start with poll,
    # and nothing looks ballots up by voter or void batch alone; every index is one more write on
    # the voting hot path.
    poll = models.ForeignKey(Poll, on_delete=models.PROTECT, related_name="ballots", db_index=False)
    # Found by (poll, voter, …) through the one-per-rule constraint's index; no index of its own.
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()  # the voter's day (Asia/Shanghai); the poll's opening day when one in all
    n = models.PositiveSmallIntegerField(default=1)  # 1…ballots_per_day
    choices = models.CharField(max_length=400)  # option ids, ascending, comma-separated
    receipt = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField()
    # Anti-brushing signals, for the monitor: the address, its network (/24 or /48), a device hash.
    ip = models.GenericIPAddressField(null=True, blank=True)
    ip_prefix = models.CharField(max_length=64, blank=True)
    device = models.CharField(max_length=64, blank=True)
    new_account = models.BooleanField(default=False)  # the account was created after the poll opened
    void = models.ForeignKey(
        VoidBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["poll", "voter", "day", "n"], name="ballot_one_per_rule"),
            models.CheckConstraint(condition=Q(n__gte=1), name="ballot_n_positive"),
        ]
        indexes = [
            # The chain, recounts and the public receipts list read a poll's ballots in id order.
            models.Index(fields=["poll", "id"], name="ballot_poll_id"),
            models.Index(fields=["poll", "created_at"], name="ballot_poll_time"),
            # The monitor: one network's or device's ballots in a time window, and the distinct voters
            # behind them, from the index alone.
            models.Index(fields=["poll", "ip_prefix", "created_at", "voter"], name="ballot_poll_prefix"),
            models.Index(fields=["poll", "device", "created_at", "voter"], name="ballot_poll_device"),
        ]


class BallotBucket(models.Model):
    """Ballots per option per 10 minutes, for the monitor chart (kept in the ballot's transaction).

    `votes`: ballots in the bucket that chose the option. `ballots` and `new_accounts`: ballots
    counted once, on the row of their lowest chosen option (as OptionCount.ballots), so a bucket's
    rows sum to its number of ballots and of ballots from new accounts."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="+")
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField()
    votes = models.IntegerField(default=0)
    ballots = models.IntegerField(default=0)
    new_accounts = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["poll", "option", "bucket"], name="ballot_bucket_unique")]


class ClusterKind(models.TextChoices):
    PREFIX = "prefix", _("网段")
    DEVICE = "device", _("设备")


class ClusterCount(models.Model):
    """Ballots per network (/24, /48) or device of a poll, for the monitor's top lists.

    Rolled up from the ballots after the fact (votes.services.monitor.rollup: the monitor and the
    `close_polls` command), never on the voting hot path, where a row per workplace NAT would be a
    row every voter behind it waits on. `voided` is kept current by void_ballots."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ClusterKind.choices)
    value = models.CharField(max_length=64)
    ballots = models.IntegerField(default=0)
    new_accounts = models.IntegerField(default=0)
    voided = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["poll", "kind", "value"], name="cluster_count_unique")]
        indexes = [models.Index(fields=["poll", "kind", "-ballots"], name="cluster_count_top")]


class ClusterHour(models.Model):
    """The networks and devices with the most ballots in each complete hour of a poll (the top 20),
    rolled up once the hour is over: where the monitor looks for the top ones of a time window,
    whose exact counts it then reads from the ballots' indexes."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ClusterKind.choices)
    hour = models.DateTimeField()
    value = models.CharField(max_length=64)
    ballots = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["poll", "kind", "hour", "value"], name="cluster_hour_unique"),
        ]


class Judge(models.Model):
    """A named account that scores a contest's candidates."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="judges")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["poll", "user"], name="judge_once_per_poll")]


class Criterion(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="criteria")
    name = models.CharField(max_length=50)
    max_score = models.PositiveSmallIntegerField(default=10)
    weight = models.PositiveSmallIntegerField(default=1)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.CheckConstraint(condition=Q(max_score__gte=1), name="criterion_max_positive")]


class Score(models.Model):
    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="scores")
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="scores")
    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="scores")
    score = models.DecimalField(max_digits=6, decimal_places=2)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["judge", "option", "criterion"], name="score_once"),
            models.CheckConstraint(condition=Q(score__gte=0), name="score_not_negative"),
        ]


class Award(models.Model):
    """A prize tier assigned to a contest candidate when the ranking is published."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="awards")
    option = models.ForeignKey(Option, on_delete=models.CASCADE, related_name="awards")
    tier = models.CharField(max_length=20)
    rank = models.PositiveSmallIntegerField()
    final_score = models.DecimalField(max_digits=8, decimal_places=4)
    awarded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    awarded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["poll", "option"], name="award_once_per_option")]


class RateCount(models.Model):
    """Fixed-window request counters shared by every server process (per account, address, device).

    Keyed by (key, window start) alone: one btree on PostgreSQL instead of a surrogate id's plus a
    unique index's, and on SQLite a WITHOUT ROWID table (migration 0003), so a ballot's upsert
    finds and writes its counters in one btree instead of an index and a table. (Should a later
    migration rebuild this table on SQLite, it would come back as a rowid table: same rows and
    rules, one btree more.)"""

    pk = models.CompositePrimaryKey("key", "window_start")
    key = models.CharField(max_length=120)
    # Window start, seconds since the epoch. Not named `window`: that is a reserved word in
    # PostgreSQL and SQLite, and the hot path writes this table in plain SQL.
    window_start = models.BigIntegerField()
    hits = models.IntegerField(default=0)
