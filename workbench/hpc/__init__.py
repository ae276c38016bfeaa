"""HPC: dask-jobqueue cluster profiles (workers as batch jobs) and batch submission of pipelines.

- :mod:`workbench.hpc.profiles`: named profiles ``slurm``, ``pbs``, ``sge``, ``lsf``,
  ``htcondor`` (and any a user adds) over dask-jobqueue and its ``jobqueue`` dask config.
- :mod:`workbench.hpc.lifetime`: walltimes, and worker lifetimes that end before them.
- :mod:`workbench.hpc.systems`: what differs between batch systems (directives, commands).
- :mod:`workbench.hpc.jobs`: ``submit_job``, ``job_status``, ``job_logs``, ``cancel_job``.
- :mod:`workbench.hpc.runner`: what runs inside the batch job.
- :mod:`workbench.hpc.tls`: TLS whenever a scheduler listens beyond loopback.
- :mod:`workbench.hpc.script_safety`: what a setting may hold before it enters a job script.
"""

from __future__ import annotations

from workbench.hpc.jobs import (
    JobInfo,
    cancel_job,
    job_logs,
    job_status,
    list_jobs,
    submit_job,
)
from workbench.hpc.profiles import (
    HpcProfile,
    hpc_client,
    hpc_profile_names,
    job_script,
    resolve_profile,
)

__all__ = [
    "HpcProfile",
    "JobInfo",
    "cancel_job",
    "hpc_client",
    "hpc_profile_names",
    "job_logs",
    "job_script",
    "job_status",
    "list_jobs",
    "resolve_profile",
    "submit_job",
]
