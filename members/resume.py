"""Crash-safe background roster imports: a lease per running job, a checkpoint per batch, a sweep.

django-tasks-db does not run a task again when its worker dies: the task row stays RUNNING for
ever and so does the import job, whatever was killed (a `kill -9`, the OOM killer, a reboot).
Three pieces make a large import finish anyway, with exact counts:

- **Lease.** The worker running job N holds an OS-level lock for it the whole time: an `flock` on
  a file beside the SQLite database, or a session advisory lock on a PostgreSQL connection of its
  own. The kernel or the database server drops it the moment the process dies, however it dies,
  so "the lease can be taken" means "nobody is running this job" with no timeout to tune.
- **Checkpoint.** Each 2,000-row batch is stored in one transaction together with the job's
  running tallies (rows done, created, updated, unchanged, the batch's row errors). A crash
  loses at most the batch in flight, and its tallies with it; a resumed run re-reads and
  re-validates the file (deterministic: the same `today` as the first attempt) and continues at
  the first batch not committed, so the final counts are those of a run that never stopped.
- **Sweep** (`sweep()`; `manage.py resume_imports`, which `run_schedule` runs every minute): a job
  QUEUED or RUNNING whose lease is free and that has no task waiting in the queue has lost its
  worker; its task row is put back in the queue (or a new one enqueued when the enqueue itself was
  lost with the web process), and the next worker resumes it. A job started in a request (up to
  ROSTER_SYNC_MAX_ROWS rows) whose process died is marked failed after SYNC_GRACE: its committed
  batches are kept and a re-upload completes it (the import is idempotent by ID number).

A second task for the same job (a duplicate enqueue, two sweeps at once) is harmless: it waits
briefly for the lease, and finds the job running elsewhere or already done.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone, translation

from . import importing, jobs
from .models import ImportJob, ImportStatus

log = logging.getLogger("unionhome.imports")

TASK_PATH = "members.tasks.run_import_job"
PG_LEASE_CLASS = 0x554D  # first key of the two-key advisory lock: "roster import lease"
QUEUED_GRACE = dt.timedelta(seconds=60)  # a QUEUED job younger than this may still be being enqueued
SYNC_GRACE = dt.timedelta(minutes=15)  # a request-time import (≤ 5,000 rows) is long over by then
LEASE_WAIT = 5.0  # a sweep's probe holds a lease for milliseconds; a runner waits this long for it


# --- the lease ------------------------------------------------------------------------------------


@contextlib.contextmanager
def lease(job_id: int, *, wait: float = 0.0) -> Iterator[bool]:
    """Yields True while this process holds job `job_id`'s lease, False if another process has it."""
    vendor = connections["default"].vendor
    deadline = time.monotonic() + wait
    if vendor == "sqlite":
        db = connections["default"]
        if db.is_in_memory_db():  # tests: one database per process
            path = os.path.join(tempfile.gettempdir(), f"unionhome-{os.getpid()}-import-{int(job_id)}.lease")
        else:
            path = f"{db.settings_dict['NAME']}.import-{int(job_id)}.lease"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.1)
            try:
                yield True
            finally:
                # The holder removes the file; whoever locks a removed file re-reads the job and
                # finds it finished, so no one acts on a stale lock file.
                with contextlib.suppress(OSError):
                    os.unlink(path)
        finally:
            os.close(fd)  # releases the flock
        return
    if vendor != "postgresql":  # pragma: no cover - the two supported databases
        raise RuntimeError(f"no import lease for {vendor}")
    conn = connections.create_connection("default")  # a session of its own, outside any transaction
    try:
        with conn.cursor() as cur:
            while True:
                cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [PG_LEASE_CLASS, int(job_id)])
                if cur.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        yield True
    finally:
        conn.close()  # ends the session: the advisory lock goes with it


# --- running a job, batch by batch ------------------------------------------------------------------


def run(job_id: int) -> None:
    """The background task's body: run (or resume) the job under its lease."""
    with lease(job_id, wait=LEASE_WAIT) as held:
        if not held:
            log.info("import job %s is being run by another worker", job_id)
            return
        job = ImportJob.objects.select_related("org", "actor").get(pk=job_id)
        with translation.override(job.language or settings.LANGUAGE_CODE):
            _run(job)


