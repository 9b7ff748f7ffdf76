"""Resume roster imports whose worker died (`kill -9`, out of memory, a reboot).

django-tasks-db never runs a task again on its own: its row stays RUNNING. This puts every import
whose lease is free and which has no task waiting back in the queue, where the next `db_worker`
resumes it at its first uncommitted batch (members/resume.py). Idempotent: run it from
`run_schedule`, from cron, or before starting `db_worker`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from members import resume


class Command(BaseCommand):
    help = "Put roster imports whose worker died back in the task queue (they resume where they stopped)."

    def handle(self, *args, **options):
        swept = resume.sweep()
        for job_id, what in swept:
            self.stdout.write(f"import job {job_id}: {what}")
        if not swept:
            self.stdout.write("no import has lost its worker")
