"""One way to get a Dask client, whatever the cluster: named profiles -> ``distributed.Client``.

``local`` (default) starts a LocalCluster of worker processes bound to 127.0.0.1, one per core
(with TLS if configured to listen elsewhere).
HPC profiles (``slurm``, ``pbs``, ``sge``, ``lsf``, ``htcondor`` and any configured under
``workbench.cluster.profiles``) start a dask-jobqueue cluster whose workers are batch jobs
(:mod:`workbench.cluster.profiles`, with ``lifetime``, ``tls`` and ``script_safety`` beside it).
An address (``tcp://host:8786``) or a scheduler file
(``*.json``) connects to a running scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from distributed import Client, LocalCluster

from workbench import config
from workbench.errors import ClusterError, ProfileError

Profile = Callable[..., Client]
# Objects shared with tasks travel inside each task up to this size (see `share`).
INLINE_BYTES = 1 << 20
_PROFILES: dict[str, Profile] = {}


def register_profile(name: str) -> Callable[[Profile], Profile]:
    def wrap(func: Profile) -> Profile:
        _PROFILES[name] = func
        return func

    return wrap


_LOCAL_KEYS = ("n_workers", "threads_per_worker")


@register_profile("local")
def _local(**overrides: object) -> Client:
    # One key at a time: dask.config.get matches n_workers to n-workers (as set by the
    # DASK_WORKBENCH__CLUSTER__LOCAL__N_WORKERS variable), a plain dict lookup does not.
    def setting(key: str):
        return config.get(f"cluster.local.{key}")

    from workbench.cluster.tls import is_loopback

    n_workers = overrides.get("n_workers") or setting("n-workers") or os.cpu_count() or 1
    host = setting("host")
    # Off loopback, anyone who reaches a port could send pickles: TLS with temporary credentials.
    security = None if host is None or is_loopback(str(host)) else True
    cluster = LocalCluster(
        n_workers=int(n_workers),
        threads_per_worker=int(
            overrides.get("threads_per_worker") or setting("threads-per-worker")
        ),
        processes=True,
        host=host,
        security=security,
        dashboard_address=setting("dashboard-address"),
        memory_limit=setting("memory-limit"),
    )
    return Client(cluster)


def get_client(profile: str | None = None, **overrides: object) -> Client:
    """A client for ``profile`` (argument > ``workbench.cluster.profile`` config > ``local``).

    Examples
    --------
    >>> client = get_client()                       # doctest: +SKIP
    >>> client = get_client("tcp://127.0.0.1:8786")  # doctest: +SKIP
    >>> client = get_client("slurm", cores=8, memory="32GB", jobs=4)  # doctest: +SKIP
    """
    from workbench.cluster.profiles import hpc_client, hpc_profile_names

    profile = config.get("cluster.profile", profile)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    hpc = hpc_profile_names()
    if profile not in hpc and set(overrides) - set(_LOCAL_KEYS):
        options = ", ".join(sorted(set(overrides) - set(_LOCAL_KEYS)))
        raise ProfileError(
            f"{options} apply to HPC profiles ({', '.join(hpc)}), not to {profile!r}; "
            "use e.g. --cluster slurm, or drop them."
        )
    try:
        if profile in hpc:
            return hpc_client(profile, **overrides)
        if profile in _PROFILES:
            return _PROFILES[profile](**overrides)
        if "://" in profile:
            return Client(profile, timeout="10s")
        if profile.endswith(".json") and Path(profile).exists():
            return Client(scheduler_file=profile, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler for profile {profile!r}: {exc}. "
            "Check that the scheduler is running and the address is right."
        ) from exc
    known = ", ".join(sorted(_PROFILES) + hpc)
    raise ProfileError(
        f"unknown cluster profile {profile!r}: use one of {known}, a scheduler "
        "address such as tcp://127.0.0.1:8786, or a scheduler file (*.json)."
    )


def worker_threads() -> int:
    """Tasks the current client's cluster runs at once (1 without a client or workers)."""
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:
        return 1
    return max(sum(client.nthreads().values()), 1)


def share(obj: object):
    """Put ``obj`` in the graph once and return a handle tasks can take as an argument; an
    object of up to ``INLINE_BYTES`` pickled is returned as it is, to travel inside each task.

    Broadcast join tables and reference key sets can be tens of megabytes: embedded in every
    task they would travel with each one. As one graph key they travel once to each worker
    that needs them, and when workers die the key is computed again from the graph; scattered
    data (``client.scatter``) would be lost for good once every worker holding it died, and
    the step would fail with ``FutureCancelledError`` instead of recovering. A small object
    is better inside the tasks: as a key it is one more task, placed on a worker before the
    others are, and every other worker then fetches it from a worker busy with its own block
    (the flights promotion: two blocks on one worker, or 90 ms of waiting for 85 KB).
    """
    import pickle

    import dask
    from dask.sizeof import sizeof

    if sizeof(obj) <= INLINE_BYTES and len(pickle.dumps(obj, protocol=5)) <= INLINE_BYTES:
        return obj
    return dask.delayed(obj, pure=True)


# The profile names are imported on first use: dask-jobqueue is only needed for HPC profiles.
_PROFILE_NAMES = ("HpcProfile", "hpc_client", "hpc_profile_names", "job_script", "resolve_profile")


def __getattr__(name: str):
    if name in _PROFILE_NAMES:
        from workbench.cluster import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module 'workbench.cluster' has no attribute {name!r}")


def close_client(client: Client) -> None:
    """Close the client and, when this process started it, its cluster."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


__all__ = [
    "Profile",
    "close_client",
    "get_client",
    "register_profile",
    "share",
    "worker_threads",
    *_PROFILE_NAMES,
]
