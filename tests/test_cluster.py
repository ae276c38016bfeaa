"""Cluster profiles: a real LocalCluster on loopback, an address, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench as wb


def test_local_profile_binds_loopback():
    client = wb.get_client("local", n_workers=1)
    try:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 1 and all(a.startswith("tcp://127.0.0.1:") for a in workers)
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert "127.0.0.1" in client.dashboard_link
    finally:
        wb.close_client(client)


def test_address_profile_connects_to_running_scheduler(client):
    other = wb.get_client(client.scheduler.address)
    try:
        assert other.scheduler_info()["id"] == client.scheduler_info()["id"]
    finally:
        other.close()


def test_unknown_profile_lists_choices():
    with pytest.raises(wb.ClusterError, match="use one of local"):
        wb.get_client("nonsense")


def test_unreachable_address_is_a_cluster_error():
    with pytest.raises(wb.ClusterError, match="cannot reach"):
        wb.get_client("tcp://127.0.0.1:1")


def test_profiles_live_with_the_cluster_and_jobs_beside_the_pipeline():
    """DESIGN §3: cluster/ (profiles -> Client) imports nothing downstream; jobs/ submits
    pipelines; job scripts written before the move still start their runner."""
    import ast
    import subprocess
    import sys

    import workbench.cluster as cluster
    import workbench.jobs as jobs
    from workbench.hpc import resolve_profile, submit_job

    assert {"get_client", "close_client", "share", "hpc_profile_names", "resolve_profile",
            "job_script", "HpcProfile"} <= set(cluster.__all__)  # fmt: skip
    assert {"submit_job", "job_status", "job_logs", "cancel_job", "list_jobs"} <= set(jobs.__all__)
    assert resolve_profile is cluster.resolve_profile and submit_job is jobs.submit_job
    root = Path(cluster.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(
                    ("workbench.jobs", "workbench.hpc", "workbench.pipeline", "workbench.zones")
                ), f"{path.name} imports {node.module}"
    old = subprocess.run(
        [sys.executable, "-m", "workbench.hpc.runner", "--help"], capture_output=True, text=True
    )
    assert old.returncode == 0 and "--job-dir" in old.stdout
