"""Batch jobs: a pipeline run submitted to SLURM, PBS, SGE or LSF, with status, logs and cancel.

- :mod:`workbench.jobs.systems`: what differs between batch systems (directives, commands).
- :mod:`workbench.jobs.submit`: ``submit_job``, ``job_status``, ``job_logs``, ``cancel_job``.
- :mod:`workbench.jobs.runner`: what runs inside the batch job.

The cluster a job's pipeline runs on is a profile of :mod:`workbench.cluster`.
"""

from __future__ import annotations

from workbench.jobs.submit import (
    JobInfo,
    cancel_job,
    job_logs,
    job_status,
    list_jobs,
    submit_job,
)

__all__ = [
    "JobInfo",
    "cancel_job",
    "job_logs",
    "job_status",
    "list_jobs",
    "submit_job",
]
