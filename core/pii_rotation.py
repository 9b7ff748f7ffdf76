"""PII key rotation: every ciphertext re-encrypted under UNIONHOME_PII_KEY, every blind index
that derives from one recomputed, the short-lived rows keyed by old indexes emptied.
`manage.py rotate_pii_key` runs it; the README's "How keys rotate" is the operator's procedure.

It is an offline procedure: the web and worker processes are stopped while it runs, because a
process still holding only the old key would write rows the new key cannot read, and would look
phones and ID numbers up by old indexes. Run it with the new key as UNIONHOME_PII_KEY and the old
one in UNIONHOME_PII_OLD_KEYS, then start the processes with the new key and without the old one.

Guarantees:
- Batches of `batch_size` rows, each one transaction, in primary-key order: a row's ciphertexts
  and indexes change together, so a row is always wholly under one key.
- Resumable: a ciphertext that opens with the current key is done and left alone (AES-GCM's tag
  says which key fits), so a re-run after an interruption finishes the job and a run after that
  changes nothing.
- Unique indexes (User.phone_hash, Member.id_number_hash) hold at every step: a new index is an
  HMAC under a new key, equal to no old one, and equal values keep equal indexes.
- An index is replaced only where it is the old key's index of its row's value; anything else
  (an account merged into a roster account keeps `merged:<id>:<id>`) is left and counted.
- A ciphertext no configured key opens stops the run (its batch rolled back), naming the table,
  row and column, never the value. `verify` lists every such row without changing anything.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction

from core import pii


@dataclasses.dataclass(frozen=True)
class Ciphertext:
    column: str  # the BinaryField holding nonce + AES-GCM ciphertext
    index: str = ""  # the blind index computed from its plaintext, if any
    index_of: Callable[..., str] | None = None  # pii.phone_index or pii.id_number_index


@dataclasses.dataclass(frozen=True)
class Table:
    model: str  # "app_label.Model"
    ciphertexts: tuple[Ciphertext, ...]


PHONE = ("phone_enc", "phone_hash", pii.phone_index)
ID_NUMBER = ("id_number_enc", "id_number_hash", pii.id_number_index)

# Every ciphertext column in the project; `unknown_ciphertexts()` finds one missing from here.
TABLES: tuple[Table, ...] = (
    Table("accounts.User", (Ciphertext(*PHONE),)),
    Table("members.Member", (Ciphertext(*ID_NUMBER), Ciphertext(*PHONE))),
    Table("members.JoinApplication", (Ciphertext(*ID_NUMBER),)),
    Table("rewards.Lottery", (Ciphertext("seed_enc"),)),  # a lottery's secret seed until its draw
)

# Rows keyed by blind indexes of values the database does not hold (a phone that asked for a code,
# a client address, an ID number typed at certification): they cannot be recomputed, and each
# expires within a day, so they are emptied. Sign-in limits and 实名认证 tries start afresh.
SHORT_LIVED: tuple[tuple[str, str], ...] = (
    ("accounts.SmsCode", "SMS sign-in and certification codes (10 minutes)"),
    ("accounts.RateCounter", "sign-in and SMS rate counters (15 minutes to a day)"),
    ("members.CertificationTry", "实名认证 tries (counted over a day)"),
    ("accounts.SmsOutbox", "the development SMS inbox"),
)


class RotationError(Exception):
    """The rotation cannot start, or met a ciphertext no configured key opens."""


@dataclasses.dataclass
class TableReport:
    model: str
    rows: int = 0  # rows in the table
    read: int = 0  # rows read so far
    rewritten: int = 0  # rows whose ciphertexts were (or, dry run, would be) re-encrypted
    current: int = 0  # ciphertexts already under the current key
    reencrypted: int = 0  # ciphertexts re-encrypted
    indexes: int = 0  # blind indexes recomputed
    kept_indexes: int = 0  # indexes that were not the old key's index of their value: left as they are
    empty: int = 0  # empty ciphertext columns
    unreadable: list[str] = dataclasses.field(default_factory=list)  # "pk column" (verify and dry run)


@dataclasses.dataclass
class Report:
    tables: list[TableReport]
    emptied: dict[str, int]  # short-lived table → rows deleted (or, dry run, to delete)
    dry_run: bool
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return sum(t.rewritten for t in self.tables) + sum(self.emptied.values())


Progress = Callable[[TableReport], None]


def unknown_ciphertexts(models_: Iterable[type[models.Model]] | None = None) -> list[str]:
    """`model.column` of every `*_enc` BinaryField that TABLES does not rotate."""
    known = {(t.model.lower(), c.column) for t in TABLES for c in t.ciphertexts}
    out = []
    for model in models_ if models_ is not None else apps.get_models():
        for field in model._meta.get_fields():
            ciphertext = isinstance(field, models.BinaryField) and field.name.endswith("_enc")
            if ciphertext and (model._meta.label_lower, field.name) not in known:
                out.append(f"{model._meta.label}.{field.name}")
    return out


def check_can_rotate() -> None:
    """Raise RotationError unless an old key is configured and the current key is not among them."""
    listed = [k for k in (getattr(settings, "UNIONHOME_PII_OLD_KEYS", "") or "").split(",") if k.strip()]
    if not listed:
        raise RotationError(
            "UNIONHOME_PII_OLD_KEYS is empty: run with the new key as UNIONHOME_PII_KEY and the old "
            "one(s) in UNIONHOME_PII_OLD_KEYS"
        )
    if pii.old_key_count() != len(listed):
        raise RotationError("UNIONHOME_PII_OLD_KEYS lists the new key itself, or one key twice")


def rotate(*, dry_run: bool = False, batch_size: int = 2000, progress: Progress | None = None) -> Report:
    """Re-encrypt every ciphertext under the current key and recompute the indexes that derive
    from them, `batch_size` rows a transaction; then empty the SHORT_LIVED tables. Idempotent,
    resumable. `dry_run` counts what would change and lists unreadable rows, writing nothing."""
    check_can_rotate()
    return _run(dry_run=dry_run, batch_size=batch_size, progress=progress, empty_short_lived=True)


def verify(*, batch_size: int = 2000, progress: Progress | None = None) -> Report:
    """Count, without writing, the ciphertexts not under the current key (old keys, if still
    configured, count as not done; without them such rows are unreadable). Needs no old key."""
    return _run(dry_run=True, batch_size=batch_size, progress=progress, empty_short_lived=False)


def _run(*, dry_run: bool, batch_size: int, progress: Progress | None, empty_short_lived: bool) -> Report:
    unknown = unknown_ciphertexts()
    if unknown:
        raise RotationError(
            f"ciphertext columns this command does not know: {', '.join(unknown)} "
            "(add them to core.pii_rotation.TABLES)"
        )
    started = time.monotonic()
    report = Report(tables=[], emptied={}, dry_run=dry_run)
    for table in TABLES:
        report.tables.append(_rotate_table(table, dry_run=dry_run, batch_size=batch_size, progress=progress))
    if empty_short_lived:
        for label, _why in SHORT_LIVED:
            qs = apps.get_model(label).objects.all()
            if dry_run:
                report.emptied[label] = qs.count()
            else:
                with transaction.atomic():
                    report.emptied[label] = qs.delete()[0]
    report.seconds = time.monotonic() - started
    return report


def _rotate_table(table: Table, *, dry_run: bool, batch_size: int, progress: Progress | None) -> TableReport:
    model = apps.get_model(table.model)
    tr = TableReport(model=table.model, rows=model.objects.count())
    columns = _columns(table)
    last = 0
    while True:
        with transaction.atomic():
            qs = model.objects.filter(pk__gt=last).order_by("pk")
            if not dry_run:
                qs = qs.select_for_update()
            rows = list(qs.values_list("pk", *columns)[:batch_size])
            if not rows:
                break
            updates = [u for u in (_rotate_row(table, row, tr, dry_run) for row in rows) if u is not None]
            tr.rewritten += len(updates)
            if updates and not dry_run:
                _write(model, columns, updates)
        last = rows[-1][0]
        tr.read += len(rows)
        if progress is not None:
            progress(tr)
    return tr


def _rotate_row(table: Table, row: tuple, tr: TableReport, dry_run: bool) -> list | None:
    """The row's new values in `columns` order, then its pk; None when it is already done."""
    pk, values = row[0], dict(zip(_columns(table), row[1:], strict=True))
    changed = False
    for c in table.ciphertexts:
        blob = values[c.column]
        if not blob:
            tr.empty += 1
            continue
        try:
            plain, key_number = pii.decrypt_with_key_number(blob)
        except pii.UndecryptableError:
            where = f"{table.model} #{pk} {c.column}"
            if dry_run:
                tr.unreadable.append(where)
                continue
            raise RotationError(
                f"{where}: opens with neither UNIONHOME_PII_KEY nor UNIONHOME_PII_OLD_KEYS; add the key "
                "it was written with to UNIONHOME_PII_OLD_KEYS and run again (this batch was rolled back)"
            ) from None
        if key_number == 0:
            tr.current += 1
            continue
        changed = True
        tr.reencrypted += 1
        if not dry_run:
            values[c.column] = pii.encrypt(plain)
        if c.index:
            if values[c.index] == c.index_of(plain, key_number=key_number):
                values[c.index] = c.index_of(plain)
                tr.indexes += 1
            else:
                tr.kept_indexes += 1
    if not changed:
        return None
    return [values[col] for col in _columns(table)] + [pk]


def _columns(table: Table) -> list[str]:
    return [c.column for c in table.ciphertexts] + [c.index for c in table.ciphertexts if c.index]


def _write(model: type[models.Model], columns: list[str], updates: list[list]) -> None:
    """One UPDATE per row, sent together (executemany: pipelined on PostgreSQL)."""
    q = connection.ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{q(meta.get_field(c).column)} = %s" for c in columns)
    sql = f"UPDATE {q(meta.db_table)} SET {assignments} WHERE {q(meta.pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.executemany(sql, updates)
