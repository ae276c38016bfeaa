"""Former home of the HPC code, kept so existing imports keep working.

Cluster profiles now live in :mod:`workbench.cluster` (``profiles``, ``lifetime``, ``tls``,
``script_safety``); batch job submission in :mod:`workbench.jobs`. Job scripts written before
the move run ``python -m workbench.hpc.runner``, which :mod:`workbench.hpc.runner` still serves.
"""

from __future__ import annotations

from workbench.cluster.profiles import (
    HpcProfile,
    hpc_client,
    hpc_profile_names,
    job_script,
    resolve_profile,
)
from workbench.jobs import JobInfo, cancel_job, job_logs, job_status, list_jobs, submit_job

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
