import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import NotFound
from rewards.services.lottery import compute_winners, get_lottery, public_record, verify_record


class Command(BaseCommand):
    help = (
        "Re-run a lottery's draw from its published record (seed, entries, prizes: the JSON served at "
        "/lotteries/<id>/record.json) and check the commitment and the winners. Exit 1 on any mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument("lottery_id", type=int)
        parser.add_argument("--json", dest="json_file", help="check this downloaded record instead of the database's")

    def handle(self, *args, lottery_id: int, json_file: str | None = None, **options):
        if json_file:
            try:
                with open(json_file, encoding="utf-8") as f:
                    record = json.load(f)
            except (OSError, ValueError) as e:
                raise CommandError(f"cannot read {json_file}: {e}") from None
            if record.get("id") != lottery_id:
                raise CommandError(f"{json_file} is the record of lottery {record.get('id')}, not {lottery_id}")
        else:
            try:
                record = public_record(get_lottery(lottery_id))
            except NotFound:
                raise CommandError(f"no lottery {lottery_id}") from None
        ok, findings = verify_record(record)
        entries, prizes = record.get("entries") or [], record.get("prizes") or []
        self.stdout.write(
            f"lottery {record.get('id')} «{record.get('title')}»: {len(entries)} entries, "
            f"{sum(p['quantity'] for p in prizes)} prizes"
        )
        if record.get("seed"):
            self.stdout.write(f"commitment {record.get('commitment')}\nseed       {record['seed']}")
            recomputed = compute_winners(
                record["seed"],
                [e["id"] for e in entries],
                [(p["id"], p["quantity"]) for p in sorted(prizes, key=lambda p: (p["position"], p["id"]))],
                {e["id"]: e.get("m", ("entry", e["id"])) for e in entries},  # as verify_record reads it
            )
            self.stdout.write(f"recomputed winners (entry → prize): {recomputed}")
        for finding in findings:
            self.stderr.write(self.style.ERROR(finding))
        if not ok:
            self.stderr.write(self.style.ERROR("MISMATCH: the published winners do not follow from the seed"))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS("OK: the commitment matches the seed and the winners match the draw"))
