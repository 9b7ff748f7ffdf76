from django.core.management.base import BaseCommand

from points.services.expiry import expire_due


class Command(BaseCommand):
    help = "Expire points by each org's yearly policy (run daily, e.g. from cron)."

    def handle(self, *args, **options):
        self.stdout.write(f"{expire_due()} balances expired")
