from django.tasks import task

from . import jobs


@task()
def run_import_job(job_id: int) -> None:
    jobs.run_job(job_id)
