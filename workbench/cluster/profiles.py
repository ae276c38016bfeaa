"""Cluster profiles over dask-jobqueue: Dask workers run as batch jobs of SLURM, PBS, SGE, LSF or
HTCondor, while the scheduler and the client run where the profile is used (a login node).

A setting is taken from the first place that has it:

1. an explicit override (``get_client("slurm", cores=8)``, the CLI's ``--cores 8``);
2. the named profile, ``workbench.cluster.profiles.<name>`` in the Dask config;
3. the workbench's HPC defaults, ``workbench.cluster.hpc``;
4. the ``jobqueue.<kind>`` Dask config (the user's ``jobqueue.yaml``), then dask-jobqueue's
   own defaults (dask-jobqueue reads these itself for every key left unset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.config
from distributed import Client

from workbench import config
from workbench.cluster.lifetime import clock, duration, worker_lifetime
from workbench.cluster.script_safety import SCRIPT_KEYS, check_setting
from workbench.cluster.tls import is_loopback, on_loopback, profile_security
from workbench.errors import ClusterError, ProfileError

try:  # at import: dask-jobqueue registers its `jobqueue` defaults in dask.config
    import dask_jobqueue
except ImportError:  # the `hpc` extra is not installed; profiles say so when used
    dask_jobqueue = None

# dask-jobqueue's cluster class for each kind of batch system.
CLUSTER_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
}
# Keys the workbench adds on top of dask-jobqueue's own (see workbench.yaml).
WORKBENCH_KEYS = frozenset(
    {
        "kind",
        "jobs",
        "minimum-jobs",
        "maximum-jobs",
        "lifetime",
        "lifetime-stagger",
        "scheduler-host",
        "scheduler-interface",
        "dashboard-address",
        "security",
        "wait-timeout",
    }
)
# Renamed in dask-jobqueue 0.8; refused here so a profile never carries both spellings.
_DEPRECATED = {
    "extra": "worker-extra-args",
    "env-extra": "job-script-prologue",
    "job-extra": "job-extra-directives",
    "header-skip": "job-directives-skip",
}


@dataclass(frozen=True)
class HpcProfile:
    """A resolved profile: the dask-jobqueue class and keyword arguments, and how to scale."""

    name: str
    kind: str
    cluster_kwargs: dict[str, Any] = field(repr=False)
    jobs: int = 1
    minimum_jobs: int | None = None
    maximum_jobs: int | None = None
    wait_timeout: float | None = None
    walltime: str | None = None
    lifetime: float | None = None
    lifetime_stagger: float | None = None

    @property
    def adaptive(self) -> bool:
        return self.maximum_jobs is not None

    def setting(self, key: str) -> Any:
        """A job setting (``cores``, ``queue``, ...), from the profile or else the ``jobqueue``
        config, the way dask-jobqueue itself falls back."""
        value = self.cluster_kwargs.get(key.replace("-", "_"))
        return value if value is not None else _jobqueue(self.kind).get(key)

    @property
    def cluster_class(self) -> str:
        return CLUSTER_CLASSES[self.kind]

    def describe(self) -> dict[str, Any]:
        """The settings a person checks before submitting, as plain values."""
        scaling = (
            f"adaptive, {self.minimum_jobs or 0} to {self.maximum_jobs} jobs"
            if self.adaptive
            else f"{self.jobs} job(s)"
        )
        kwargs = self.cluster_kwargs
        return {
            "profile": self.name,
            "kind": self.kind,
            "class": f"dask_jobqueue.{self.cluster_class}",
            "scaling": scaling,
            "cores": self.setting("cores"),
            "memory": self.setting("memory"),
            "walltime": self.walltime,
            "lifetime": clock(self.lifetime),
            "lifetime-stagger": clock(self.lifetime_stagger),
            "scheduler": {k: v for k, v in kwargs["scheduler_options"].items() if k != "security"},
            "tls": "security" in kwargs,
        }


def hpc_profile_names() -> list[str]:
    """Names of the HPC profiles in the config (``slurm``, ``pbs``, ... and any a user added)."""
    return sorted(config.get("cluster.profiles") or {})


def resolve_profile(
    name: str, *, default_log_directory: str | None = None, **overrides: Any
) -> HpcProfile:
    """Merge overrides, the named profile, the HPC defaults and the ``jobqueue`` config.

    Overrides use Python names (``maximum_jobs=4``) or config names (``"maximum-jobs"``);
    ``None`` values are ignored. ``default_log_directory`` applies when no setting names one.

    Examples
    --------
    >>> p = resolve_profile("slurm", cores=8, memory="32GB", jobs=4)
    >>> p.kind, p.jobs, p.cluster_kwargs["cores"]
    ('slurm', 4, 8)
    """
    profiles = config.get("cluster.profiles") or {}
    if name not in profiles:
        raise ProfileError(
            f"no HPC profile {name!r}; known: {', '.join(hpc_profile_names())}. Add one under "
            f"workbench.cluster.profiles.{name} in a Dask config file (kind: slurm, pbs, sge, "
            "lsf or htcondor, plus any jobqueue key)."
        )
    given = {k.replace("_", "-"): v for k, v in overrides.items() if v is not None}
    settings = {**config.get("cluster.hpc"), **(profiles[name] or {}), **given}
    kind = settings.pop("kind", None) or name
    if kind not in CLUSTER_CLASSES:
        raise ProfileError(
            f"workbench.cluster.profiles.{name}.kind is {kind!r}; use one of "
            f"{', '.join(CLUSTER_CLASSES)}."
        )
    jobqueue = _jobqueue(kind)
    if "account" in settings and "account" not in jobqueue and "project" in jobqueue:
        settings["project"] = settings.pop("account")  # SGE and LSF call it a project
    _check_keys(name, kind, settings, jobqueue)
    _check_script_values(name, kind, settings, jobqueue)
    kwargs = {
        k.replace("-", "_"): v
        for k, v in settings.items()
        if k not in WORKBENCH_KEYS and v is not None
    }
    if default_log_directory and not (kwargs.get("log_directory") or jobqueue.get("log-directory")):
        kwargs["log_directory"] = str(default_log_directory)
    scheduler_options = _scheduler_options(settings, jobqueue)
    kwargs["scheduler_options"] = scheduler_options
    walltime = settings.get("walltime") or jobqueue.get("walltime")
    lifetime, stagger = worker_lifetime(name, settings, walltime, kind)
    kwargs["worker_extra_args"] = _worker_args(
        settings, jobqueue, scheduler_options, lifetime, stagger
    )
    loopback = on_loopback(scheduler_options, settings, jobqueue)
    security = profile_security(name, settings.get("security"), loopback)
    if security is not None:
        kwargs["security"] = security
    if security is True and not (kwargs.get("shared_temp_directory") or _shared_temp(kind)):
        # dask-jobqueue writes the temporary key for the workers here (else into the current
        # directory): beside the worker logs, on storage the compute nodes read.
        logs = kwargs.get("log_directory") or jobqueue.get("log-directory")
        kwargs["shared_temp_directory"] = str(logs or Path.home() / ".cache/workbench/tls")
    return HpcProfile(
        name=name,
        kind=kind,
        cluster_kwargs=kwargs,
        jobs=int(settings.get("jobs") or 0),
        minimum_jobs=_int_or_none(settings.get("minimum-jobs")),
        maximum_jobs=_int_or_none(settings.get("maximum-jobs")),
        wait_timeout=duration(name, "wait-timeout", settings.get("wait-timeout")),
        walltime=None if walltime is None else str(walltime),
        lifetime=lifetime,
        lifetime_stagger=stagger,
    )


def start_cluster(profile: HpcProfile):
    """The dask-jobqueue cluster for ``profile``: a scheduler here, no worker job yet."""
    cls = _cluster_class(profile.kind)
    shared = profile.cluster_kwargs.get("shared_temp_directory")
    if shared and "$" not in shared:  # dask-jobqueue needs it to exist to write the TLS key
        Path(shared).expanduser().mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return cls(**profile.cluster_kwargs)
    except ValueError as exc:
        if "cores and memory" in str(exc):
            raise ProfileError(
                f"profile {profile.name!r} needs cores and memory per job: pass --cores 8 "
                f"--memory 32GB, or set cores and memory under workbench.cluster.profiles."
                f"{profile.name} or jobqueue.{profile.kind} in a Dask config file."
            ) from exc
        raise ProfileError(f"profile {profile.name!r}: {exc}") from exc
    except ImportError as exc:
        raise ClusterError(
            f"profile {profile.name!r}: {exc}. `security: temporary` needs the `cryptography` "
            "package; or give certificate files (security: {ca-file, cert, key})."
        ) from exc
    except OSError as exc:
        raise ClusterError(
            f"profile {profile.name!r}: cannot start the Dask scheduler with "
            f"{profile.cluster_kwargs['scheduler_options']}: {exc}. Check scheduler-host or "
            "scheduler-interface (e.g. ib0) in the profile."
        ) from exc


def job_script(name: str, **overrides: Any) -> str:
    """The batch script one worker job of profile ``name`` would be submitted with.

    Examples
    --------
    >>> print(job_script("slurm", cores=4, memory="16GB"))   # doctest: +SKIP
    #!/usr/bin/env bash
    #SBATCH -J dask-worker
    ...
    """
    cluster = start_cluster(resolve_profile(name, **overrides))
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def hpc_client(name: str, **overrides: Any) -> Client:
    """A client of a new dask-jobqueue cluster, scaled to the profile's jobs or adaptive.

    Unless adaptive with no minimum, waits up to ``wait-timeout`` for the first worker, so a
    worker that cannot start or cannot reach the scheduler is an error, not a silent hang.
    """
    profile = resolve_profile(name, **overrides)
    cluster = start_cluster(profile)
    try:
        if profile.adaptive:
            cluster.adapt(minimum_jobs=profile.minimum_jobs or 0, maximum_jobs=profile.maximum_jobs)
        else:
            if profile.jobs < 1:
                raise ProfileError(
                    f"profile {name!r} starts no worker job: set jobs (--jobs 2) or "
                    "maximum-jobs (--max-jobs 10) for adaptive scaling."
                )
            cluster.scale(jobs=profile.jobs)
        client = Client(cluster)
        waits = not profile.adaptive or (profile.minimum_jobs or 0) > 0
        if waits and profile.wait_timeout:
            _wait_for_first_worker(client, cluster, profile)
        return client
    except BaseException:
        cluster.close()
        raise


def _wait_for_first_worker(client: Client, cluster, profile: HpcProfile) -> None:
    try:
        client.wait_for_workers(1, timeout=profile.wait_timeout)
    except TimeoutError as exc:
        jobs = [getattr(job, "job_id", None) for job in cluster.workers.values()]
        client.close()
        raise ClusterError(
            f"no Dask worker of profile {profile.name!r} joined within "
            f"{profile.wait_timeout:.0f} s (batch jobs {', '.join(map(str, jobs))}). If the "
            f"jobs are still queued, raise wait-timeout; if they ran, read their logs "
            f"(log-directory) and check that compute nodes reach the scheduler at "
            f"{cluster.scheduler_address}: set interface (e.g. ib0) or scheduler-host."
        ) from exc


def _cluster_class(kind: str):
    if dask_jobqueue is None:
        raise ClusterError("HPC profiles need dask-jobqueue: pip install 'workbench[hpc]'")
    return getattr(dask_jobqueue, CLUSTER_CLASSES[kind])


def _jobqueue(kind: str) -> dict[str, Any]:
    _cluster_class(kind)  # importing dask_jobqueue registers its defaults in dask.config
    return dict(dask.config.get(f"jobqueue.{kind}", default={}) or {})


def _shared_temp(kind: str) -> str | None:
    return dask.config.get(f"jobqueue.{kind}.shared-temp-directory", default=None)


def _check_keys(name: str, kind: str, settings: dict, jobqueue: dict) -> None:
    for key in settings:
        if key in _DEPRECATED:
            raise ProfileError(
                f"workbench.cluster.profiles.{name}: {key!r} was renamed "
                f"{_DEPRECATED[key]!r} in dask-jobqueue; use the new name."
            )
        if key not in WORKBENCH_KEYS and key not in jobqueue:
            valid = sorted(WORKBENCH_KEYS | (jobqueue.keys() - _DEPRECATED.keys()))
            raise ProfileError(
                f"unknown setting {key!r} for profile {name!r} ({kind}); use one of "
                f"{', '.join(valid)}."
            )


def _check_script_values(name: str, kind: str, settings: dict, jobqueue: dict) -> None:
    """Refuse values that would smuggle shell commands into a job script: those of the profile
    and those dask-jobqueue reads from its own config for the keys the profile leaves unset."""
    for key in sorted(SCRIPT_KEYS):
        if key in settings:
            where = f"profile {name!r} (workbench.cluster.profiles.{name}.{key} or --{key})"
            check_setting(key, settings[key], where)
        elif key in jobqueue:
            check_setting(key, jobqueue[key], f"profile {name!r} (jobqueue.{kind}.{key})")


def _scheduler_options(settings: dict, jobqueue: dict) -> dict[str, Any]:
    """Where the scheduler listens: loopback unless the profile or jobqueue config says otherwise.

    Loopback is the safe default and is right for a single-node cluster; on a real cluster the
    compute nodes must reach the login node, so an ``interface`` (or ``scheduler-host``) is set.
    """
    options = {
        **(jobqueue.get("scheduler-options") or {}),
        **(settings.get("scheduler-options") or {}),
    }
    if settings.get("scheduler-host"):
        options.pop("interface", None)
        options["host"] = settings["scheduler-host"]
    elif settings.get("scheduler-interface"):
        options.pop("host", None)
        options["interface"] = settings["scheduler-interface"]
    elif not {"host", "interface"} & options.keys() and not (
        settings.get("interface") or jobqueue.get("interface")
    ):
        options["host"] = "127.0.0.1"
    options.setdefault("dashboard_address", settings.get("dashboard-address") or "127.0.0.1:0")
    return options


def _worker_args(
    settings: dict,
    jobqueue: dict,
    scheduler_options: dict,
    lifetime: float | None,
    stagger: float | None,
) -> list[str]:
    args = [
        str(a) for a in settings.get("worker-extra-args") or jobqueue.get("worker-extra-args") or []
    ]
    host = str(scheduler_options.get("host") or "")
    if is_loopback(host) and "--host" not in args:
        # A scheduler on loopback means a single machine: keep the workers' ports there too.
        args += ["--host", host, "--dashboard-address", f"{host}:0"]
    if lifetime and "--lifetime" not in args:
        args += ["--lifetime", f"{int(lifetime)}s"]
        if stagger:
            args += ["--lifetime-stagger", f"{int(stagger)}s"]
    return args


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
