"""Starting roster imports: small files run at once, large ones become a background task with progress.

A large upload waits for the worker in a private folder outside the media root (`UPLOADS_DIR`,
default `VAR_DIR/uploads`: 0700, files 0600, random names), never under `/media/`, and is deleted
when its job ends: done, failed (a bad file, an exception) or cancelled.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core import audit, spreadsheets
from core.errors import DomainError
from orgs import scoping
from orgs.models import Org

from .importing import (
    ImportFileError,
    ImportResult,
    error_report_rows,
    import_rows,
    map_header,
    read_sheet,
)
from .models import ImportJob, ImportStatus

ACTIVE = (ImportStatus.QUEUED, ImportStatus.RUNNING)


def _count_rows(rows: list[list]) -> int:
    return sum(1 for r in rows[1:] if any(c not in (None, "") for c in r))


def start_import(
    actor, org: Org, fileobj: IO[bytes], filename: str, size: int, *, dry_run: bool, ip: str | None = None
) -> ImportJob:
    """Validate the upload and import it (synchronously up to ROSTER_SYNC_MAX_ROWS, else as a task).

    Returns the job; `job.status` is DONE for a synchronous run, QUEUED for a background one.
    `size` is the client's claim; the reader measures the file itself.
    """
    scoping.org_for_cadre(actor, org.pk, admin=True)
    rows = read_sheet(fileobj, filename)
    if not rows:
        raise ImportFileError("empty_file", _("文件中没有内容"), fields={"file": _("文件为空")})
    map_header(rows[0])  # a missing column is refused now, not in the background
    total = _count_rows(rows)
    if total == 0:
        raise ImportFileError("empty_file", _("文件只有表头，没有会员数据"), fields={"file": _("没有数据行")})
    job = ImportJob.objects.create(
        org=org,
        actor=actor,
        filename=filename[:200],
        dry_run=dry_run,
        total=total,
        language=translation.get_language() or "",
    )
    if total <= settings.ROSTER_SYNC_MAX_ROWS:
        result = import_rows(org, rows, dry_run=dry_run)
        _finish(job, result)
        return job
    job.stored_path = str(_keep_upload(fileobj))
    try:
        job.save(update_fields=["stored_path"])
        transaction.on_commit(lambda: _enqueue(job))
        audit.record(actor, "import.start", org=org, target=job, summary=f"{filename} · {total}行", ip=ip)
    except BaseException:
        _discard_upload(job)
        raise
    return job


def uploads_dir() -> Path:
    """The private folder where large uploads wait for the worker (created 0700)."""
    root = Path(getattr(settings, "UPLOADS_DIR", None) or Path(settings.VAR_DIR) / "uploads")
    folder = root / "imports"
    for path in (root, folder):
        path.mkdir(mode=0o700, exist_ok=True, parents=True)
        os.chmod(path, 0o700)  # mkdir's mode passes through the umask, and an older folder may be wider
    return folder


def _keep_upload(fileobj: IO[bytes]) -> Path:
    path = uploads_dir() / f"{secrets.token_hex(16)}.xlsx"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            fileobj.seek(0)
            while chunk := fileobj.read(1 << 20):
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _discard_upload(job: ImportJob) -> None:
    if job.stored_path:
        Path(job.stored_path).unlink(missing_ok=True)


def discard_upload_if_ended(job_id: int) -> None:
    """Delete a background job's upload once the job has ended (done, failed, cancelled); a job
    still queued or running (another worker has it, or it will be resumed) keeps its file."""
    job = ImportJob.objects.filter(pk=job_id).only("status", "stored_path").first()
    if job is not None and job.status not in ACTIVE:
        _discard_upload(job)


def _enqueue(job: ImportJob) -> None:
    from .tasks import run_import_job

    try:
        run_import_job.enqueue(job.pk)
    except BaseException:
        # No worker will ever read the file: fail the job now rather than leave it queued.
        ImportJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(
            status=ImportStatus.FAILED, failure=_("导入任务未能启动，请重新上传"), finished_at=timezone.now()
        )
        _discard_upload(job)
        raise


def _finish(job: ImportJob, result: ImportResult) -> None:
    if job.status not in ACTIVE:
        return  # cancelled meanwhile: the cancel stands
    data = result.as_dict()
    job.created, job.updated, job.unchanged, job.errors = (
        data["created"],
        data["updated"],
        data["unchanged"],
        data["errors"],
    )
    job.status = ImportStatus.DONE
    job.progress = job.total
    job.finished_at = timezone.now()
    job.save()
    verb = "import.dry_run" if job.dry_run else "import.done"
    summary = f"{job.filename}: 新增{job.created} 更新{job.updated} 未变{job.unchanged} 错误{len(job.errors)}"
    audit.record(job.actor, verb, org=job.org, target=job, summary=summary)


def cancel_import(actor, job_id: object, *, ip: str | None = None) -> ImportJob:
    """Stop a queued or running import and delete its upload; rows already stored stay.
    A finished job answers 409 `import_finished`."""
    job = job_for(actor, job_id)
    scoping.org_for_cadre(actor, job.org_id, admin=True)
    cancelled = ImportJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(
        status=ImportStatus.FAILED, failure=_("已取消"), finished_at=timezone.now()
    )
    if not cancelled:
        raise DomainError("import_finished", _("该导入任务已结束，无法取消"))
    _discard_upload(job)
    audit.record(actor, "import.cancel", org=job.org, target=job, summary=job.filename, ip=ip)
    job.refresh_from_db()
    return job


def jobs_for(actor):
    return scoping.scoped(ImportJob.objects.select_related("org"), actor, "org__path")


def job_for(actor, job_id: object) -> ImportJob:
    from core.errors import NotFound

    try:
        return jobs_for(actor).get(pk=int(job_id))
    except (ImportJob.DoesNotExist, TypeError, ValueError):
        raise NotFound(_("未找到该导入任务")) from None


def error_report(job: ImportJob) -> bytes:
    """The job's bad rows as an .xlsx a cadre can fix the roster from."""
    return spreadsheets.xlsx_bytes(error_report_rows(job.errors), title=_("错误明细"), freeze_header=True)


def job_payload(job: ImportJob) -> dict:
    data = {
        "id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "total": job.total,
        "dry_run": job.dry_run,
    }
    if job.status == ImportStatus.DONE:
        data.update(created=job.created, updated=job.updated, unchanged=job.unchanged, errors=job.errors)
    if job.status == ImportStatus.FAILED:
        data["failure"] = job.failure
    return data