def _run(job: ImportJob) -> None:
    if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        return
    resuming = job.status == ImportStatus.RUNNING  # a worker died in it: tallies so far are committed
    if resuming:
        log.warning("import job %s resumes after %s of %s rows", job.pk, job.progress, job.total)
    else:
        started = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.QUEUED).update(
            status=ImportStatus.RUNNING, progress=0, created=0, updated=0, unchanged=0, errors=[]
        )
        if not started:
            jobs.discard_upload_if_ended(job.pk)
            return  # cancelled between the read and now: a cancel is never undone
        job.refresh_from_db()
    try:
        with open(job.stored_path, "rb") as f:
            rows = importing.read_sheet(f)
        # Validation must give the same rows on a resume: the date of the first attempt, not today's.
        good, row_errors, total = importing.validate_rows(rows, today=timezone.localdate(job.created_at))
        bad = total - len(good)
        done_good = max(0, job.progress - bad) if resuming else 0
        start = -(-done_good // importing.CHUNK) * importing.CHUNK  # the first batch not committed
        stored_errors = list(job.errors) if resuming else []
        if start == 0:
            ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(progress=bad, total=total)
        for at in range(start, len(good), importing.CHUNK):
            stored_errors = _store_batch(job, good, at, bad=bad, total=total, errors=stored_errors)
            if stored_errors is None:
                log.info("import job %s was cancelled; stopped after %s of %s rows", job.pk, job.progress, total)
                jobs.discard_upload_if_ended(job.pk)
                return
    except importing.ImportFileError as e:
        ImportJob.objects.filter(pk=job.pk, status__in=jobs.ACTIVE).update(
            status=ImportStatus.FAILED, failure=e.message, finished_at=timezone.now()
        )
        return
    except Exception:
        failed = ImportJob.objects.filter(pk=job.pk, status__in=jobs.ACTIVE).update(
            status=ImportStatus.FAILED,
            failure="导入过程中出现内部错误，已导入的数据保留，可重新上传继续",
            finished_at=timezone.now(),
        )
        if not failed:
            # Cancelled meanwhile (its upload deleted under us, say): the cancel stands.
            log.info("import job %s ended while running", job.pk, exc_info=True)
            return
        raise
    result = importing.ImportResult(
        created=job.created,
        updated=job.updated,
        unchanged=job.unchanged,
        errors=list(row_errors) + [importing.RowError(**e) for e in stored_errors],
        total=total,
    )
    job.refresh_from_db()
    jobs._finish(job, result)
    Path(job.stored_path).unlink(missing_ok=True)


class _Cancelled(Exception):
    """Raised inside a batch's transaction to roll the batch back: the job is no longer running."""


def _store_batch(job: ImportJob, good: list, at: int, *, bad: int, total: int, errors: list) -> list | None:
    """Store the batch of good rows starting at `at` with the job's checkpoint, in one transaction.

    Returns the job's row errors so far, or None when the job is no longer running (cancelled):
    the checkpoint is a conditional UPDATE on the running status, and when it changes no row the
    batch is rolled back with it and nothing more is stored.
    """
    batch = importing.ImportResult()
    try:
        with transaction.atomic():
            importing.store_rows(job.org, good[at : at + importing.CHUNK], dry_run=job.dry_run, result=batch)
            stored_errors = errors + [e.as_dict() for e in batch.errors]
            progress = bad + min(at + importing.CHUNK, len(good))
            # The checkpoint commits with the batch: both or neither survive a crash. It locks the
            # job's row, so a cancel either lands before it (no row changes: roll back, stop) or
            # after the commit (the next batch stops).
            kept = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.RUNNING).update(
                progress=progress,
                total=total,
                created=job.created + batch.created,
                updated=job.updated + batch.updated,
                unchanged=job.unchanged + batch.unchanged,
                errors=stored_errors,
            )
            if not kept:
                raise _Cancelled
    except _Cancelled:
        return None
    job.created += batch.created
    job.updated += batch.updated
    job.unchanged += batch.unchanged
    job.progress = progress
    return stored_errors


# --- the sweep --------------------------------------------------------------------------------------


def _tasks_for(job_id: int, statuses: tuple[str, ...]):
    from django_tasks_db.models import DBTaskResult

    return [
        t
        for t in DBTaskResult.objects.filter(task_path=TASK_PATH, status__in=statuses).only("id", "args_kwargs")
        if list((t.args_kwargs or {}).get("args") or [])[:1] == [job_id]
    ]


def sweep(now: dt.datetime | None = None) -> list[tuple[int, str]]:
    """Put back in the queue every import whose worker is gone. Returns [(job id, what was done)]."""
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from .tasks import run_import_job

    now = now or timezone.now()
    done: list[tuple[int, str]] = []
    for job_id in ImportJob.objects.filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).values_list(
        "pk", flat=True
    ):
        requeue: list = []
        with lease(job_id) as free:
            if not free:
                continue  # a live worker runs it
            job = ImportJob.objects.filter(pk=job_id).first()
            if job is None or job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
                continue
            if not job.stored_path:
                # Started in a request whose process died; nothing to resume from.
                if now - job.created_at > SYNC_GRACE:
                    ImportJob.objects.filter(pk=job_id, status=job.status).update(
                        status=ImportStatus.FAILED,
                        failure="导入被中断，已导入的数据保留，可重新上传继续",
                        finished_at=now,
                    )
                    done.append((job_id, "failed: interrupted in its request"))
                continue
            if _tasks_for(job_id, (TaskResultStatus.READY,)):
                continue  # waiting for a worker
            if job.status == ImportStatus.QUEUED and now - job.created_at < QUEUED_GRACE:
                continue  # its enqueue, or the claim of its task, may be under way
            if not Path(job.stored_path).exists():
                ImportJob.objects.filter(pk=job_id, status=job.status).update(
                    status=ImportStatus.FAILED,
                    failure="导入被中断且上传的文件已不在，已导入的数据保留，可重新上传继续",
                    finished_at=now,
                )
                done.append((job_id, "failed: its file is gone"))
                continue
            requeue = _tasks_for(job_id, (TaskResultStatus.RUNNING,))
        # Out of the lease before the task can be picked up, or its runner would find it held.
        if requeue:
            DBTaskResult.objects.filter(pk__in=[t.pk for t in requeue], status=TaskResultStatus.RUNNING).update(
                status=TaskResultStatus.READY, started_at=None
            )
            what = "task back in the queue"
        else:
            run_import_job.enqueue(job_id)
            what = "task enqueued again"
        log.warning("import job %s had lost its worker: %s", job_id, what)
        done.append((job_id, what))
    return done
