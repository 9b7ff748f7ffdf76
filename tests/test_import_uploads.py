"""Where a large roster upload waits for the worker, and that it is gone when the job ends:
done, failed (a bad file, an exception) or cancelled. Never under MEDIA_ROOT (served at /media/)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from members.models import ImportJob, Member
from tests.helpers import good_rows, roster
from tests.test_import import assert_file_error, url


@pytest.fixture
def org(district):
    return district.union_a1


@pytest.fixture
def admin(api, district):
    return api(district.admin_a1)


@pytest.fixture
def folders(settings, tmp_path):
    settings.ROSTER_SYNC_MAX_ROWS = 10
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    settings.UPLOADS_DIR = tmp_path / "uploads"
    return settings


def files_under(path: Path) -> list[Path]:
    return [p for p in Path(path).rglob("*") if p.is_file()] if Path(path).exists() else []


def test_a_queued_upload_is_private_and_outside_the_media_root(org, admin, folders):
    r = admin.upload(url(org), roster(good_rows(12)))
    assert r.status_code == 202, r.content
    job = ImportJob.objects.get(pk=r.json()["job_id"])
    stored = Path(job.stored_path)
    assert stored.exists()
    assert stored.parent == folders.UPLOADS_DIR / "imports"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(folders.UPLOADS_DIR.stat().st_mode) == 0o700
    assert "roster" not in stored.name and len(stored.stem) == 32  # random, not the cadre's file name
    assert files_under(folders.MEDIA_ROOT) == []


def test_a_successful_job_deletes_its_upload(org, admin, folders, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.upload(url(org), roster(good_rows(12)))
    assert admin.get(r.json()["status_url"]).json()["status"] == "done"
    assert Member.objects.filter(org=org).count() == 12
    assert files_under(folders.UPLOADS_DIR) == []
    assert files_under(folders.MEDIA_ROOT) == []


def test_a_job_whose_file_fails_in_the_worker_leaves_no_file(org, admin, folders, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        r = admin.upload(url(org), roster(good_rows(12)))
    assert r.status_code == 202
    assert len(files_under(folders.UPLOADS_DIR)) == 1
    folders.ROSTER_MAX_BYTES = 100  # the worker's reader now refuses the stored file
    for hook in hooks:
        hook()
    s = admin.get(r.json()["status_url"]).json()
    assert s["status"] == "failed" and s["failure"]
    assert not Member.objects.exists()
    assert files_under(folders.UPLOADS_DIR) == []
    assert files_under(folders.MEDIA_ROOT) == []


def test_a_job_that_crashes_with_an_exception_leaves_no_file(
    org, admin, folders, django_capture_on_commit_callbacks, monkeypatch
):
    import members.importing

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # Whichever runner stores the rows, it stores them through store_rows.
    monkeypatch.setattr(members.importing, "store_rows", broken)
    monkeypatch.setattr(members.importing, "_store_chunk", broken)
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.upload(url(org), roster(good_rows(12)))
    assert r.status_code == 202
    job = ImportJob.objects.get()
    assert job.status == "failed"
    assert files_under(folders.UPLOADS_DIR) == []


def test_a_cancelled_job_deletes_its_upload_and_never_runs(org, admin, folders, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        r = admin.upload(url(org), roster(good_rows(12)))
    job_id = r.json()["job_id"]
    c = admin.post(f"/api/v1/imports/{job_id}/cancel")
    assert c.status_code == 200, c.content
    assert c.json()["status"] == "failed" and c.json()["failure"]
    assert files_under(folders.UPLOADS_DIR) == []
    for hook in hooks:  # the worker picks the task up after the cancel
        hook()
    assert ImportJob.objects.get(pk=job_id).status == "failed"
    assert not Member.objects.exists()
    again = admin.post(f"/api/v1/imports/{job_id}/cancel")
    assert_file_error(again, "import_finished", status=409)


def test_only_an_admin_of_the_org_can_cancel(org, admin, api, district, folders):
    r = admin.upload(url(org), roster(good_rows(12)))
    other = api(district.admin_b)
    assert other.post(f"/api/v1/imports/{r.json()['job_id']}/cancel").status_code == 404
    assert len(files_under(folders.UPLOADS_DIR)) == 1


def test_a_far_cell_roster_is_refused_before_it_is_stored(org, admin, folders):
    from core.tests.test_spreadsheets import HEADER_ROW, raw_xlsx
    from tests.helpers import upload

    content = raw_xlsx(HEADER_ROW + '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')
    err = assert_file_error(admin.upload(url(org), upload(content)), "sheet_too_large")
    assert "200000" in err["message"]
    assert not ImportJob.objects.exists()
    assert files_under(folders.UPLOADS_DIR) == []
