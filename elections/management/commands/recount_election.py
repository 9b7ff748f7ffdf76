"""Recount an election from its stored ballots (or from a downloaded public record) and compare
with the published result and hash-chain head. Exit status 1 on any mismatch."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import NotFound
from elections.models import ElectionStatus
from elections.services import elections
from elections.services import record as records


class Command(BaseCommand):
    help = "Recompute an election's tally from the stored ballots, verify the hash chain, print match or mismatch."

    def add_arguments(self, parser):
        parser.add_argument("election_id", type=int, nargs="?")
        parser.add_argument("--json", dest="json_file", help="check a downloaded public record instead of the database")

    def handle(self, *args, election_id=None, json_file=None, **options):
        if json_file:
            try:
                data = json.loads(Path(json_file).read_text(encoding="utf-8"))
                if election_id is not None and int(data.get("id", -1)) != election_id:
                    raise CommandError(f"{json_file} is the record of election {data.get('id')}, not {election_id}")
                report = records.verify_record(data)
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise CommandError(f"cannot read the record {json_file}: {e}") from None
        else:
            if election_id is None:
                raise CommandError("give an election id, or --json FILE")
            try:
                election = elections.get_election(election_id)
            except NotFound:
                raise CommandError(f"election {election_id} not found") from None
            if election.status != ElectionStatus.CLOSED:
                raise CommandError(f"election {election_id} is not closed yet: nothing published to recount")
            report = records.recount(election)
        self.stdout.write(f"ballots: {report.ballots}  receipts: {report.receipts}")
        self.stdout.write(f"chain head (recomputed): {report.chain_head}")
        self.stdout.write(f"chain head (published):  {report.published_chain_head}")
        for c in report.recomputed["candidates"]:
            mark = " elected" if c["elected"] else ""
            self.stdout.write(
                f"  candidate {c['id']}: for {c['for']}, against {c['against']}, abstain {c['abstain']}{mark}"
            )
        if report.matches:
            self.stdout.write(self.style.SUCCESS("MATCH: the recount equals the published result"))
            return
        for finding in report.findings:
            self.stderr.write(f"MISMATCH: {finding}")
        raise SystemExit(1)
