from django.core.management.base import BaseCommand
from django.db.models import Sum

from points.models import Account, Entry


class Command(BaseCommand):
    help = "Check every stored points balance against the sum of its entries, and the ledger sums to zero."

    def handle(self, *args, **options):
        sums = dict(Entry.objects.values("account").annotate(s=Sum("amount")).values_list("account", "s"))
        bad = 0
        for pk, balance in Account.objects.values_list("pk", "balance").iterator(chunk_size=20000):
            expected = sums.get(pk, 0)
            if balance != expected:
                bad += 1
                self.stdout.write(f"account {pk}: stored {balance}, entries {expected}")
        total = Entry.objects.aggregate(s=Sum("amount"))["s"] or 0
        if total != 0:
            self.stdout.write(f"entries sum to {total}, not 0")
        n = Account.objects.count()
        if bad or total:
            self.stderr.write(self.style.ERROR(f"{bad} of {n} accounts differ; ledger sum {total}"))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"{n} accounts reconcile with their entries; the ledger sums to 0"))
