"""One way to get a Dask client, whatever the cluster: named profiles -> ``distributed.Client``.

``local`` (default) starts a LocalCluster of worker processes bound to 127.0.0.1, one per core.
An address (``tcp://host:8786``) or a scheduler file (``*.json``) connects to a running scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from distributed import Client, LocalCluster

from workbench import config
from workbench.errors import ClusterError

Profile = Callable[..., Client]
_PROFILES: dict[str, Profile] = {}


def register_profile(name: str) -> Callable[[Profile], Profile]:
    def wrap(func: Profile) -> Profile:
        _PROFILES[name] = func
        return func

    return wrap


@register_profile("local")
def _local(**overrides: object) -> Client:
    settings = config.get("cluster.local")
    n_workers = overrides.get("n_workers") or settings["n-workers"] or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=int(n_workers),
        threads_per_worker=int(
            overrides.get("threads_per_worker") or settings["threads-per-worker"]
        ),
        processes=True,
        host=settings["host"],
        dashboard_address=settings["dashboard-address"],
        memory_limit=settings["memory-limit"],
    )
    return Client(cluster)


def get_client(profile: str | None = None, **overrides: object) -> Client:
    """A client for ``profile`` (argument > ``workbench.cluster.profile`` config > ``local``).

    Examples
    --------
    >>> client = get_client()                       # doctest: +SKIP
    >>> client = get_client("tcp://127.0.0.1:8786")  # doctest: +SKIP
    """
    profile = config.get("cluster.profile", profile)
    try:
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
    known = ", ".join(sorted(_PROFILES))
    raise ClusterError(
        f"unknown cluster profile {profile!r}: use one of {known}, a scheduler "
        "address such as tcp://127.0.0.1:8786, or a scheduler file (*.json)."
    )


def share(obj: object):
    """Put ``obj`` on every worker once and return a handle tasks can take as an argument.

    Broadcast join tables and reference key sets can be tens of megabytes: embedded in a graph
    they would travel with every task that uses them. Without a distributed client (the local
    schedulers), a single graph key does the same job.
    """
    import dask

    try:
        from distributed import get_client

        return get_client().scatter(obj, broadcast=True, hash=False)
    except ValueError:
        return dask.delayed(obj, pure=True)


def close_client(client: Client) -> None:
    """Close the client and, when this process started it, its cluster."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()
