"""Starting roster imports: small files run at once, large ones become a background task with progress."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from openpyxl import Workbook

from core import audit
from orgs import scoping
from orgs.models import Org

from .importing import (
    ImportFileError,
    ImportResult,
    error_report_rows,
    import_rows,
    read_sheet,
)
from .models import ImportJob, ImportStatus


def _count_rows(rows: list[list]) -> int:
    return sum(1 for r in rows[1:] if any(c not in (None, "") for c in r))


def start_import(
    actor, org: Org, fileobj: IO[bytes], filename: str, size: int, *, dry_run: bool, ip: str | None = None
) -> ImportJob:
    """Validate the upload and import it (synchronously up to ROSTER_SYNC_MAX_ROWS, else as a task).

    Returns the job; `job.status` is DONE for a synchronous run, QUEUED for a background one.
    """
    scoping.org_for_cadre(actor, org.pk, admin=True)
    if size > settings.ROSTER_MAX_BYTES:
        mb = settings.ROSTER_MAX_BYTES // (1024 * 1024)
        raise ImportFileError(
            "file_too_large",
            _("文件超过%(mb)sMB上限，请拆分后分批导入") % {"mb": mb},
            fields={"file": _("不能超过%(mb)sMB") % {"mb": mb}},
        )
    rows = read_sheet(fileobj, filename)
    if not rows:
        raise ImportFileError("empty_file", _("文件中没有内容"), fields={"file": _("文件为空")})
    from .importing import map_header

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
    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.xlsx"
    fileobj.seek(0)
    with open(path, "wb") as out:
        while chunk := fileobj.read(1 << 20):
            out.write(chunk)
    job.stored_path = str(path)
    job.save(update_fields=["stored_path"])
    from .tasks import run_import_job

    transaction.on_commit(lambda: run_import_job.enqueue(job.pk))
    audit.record(actor, "import.start", org=org, target=job, summary=f"{filename} · {total}行", ip=ip)
    return job


def _finish(job: ImportJob, result: ImportResult) -> None:
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


def run_job(job_id: int) -> None:
    job = ImportJob.objects.select_related("org", "actor").get(pk=job_id)
    with translation.override(job.language or settings.LANGUAGE_CODE):
        _run(job)


def _run(job: ImportJob) -> None:
    if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        return
    job.status = ImportStatus.RUNNING
    job.save(update_fields=["status"])

    def progress(done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job.pk).update(progress=done, total=total)

    try:
        with open(job.stored_path, "rb") as f:
            rows = read_sheet(f)
        result = import_rows(job.org, rows, dry_run=job.dry_run, progress=progress)
    except ImportFileError as e:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED, failure=e.message, finished_at=timezone.now()
        )
        return
    except Exception:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED,
            failure="导入过程中出现内部错误，已导入的数据保留，可重新上传继续",
            finished_at=timezone.now(),
        )
        raise
    job.refresh_from_db()
    _finish(job, result)
    Path(job.stored_path).unlink(missing_ok=True)


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
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("错误明细"))
    for row in error_report_rows(job.errors):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


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
