"""Formal union elections (选举): rolls, secret ballots, the regulations' counting rules, rounds.

Secrecy by structure: who took part (`ElectionVoter`: the roll row, with `voted_at` and the
receipt) and what was marked (a ballot: marks only) are separate tables with nothing in common
but the election. A ballot has no user, no timestamp and no sequential id.

What the storage itself could give away, and what stops it (issue 13):

- A ballot is cast into `PooledBallot`, in the same transaction as the conditional UPDATE of the
  roll row (so one ballot per voter stays one database invariant). That transaction's id
  (PostgreSQL's xmin) is on both rows, so pooled rows are short-lived: a flush, in a transaction
  of its own, deletes them and inserts their marks into `ElectionBallot` in a shuffled order with
  fresh random ids (elections.services.ballots). The close flushes the pool and rewrites every
  ballot of the election once more, in one transaction, so after the close all of an election's
  ballots share one xmin and their heap order (ctid) is a shuffle.
- On SQLite both tables are WITHOUT ROWID (migration 0002), keyed by their random id: there is
  no rowid whose order would follow the order of casting.
- The pool's flushed rows are deleted with SQLite's `secure_delete` on (zeroed in the file); on
  PostgreSQL they stay as dead tuples until VACUUM. The README's security notes list what is left
  (WAL, dead tuples, backups taken while an election is open).

Publishing every anonymous ballot lets a coercer on a small roll demand an unusual mark pattern;
the regulations' paper ballots have the same property when shown at the count. Below
`record.MIN_PUBLISHED_BALLOTS` ballots only the totals are published.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from orgs.models import Org


class ElectionStatus(models.TextChoices):
    OPEN = "open", _("投票中")
    CLOSED = "closed", _("已结束")


class MajorityBase(models.TextChoices):
    """Whose half a candidate must pass (工会基层组织选举工作条例: 应到会有选举权人数 by default)."""

    ELIGIBLE = "eligible", _("应到会有选举权人数的过半数")
    VOTED = "voted", _("实际参加投票人数的过半数")


class Quorum(models.TextChoices):
    """How many of the roll must take part for the vote to count."""

    TWO_THIRDS = "two_thirds", _("超过应到人数的三分之二")
    HALF = "half", _("超过应到人数的半数")
    NONE = "none", _("不设参选人数要求")


class RoundKind(models.TextChoices):
    REGULAR = "regular", _("正式选举")
    RUNOFF = "runoff", _("得票相等者再次投票")
    FURTHER = "further", _("另行选举")


class Election(models.Model):
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="elections")
    title = models.CharField(max_length=100)
    seats = models.PositiveSmallIntegerField()
    majority_of = models.CharField(max_length=10, choices=MajorityBase.choices, default=MajorityBase.ELIGIBLE)
    quorum = models.CharField(max_length=12, choices=Quorum.choices, default=Quorum.TWO_THIRDS)
    # The roll's kind: "members" (the subtree's certified members when created) or "delegates".
    roll_kind = models.CharField(max_length=10, default="members")
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=ElectionStatus.choices, default=ElectionStatus.OPEN)
    # A run-off or further round is a new election over the same roll, pointing at the round before.
    # One-to-one: a round can be followed by one round only, so two clicks cannot start two.
    parent = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="next_round")
    round = models.PositiveSmallIntegerField(default=1)
    kind = models.CharField(max_length=10, choices=RoundKind.choices, default=RoundKind.REGULAR)
    eligible = models.PositiveIntegerField(default=0)  # the roll's size, frozen at creation
    # Published at close, never changed afterwards: the tally and outcome (as the API's results),
    # and the head of the hash chain over the ballots in public-id order.
    result = models.JSONField(null=True, blank=True)
    chain_head = models.CharField(max_length=64, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_early = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "closes_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(seats__gte=1), name="election_seats_positive"),
            models.CheckConstraint(condition=Q(closes_at__gt=F("opens_at")), name="election_window_in_order"),
            models.CheckConstraint(condition=Q(round__gte=1), name="election_round_positive"),
            models.CheckConstraint(
                condition=Q(status="open") | (Q(result__isnull=False) & ~Q(chain_head="") & Q(closed_at__isnull=False)),
                name="election_closed_has_result",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Candidate(models.Model):
    election = models.ForeignKey(Election, on_delete=models.CASCADE, related_name="candidates")
    name = models.CharField(max_length=50)
    position = models.PositiveSmallIntegerField(default=0)  # ballot order
    # In a later round: the same person's candidacy in the round before (to follow them across rounds).
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["election", "name"], name="candidate_unique_name")]

    def __str__(self) -> str:
        return self.name


class ElectionVoter(models.Model):
    """A row of the roll; `voted_at` and `receipt` say that (never how) this person voted."""

    election = models.ForeignKey(Election, on_delete=models.CASCADE, related_name="voters")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="election_rolls")
    voted_at = models.DateTimeField(null=True, blank=True)
    receipt = models.CharField(max_length=16, null=True, blank=True, unique=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["election", "user"], name="election_voter_once_on_roll"),
            models.CheckConstraint(
                condition=Q(voted_at__isnull=True, receipt__isnull=True)
                | Q(voted_at__isnull=False, receipt__isnull=False),
                name="election_voter_receipt_with_vote",
            ),
        ]
        indexes = [models.Index(fields=["user", "election"])]


class ElectionBallot(models.Model):
    """A counted anonymous ballot: marks per candidate id ("for" | "against" | "abstain"), nothing else.

    Written only by a flush (never by the voter's own transaction); the primary key is 32 random
    hex digits drawn at the flush, so ordering by it is a shuffle, not the order of casting; there
    is deliberately no created_at. WITHOUT ROWID on SQLite (migration 0002)."""

    id = models.CharField(primary_key=True, max_length=32)
    election = models.ForeignKey(Election, on_delete=models.CASCADE, related_name="ballots")
    marks = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["election", "id"])]


class PooledBallot(models.Model):
    """A cast ballot waiting for the flush that moves it into ElectionBallot (and deletes it here).

    It shares its transaction with the roll row's UPDATE, so it must not stay: see the module
    docstring. Random key (not the public id it will get), no time; WITHOUT ROWID on SQLite."""

    id = models.CharField(primary_key=True, max_length=32)
    election = models.ForeignKey(Election, on_delete=models.CASCADE, related_name="+")
    marks = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["election", "id"])]
