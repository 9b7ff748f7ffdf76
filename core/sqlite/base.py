"""SQLite with write transactions queued on an OS file lock.

SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps and
retries (1, 2, 5 … 100 ms). Under a rush (a sale, a vote) that turns into seconds of sleeping
while the database sits idle: measured here, 64 clients redeeming got 41 redemptions/s with a
p99 of 2.7 s. Taking an exclusive `flock` before `BEGIN IMMEDIATE` queues writers in the
kernel instead, which wakes the next one the moment the lock is free, across every process
(web workers, the task worker, commands). Readers never take it (WAL lets them run).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_fd: int | None = None
    _writer_locked = False

    def _writer_lock_path(self) -> str | None:
        if self.is_in_memory_db():
            return None
        return f"{self.settings_dict['NAME']}.writer-lock"

    def _take_writer(self) -> None:
        path = self._writer_lock_path()
        if path is not None:
            if self._writer_fd is None:
                self._writer_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
            self._writer_locked = True

    def _start_transaction_under_autocommit(self):
        self._take_writer()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

    @contextlib.contextmanager
    def immediate(self) -> Iterator[None]:
        """A write transaction straight on the driver's connection, under the writer lock: BEGIN
        IMMEDIATE, the block, COMMIT (ROLLBACK if the block or the COMMIT raises). For a rush's few
        hand-written statements (core.sql.DriverCursor) outside any atomic() block. atomic()'s
        bookkeeping around them (autocommit switched off and on, BEGIN through Django's cursor
        wrapper, savepoint state, commit hooks) runs while holding the lock that every other
        writer waits on, and under a rush that lock's hold time bounds the throughput.
        on_commit hooks are not supported here."""
        self.validate_no_atomic_block()
        self.ensure_connection()
        raw = self.connection
        self._take_writer()
        try:
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield
                raw.commit()
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise
        finally:
            self._release_writer()

    def _release_writer(self) -> None:
        if self._writer_locked and self._writer_fd is not None:
            fcntl.flock(self._writer_fd, fcntl.LOCK_UN)
        self._writer_locked = False

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_writer()
            if self._writer_fd is not None:
                os.close(self._writer_fd)
                self._writer_fd = None
