from django.core.management.base import BaseCommand

from accounts.services import purge_expired


class Command(BaseCommand):
    help = "Delete expired bearer tokens and SMS codes and ended rate-limit windows (run hourly; idempotent)."

    def handle(self, *args, **options) -> None:
        done = purge_expired()
        self.stdout.write(", ".join(f"{n} {what.replace('_', ' ')}" for what, n in done.items()) + " purged")
