from django.core.management.base import BaseCommand

from rewards.services.lottery import draw_due


class Command(BaseCommand):
    help = "Draw every open lottery whose draw time has come (run every few minutes, e.g. from cron)."

    def handle(self, *args, **options):
        done = draw_due()
        for pk, outcome in done:
            self.stdout.write(f"lottery {pk}: {outcome}")
        self.stdout.write(f"{sum(1 for _pk, o in done if o == 'drawn')} lotteries drawn")
