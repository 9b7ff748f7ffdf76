import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from votes.models import Poll, RateCount
from votes.services import monitor, polls


class Command(BaseCommand):
    help = (
        "For cron, every minute: seal every poll past its close (publish the tally recounted from the ballots "
        "with the SHA-256 chain head), recount the sealed poll whose stored recount is oldest (once a day each), "
        "roll up the anti-brushing monitor of open polls, drop rate-limit "
        "counters older than a day."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        sealed = polls.seal_due_polls()
        for poll_id in sealed:
            poll = Poll.objects.defer("chain_checkpoints").get(pk=poll_id)
            self.stdout.write(
                f"sealed poll {poll_id} «{poll.title}»: {poll.chain_length} ballots, head {poll.chain_head}"
            )
        # One stale recount a run at most: a big poll's recount is seconds, and the pages serve the stored one.
        recounted = polls.refresh_stale_recounts(limit=1)
        now = timezone.now()
        rolled = 0
        for poll in Poll.objects.filter(opens_at__lte=now, chain_head="").defer("chain_checkpoints"):
            rolled += monitor.rollup(poll)
        dropped, _ = RateCount.objects.filter(window_start__lt=int(now.timestamp()) - 86400).delete()
        self.stdout.write(
            f"{len(sealed)} sealed, {len(recounted)} recounted, {rolled} ballots rolled up for the monitor, {dropped} old rate counters dropped "
            f"in {time.monotonic() - started:.1f} s"
        )
