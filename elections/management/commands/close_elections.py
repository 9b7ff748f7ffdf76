"""Close every election whose closes_at has passed and publish its result. Meant for cron (every minute)."""

from django.core.management.base import BaseCommand

from elections.services import elections


class Command(BaseCommand):
    help = "Close elections whose voting time is over and publish their results (for cron)."

    def handle(self, *args, **options):
        done = elections.close_due()
        for pk, outcome in done:
            self.stdout.write(f"election {pk}: {outcome}")
        if not done:
            self.stdout.write("no election due")
