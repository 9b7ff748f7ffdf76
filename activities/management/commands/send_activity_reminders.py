"""Cron: remind confirmed participants of activities starting within 24 hours, once each.

    manage.py send_activity_reminders [--hours 24]

Run it every few minutes or hourly: a person already reminded of an activity (a notice of kind
activity.reminder with ref activity:<id>) is not reminded again, so repeated runs send nothing
twice. Notices go in-app and through the outbox (WeChat template messages).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from activities.services.reminders import send_reminders


class Command(BaseCommand):
    help = "Remind confirmed participants of activities starting soon (once per person and activity)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours", type=int, default=24, help="remind of activities starting within this many hours"
        )

    def handle(self, *args, hours: int, **options):
        activities, people = send_reminders(hours=hours)
        self.stdout.write(f"reminded {people} people of {activities} activities")
