from django.tasks import task

from . import jobs, resume


@task()
def run_import_job(job_id: int) -> None:
    try:
        # Under a lease, checkpointed batch by batch, resumed by resume.sweep() if its worker dies.
        resume.run(job_id)
    finally:
        # Done, failed (a bad file, an exception) or cancelled: the upload goes. A killed worker
        # never gets here, so a job that will be resumed keeps its file.
        jobs.discard_upload_if_ended(job_id)
