"""A background roster import that dies half-way resumes at its first uncommitted batch, with exact
counts (members/resume.py); the sweep leaves a job alone while its lease is held. In process, with
5-row batches; tests/test_crash_safety.py does it with kill -9 on a real worker."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.utils import timezone

from members import importing, jobs, resume
from members.models import ImportJob, ImportStatus, Member
from tests.helpers import HEADER, good_rows, person_row, xlsx_bytes


@pytest.fixture
def batches_of_five(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(importing, "CHUNK", 5)
    settings.ROSTER_SYNC_MAX_ROWS = 10
    settings.MEDIA_ROOT = tmp_path
    settings.UPLOADS_DIR = tmp_path / "uploads"


def _queued_job(district, rows) -> ImportJob:
    """A job as start_import leaves it for the worker (its task not run: no on-commit hooks here)."""
    content = xlsx_bytes([HEADER, *rows])
    return jobs.start_import(
        district.admin_a1, district.union_a1, io.BytesIO(content), "roster.xlsx", len(content), dry_run=False
    )


def test_a_job_killed_after_two_batches_resumes_at_the_third_with_exact_counts(district, batches_of_five, monkeypatch):
    rows = good_rows(23)
    rows[7] = person_row("坏", id_number="11010519491231002X"[:17] + "0")  # a bad check digit
    job = _queued_job(district, rows)
    assert job.status == ImportStatus.QUEUED

    real = importing.store_rows
    calls = {"n": 0}

    def dies_in_the_third_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("kill -9")  # not an Exception: nothing marks the job failed, as with a kill
        return real(*args, **kwargs)

    monkeypatch.setattr(importing, "store_rows", dies_in_the_third_batch)
    with pytest.raises(SystemExit):
        resume.run(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING
    assert (job.progress, job.created) == (1 + 10, 10)  # the bad row and two committed batches
    assert Member.objects.filter(org=district.union_a1).count() == 10

    monkeypatch.setattr(importing, "store_rows", real)
    assert resume.sweep() == [(job.pk, "task enqueued again")]  # the immediate backend runs it at once
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.created, job.updated, job.unchanged, job.progress) == (22, 0, 0, 23)
    assert [(e["row"], e["code"]) for e in job.errors] == [(9, "invalid_checksum")]
    assert Member.objects.filter(org=district.union_a1).count() == 22


def test_a_job_whose_lease_is_held_is_left_alone(district, batches_of_five):
    job = _queued_job(district, good_rows(12))
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.RUNNING, created_at=timezone.now() - dt.timedelta(hours=1)
    )
    with resume.lease(job.pk) as held:
        assert held
        assert resume.sweep() == []
        with resume.lease(job.pk) as second:
            assert not second
    assert resume.sweep() == [(job.pk, "task enqueued again")]
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created == 12


def test_a_queued_job_is_given_time_for_its_enqueue(district, batches_of_five):
    job = _queued_job(district, good_rows(12))
    assert resume.sweep() == []  # just created: its on-commit enqueue may be under way
    assert resume.sweep(now=timezone.now() + dt.timedelta(minutes=5)) == [(job.pk, "task enqueued again")]
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.created == 12


def test_a_request_time_import_whose_process_died_is_marked_failed(district):
    job = ImportJob.objects.create(org=district.union_a1, actor=district.admin_a1, filename="r.xlsx", total=3)
    assert resume.sweep() == []
    later = timezone.now() + resume.SYNC_GRACE + dt.timedelta(minutes=1)
    assert resume.sweep(now=later) == [(job.pk, "failed: interrupted in its request")]
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "重新上传" in job.failure


def test_a_job_cancelled_after_its_first_batch_stores_no_later_batch(district, batches_of_five, monkeypatch):
    job = _queued_job(district, good_rows(17))
    stored_path = Path(job.stored_path)
    assert stored_path.exists()

    real = resume._store_batch
    calls = {"n": 0}

    def cancelled_after_the_first(*args, **kwargs):
        calls["n"] += 1
        answer = real(*args, **kwargs)
        if calls["n"] == 1:  # the cadre cancels while the worker is between batches
            jobs.cancel_import(district.admin_a1, job.pk)
        return answer

    monkeypatch.setattr(resume, "_store_batch", cancelled_after_the_first)
    resume.run(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.failure == "已取消"
    assert Member.objects.filter(org=district.union_a1).count() == 5  # the first batch only
    assert calls["n"] == 2  # the second batch was rolled back, the third never started
    assert (job.progress, job.created) == (5, 5)
    assert not stored_path.exists()
