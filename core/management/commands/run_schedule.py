"""The platform's clock: runs the time-driven jobs of every app, each when it is due.

Every job is idempotent (closing a poll twice, reminding a person twice, drawing a lottery
twice are all refused by the data itself), so a missed or repeated tick is harmless; one
process is enough for a deployment, beside `db_worker`. `--once` runs every job one time
(for cron, or a test).
"""

from __future__ import annotations

import logging
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone

log = logging.getLogger("unionhome.schedule")

# (command, every so many seconds)
JOBS: list[tuple[str, int]] = [
    ("close_polls", 60),
    ("resume_imports", 60),  # roster imports whose worker died go back in the queue (members/resume.py)
    ("close_elections", 60),
    ("draw_lotteries", 60),
    ("send_activity_reminders", 300),
    ("send_live_reminders", 60),
    ("expire_points", 3600),
    ("purge_accounts", 3600),
    ("purge_idempotency", 3600),
    ("clearsessions", 3600),  # Django's: expired server-side sessions
]


class Command(BaseCommand):
    help = "Run the time-driven jobs (closing polls and elections, draws, reminders, expiry) when due."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every job once and exit")
        parser.add_argument("--tick", type=float, default=15.0, help="seconds between checks (default 15)")

    def handle(self, *args, once: bool, tick: float, **options):
        last: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for name, every in JOBS:
                if once or now - last.get(name, -1e18) >= every:
                    last[name] = now
                    try:
                        call_command(name, stdout=self.stdout, stderr=self.stderr)
                    except Exception:  # one failing job must not stop the others
                        log.exception("scheduled job %s failed at %s", name, timezone.now().isoformat())
            if once:
                return
            time.sleep(tick)
