"""Close every election whose closes_at has passed and publish its result, and flush the ballot
pools of open elections that hold a full batch (elections.services.ballots). For cron (every minute)."""

import datetime as dt

from django.core.management.base import BaseCommand
from django.utils import timezone

from elections.models import Election
from elections.services import ballots, elections


class Command(BaseCommand):
    help = "Close elections whose voting time is over, publish their results, flush full ballot pools (for cron)."

    def handle(self, *args, **options):
        done = elections.close_due()
        for pk, outcome in done:
            self.stdout.write(f"election {pk}: {outcome}")
        if not done:
            self.stdout.write("no election due")
        flushed = ballots.flush_open()
        for pk, moved in flushed:
            self.stdout.write(f"election {pk}: {moved} pooled ballots flushed")
        # A close from the console's button happens between runs: it is scrubbed at the next one.
        closed = Election.objects.filter(closed_at__gte=timezone.now() - dt.timedelta(minutes=3)).exists()
        if (closed or flushed) and ballots.scrub():
            self.stdout.write("ballot tables vacuumed / WAL checkpointed")
