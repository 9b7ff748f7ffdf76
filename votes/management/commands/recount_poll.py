import json

from django.core.management.base import BaseCommand, CommandError

from votes.models import Poll
from votes.services import polls
from votes.services.tally import verify_record


class Command(BaseCommand):
    help = (
        "Recount a poll from its stored ballots and recompute its SHA-256 chain; print both beside the published "
        "tally and head. Exit 1 on any mismatch. With --json FILE, check a downloaded public record instead "
        "(no database needed beyond reading the file)."
    )

    def add_arguments(self, parser):
        parser.add_argument("poll_id", type=int)
        parser.add_argument("--json", dest="json_file", help="check this downloaded record (the portal's record.json)")

    def handle(self, *args, poll_id: int, json_file: str | None = None, **options):
        if json_file:
            try:
                with open(json_file, encoding="utf-8") as f:
                    record = json.load(f)
            except (OSError, ValueError) as e:
                raise CommandError(f"cannot read {json_file}: {e}") from None
            if (record.get("poll") or {}).get("id") != poll_id:
                raise CommandError(f"{json_file} is not the record of poll {poll_id}")
            ok, findings = verify_record(record)
            self.stdout.write(f"poll {poll_id}: {len(record.get('ballots') or [])} ballots in {json_file}")
            for finding in findings:
                self.stderr.write(self.style.ERROR(finding))
            if not ok:
                raise SystemExit(1)
            self.stdout.write(self.style.SUCCESS("the record's tally and chain match what it publishes"))
            return
        poll = Poll.objects.filter(pk=poll_id).first()
        if poll is None:
            raise CommandError(f"no poll {poll_id}")
        if polls.status_of(poll) == "closed":
            poll = polls.require_closed(poll)  # sealed now if nobody has
        # A sealed poll's recount is stored for the public recount page, which never counts by itself.
        rc = polls.refresh_recount(poll) if poll.chain_head else polls.recount(poll)
        self.stdout.write(f"poll {poll.pk} «{poll.title}» ({polls.status_of(poll)}): {rc.ballots} ballots in the chain")
        label = "published" if rc.sealed else "live counters"
        self.stdout.write(f"{label:>14}: {json.dumps(rc.published_tally, ensure_ascii=False)}")
        self.stdout.write(f"{'recount':>14}: {json.dumps(rc.tally, ensure_ascii=False)}")
        if rc.sealed:
            self.stdout.write(f"{'published head':>14}: {rc.published_head}")
            self.stdout.write(f"{'recount head':>14}: {rc.chain_head}")
        problems = []
        if not rc.tally_matches:
            problems.append("the recount differs from the " + label)
        if not rc.chain_matches:
            problems.append(
                f"the chain differs from the published head (first bad checkpoint: n={rc.first_bad_checkpoint})"
            )
        for p in problems:
            self.stderr.write(self.style.ERROR("MISMATCH: " + p))
        if problems:
            raise SystemExit(1)
        what = (
            "tally and chain match the published ones"
            if rc.sealed
            else "tally matches the live counters (not sealed yet)"
        )
        self.stdout.write(self.style.SUCCESS("recount ok: " + what))
