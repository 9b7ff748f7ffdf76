"""Close every election whose closes_at has passed and publish its result, and flush the ballot
pools of open elections that hold a full batch (elections.services.ballots). For cron (every minute)."""

from django.core.management.base import BaseCommand

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
        if (any(outcome == "closed" for _pk, outcome in done) or flushed) and ballots.scrub():
            self.stdout.write("ballot tables vacuumed / WAL checkpointed")
