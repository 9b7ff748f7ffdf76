"""Backing the database up while the server runs, and restoring it into a fresh database.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page in one step, which is
one read transaction: a consistent snapshot of the last commit before it began. Under WAL a reader
never blocks the writers, so the server goes on selling and counting while it copies. The copy is
written beside the target as `….partial`, switched to a single self-contained file (journal mode
DELETE), checked (`PRAGMA quick_check`) and only then renamed into place.

PostgreSQL: `pg_dump -Fc` (one REPEATABLE READ snapshot; writers are not blocked) and `pg_restore
--single-transaction --exit-on-error` into an empty database: all of it or nothing.

A restore never writes over a database that holds anything: it refuses, and names what it found.
The backup holds PII encrypted with UNIONHOME_PII_KEY and password hashes: it is written 0600, and
it is useless without that key, which must be kept (and restored) separately.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import CommandError


@dataclass
class Target:
    vendor: str  # "sqlite" or "postgresql"
    name: str  # a file path (SQLite) or a database name
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = ""

    def label(self) -> str:
        if self.vendor == "sqlite":
            return f"SQLite {self.name}"
        return f"PostgreSQL {self.user + '@' if self.user else ''}{self.host or 'localhost'}:{self.port or 5432}/{self.name}"


def from_settings(settings_dict: dict) -> Target:
    engine = settings_dict["ENGINE"]
    if engine.endswith(("sqlite3", "core.sqlite")):
        return Target("sqlite", str(settings_dict["NAME"]))
    if "postgresql" in engine:
        return Target(
            "postgresql",
            settings_dict["NAME"],
            str(settings_dict.get("HOST") or ""),
            str(settings_dict.get("PORT") or ""),
            settings_dict.get("USER") or "",
            settings_dict.get("PASSWORD") or "",
        )
    raise CommandError(f"cannot back up a {engine} database")


def from_url(url: str) -> Target:
    """A DATABASE_URL read the way config/settings.py reads it (dj-database-url)."""
    import dj_database_url

    try:
        parsed = dj_database_url.parse(url)
    except Exception as e:  # unknown scheme and the like
        raise CommandError(f"cannot read the database URL: {e}") from None
    if "sqlite" in parsed["ENGINE"] and (not parsed["NAME"] or parsed["NAME"] == ":memory:"):
        raise CommandError("a sqlite URL must name a file: sqlite:////absolute/path/db.sqlite3")
    return from_settings(parsed)


# --- SQLite ---------------------------------------------------------------------------------------


def _sqlite_tables(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]


def backup_sqlite(source: Target, out: Path) -> int:
    """Copy the live database to `out`. Returns the number of tables copied."""
    if not Path(source.name).exists():
        raise CommandError(f"no database at {source.name}")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source.name, timeout=60)
    try:
        src.execute("PRAGMA busy_timeout = 60000")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: every page in one step, one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # the copy is one self-contained file
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise CommandError(f"the copy fails its check: {check}")
            tables = _sqlite_tables(dst)
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.replace(partial, out)
    return tables


def sqlite_is_empty(path: Path) -> tuple[bool, str]:
    if not path.exists():
        return True, ""
    wal = Path(f"{path}-wal")
    if path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size):
        return True, ""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            n = _sqlite_tables(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return False, f"{path} exists and is not an empty SQLite database ({e})"
    return (n == 0, f"{path} already holds {n} tables" if n else "")


def restore_sqlite(backup: Path, target: Target) -> int:
    """Copy the backup into a new database file at target.name. Returns the number of tables."""
    path = Path(target.name)
    empty, why = sqlite_is_empty(path)
    if not empty:
        raise CommandError(f"refusing to overwrite a database that is not empty: {why}")
    try:
        src = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
        check = src.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise CommandError(f"{backup} is not a SQLite backup ({e})") from None
    if check != "ok":
        src.close()
        raise CommandError(f"{backup} fails its check: {check}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = WAL")  # what the server runs with
            tables = _sqlite_tables(dst)
        finally:
            dst.close()
        if tables == 0:
            raise CommandError(f"{backup} holds no tables")
        for suffix in ("-wal", "-shm"):  # left by a once-opened empty file; the copy has its own
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        Path(f"{partial}-wal").unlink(missing_ok=True)
        Path(f"{partial}-shm").unlink(missing_ok=True)
        if path.exists():  # an empty file (checked above): replace it
            path.unlink()
        os.link(partial, path)  # fails if someone created the target meanwhile: never overwrite
    finally:
        src.close()
        partial.unlink(missing_ok=True)
    return tables


# --- PostgreSQL -----------------------------------------------------------------------------------


def pg_program(name: str) -> str:
    """pg_dump / pg_restore: on PATH, else the newest under /usr/lib/postgresql/*/bin (Debian)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if candidates:
        return candidates[-1]
    raise CommandError(f"{name} not found: install the PostgreSQL client programs (apt-get install postgresql-client)")


def _pg_env(target: Target) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in (
        ("PGHOST", target.host),
        ("PGPORT", target.port),
        ("PGUSER", target.user),
        ("PGPASSWORD", target.password),
    ):
        if value:
            env[key] = value
    env["PGDATABASE"] = target.name
    return env


def _pg_connect(target: Target, dbname: str | None = None):
    import psycopg

    return psycopg.connect(
        dbname=dbname or target.name,
        host=target.host or None,
        port=target.port or None,
        user=target.user or None,
        password=target.password or None,
        autocommit=True,
    )


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def backup_postgresql(source: Target, out: Path) -> None:
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        _run([pg_program("pg_dump"), "--format=custom", "--no-password", f"--file={partial}"], _pg_env(source))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)


def pg_relations(target: Target) -> int | None:
    """Tables, views and sequences outside the system schemas; None if the database does not exist."""
    import psycopg

    try:
        conn = _pg_connect(target)
    except psycopg.OperationalError as e:
        if "does not exist" in str(e):
            return None
        raise CommandError(f"cannot connect to {target.label()}: {e}") from None
    with conn:
        return conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'"
        ).fetchone()[0]


def restore_postgresql(backup: Path, target: Target) -> bool:
    """pg_restore into target, created if missing. Returns True if the database was created here."""
    with open(backup, "rb") as f:
        if f.read(5) != b"PGDMP":
            raise CommandError(f"{backup} is not a pg_dump custom-format (-Fc) backup")
    existing = pg_relations(target)
    created = False
    if existing is None:
        from psycopg import sql

        with _pg_connect(target, "postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.name)))
        created = True
    elif existing:
        raise CommandError(
            f"refusing to overwrite a database that is not empty: {target.label()} holds {existing} relations"
        )
    _run(
        [
            pg_program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            f"--dbname={target.name}",
            str(backup),
        ],
        _pg_env(target),
    )
    return created
