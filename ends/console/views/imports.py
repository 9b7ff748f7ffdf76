"""Roster imports: upload (or dry-run) an .xlsx, see counts and row errors, follow big jobs' progress."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import audit, spreadsheets
from core.errors import DomainError
from members import jobs
from members.importing import ImportFileError
from members.models import ImportStatus
from orgs import scoping

from ..common import cadre_required, current_org, error_dict, page, page_query, paginate

TEMPLATE_HEADER = ["姓名", "手机号", "身份证号", "性别", "入会日期", "工作单位"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _imports_page(request, org, *, job=None, errors=None, dry_run=False, status=200):
    user = request.user
    history = paginate(request, jobs.jobs_for(user).select_related("actor"), 20)
    return page(
        request,
        "console/imports.html",
        {
            "nav": "imports",
            "org": org,
            "is_admin": scoping.covers(user, org, admin=True),
            "job": job,
            "errors": errors or {},
            "dry_run": dry_run,
            "history": history,
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def import_page(request):
    return _imports_page(request, current_org(request))


@cadre_required
@require_POST
def import_upload(request):
    user = request.user
    org = current_org(request)
    dry_run = bool(request.POST.get("dry_run"))
    upload = request.FILES.get("file")
    if upload is None:
        return _imports_page(request, org, errors={"file": _("请选择要上传的 .xlsx 文件")}, dry_run=dry_run, status=422)
    try:
        job = jobs.start_import(
            user, org, upload, upload.name, upload.size, dry_run=dry_run, ip=audit.client_ip(request)
        )
    except ImportFileError as e:
        errors = error_dict(e)
        errors.setdefault("file", e.message)
        return _imports_page(request, org, errors=errors, dry_run=dry_run, status=e.status)
    except DomainError as e:
        return _imports_page(request, org, errors=error_dict(e), dry_run=dry_run, status=e.status)
    return _imports_page(request, org, job=job, dry_run=dry_run)


@cadre_required
def import_detail(request, job_id: int):
    job = jobs.job_for(request.user, job_id)
    return _imports_page(request, job.org, job=job)


@cadre_required
def import_progress(request, job_id: int):
    """htmx partial: the progress bar; once the job is finished it renders without the polling trigger."""
    job = jobs.job_for(request.user, job_id)
    response = page(
        request, "console/partials/import_progress.html", {"job": job, "compact": bool(request.GET.get("compact"))}
    )
    if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        response["HX-Trigger"] = "import-finished"
    return response


@cadre_required
def import_errors(request, job_id: int):
    job = jobs.job_for(request.user, job_id)
    response = HttpResponse(jobs.error_report(job), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.xlsx"'
    return response


@cadre_required
def import_template(request):
    data = spreadsheets.xlsx_bytes([TEMPLATE_HEADER], title="会员名册", widths=(12, 16, 22, 8, 14, 30))
    response = HttpResponse(data, content_type=XLSX)
    response["Content-Disposition"] = 'attachment; filename="roster-template.xlsx"'
    return response
