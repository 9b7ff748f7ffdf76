from django.core.management.base import BaseCommand

from live.services.sessions import send_due_reminders


class Command(BaseCommand):
    help = "Notify people who set a reminder, once, 15 minutes before a live session starts (run every minute)."

    def handle(self, *args, **options):
        n = send_due_reminders()
        self.stdout.write(f"直播提醒：已通知 {n} 人")
