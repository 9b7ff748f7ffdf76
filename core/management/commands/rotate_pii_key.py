"""Re-encrypt all PII under a new key: `manage.py rotate_pii_key [--dry-run | --verify]`.

With the web and worker processes stopped, run it with the new key as UNIONHOME_PII_KEY and the
old one in UNIONHOME_PII_OLD_KEYS; then `--verify` with the new key alone, and start the processes
with the new key and without the old one. core/pii_rotation.py says what it guarantees.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from core import pii, pii_rotation


class Command(BaseCommand):
    help = (
        "Re-encrypt every PII ciphertext under UNIONHOME_PII_KEY (the old key in UNIONHOME_PII_OLD_KEYS), "
        "recompute the blind indexes and empty the short-lived tables keyed by old ones. Stop the web "
        "and worker processes first."
    )

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true", help="count what would change; write nothing")
        mode.add_argument(
            "--verify",
            action="store_true",
            help="check that every ciphertext opens with UNIONHOME_PII_KEY alone (no old key needed); write nothing",
        )
        parser.add_argument("--batch-size", type=int, default=2000, help="rows per transaction (default 2000)")

    def handle(self, *args, dry_run: bool, verify: bool, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        verbosity = options["verbosity"]
        self._verb = "rewritten" if not (dry_run or verify) else "to rewrite"
        self._started = time.monotonic()
        progress = self._progress if verbosity >= 1 else None
        try:
            if verify:
                self.stdout.write("verifying that every ciphertext opens with UNIONHOME_PII_KEY alone")
                report = pii_rotation.verify(batch_size=batch_size, progress=progress)
            else:
                pii_rotation.check_can_rotate()
                what = "dry run: counting" if dry_run else "re-encrypting"
                self.stdout.write(
                    f"{what} under UNIONHOME_PII_KEY, {pii.old_key_count()} old key(s), {batch_size:,} rows a batch"
                )
                report = pii_rotation.rotate(dry_run=dry_run, batch_size=batch_size, progress=progress)
        except pii_rotation.RotationError as e:
            raise CommandError(str(e)) from None
        self._summary(report, verify=verify)

    def _progress(self, t: pii_rotation.TableReport) -> None:
        self.stdout.write(
            f"  {t.model}: {t.read:,}/{t.rows:,} rows read, {t.rewritten:,} {self._verb} "
            f"({time.monotonic() - self._started:.1f} s)"
        )
        self.stdout.flush()

    def _summary(self, report: pii_rotation.Report, *, verify: bool) -> None:
        would = "to re-encrypt" if report.dry_run else "re-encrypted"
        for t in report.tables:
            line = (
                f"{t.model}: {t.rows:,} rows; ciphertexts {t.reencrypted:,} {would}, {t.current:,} already current, "
                f"{t.empty:,} empty; indexes {t.indexes:,} recomputed"
            )
            if t.kept_indexes:
                line += f", {t.kept_indexes:,} kept (not an index of their value, e.g. a merged account)"
            self.stdout.write(line)
            if t.unreadable:
                shown = ", ".join(t.unreadable[:10]) + (" …" if len(t.unreadable) > 10 else "")
                self.stdout.write(
                    self.style.ERROR(f"  {len(t.unreadable):,} unreadable with the configured keys: {shown}")
                )
        for label, _why in pii_rotation.SHORT_LIVED:
            if label in report.emptied:
                verb = "to empty" if report.dry_run else "emptied"
                self.stdout.write(f"{label}: {report.emptied[label]:,} rows {verb}: {_why}")
        unreadable = sum(len(t.unreadable) for t in report.tables)
        pending = sum(t.reencrypted for t in report.tables)
        if verify:
            if unreadable or pending:
                raise CommandError(
                    f"{pending + unreadable:,} ciphertexts are not under UNIONHOME_PII_KEY: "
                    "run rotate_pii_key with the old key in UNIONHOME_PII_OLD_KEYS"
                )
            self.stdout.write(
                self.style.SUCCESS(f"every ciphertext opens with UNIONHOME_PII_KEY ({report.seconds:.1f} s)")
            )
        elif report.dry_run:
            if unreadable:
                raise CommandError(
                    f"{unreadable:,} ciphertexts open with no configured key: the run would stop at the first"
                )
            self.stdout.write(self.style.SUCCESS(f"dry run: nothing written ({report.seconds:.1f} s)"))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"done in {report.seconds:.1f} s. Check with `rotate_pii_key --verify` with the new key alone, "
                    "then start the web and worker processes with the new UNIONHOME_PII_KEY and without "
                    "UNIONHOME_PII_OLD_KEYS."
                )
            )
