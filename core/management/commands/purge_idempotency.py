"""Delete Idempotency-Key records older than 24 h (API.md keeps answers "for at least 24 h"; past
that they are only a list of who did what when). Run hourly by run_schedule."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from core.idempotency import purge_expired


class Command(BaseCommand):
    help = "Delete idempotency records older than 24 hours."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="ISO 8601 time to purge as of (drills and tests)")

    def handle(self, *args, now: str | None = None, **options):
        at = None
        if now:
            try:
                at = dt.datetime.fromisoformat(now)
            except ValueError:
                raise CommandError(f"--now: not an ISO 8601 time: {now}") from None
            if at.tzinfo is None:
                raise CommandError("--now needs an offset, e.g. 2026-01-01T08:00:00+08:00")
        self.stdout.write(f"idempotency records purged: {purge_expired(at)}")
