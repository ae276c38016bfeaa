"""Cluster profiles: a real LocalCluster on loopback, an address, and clear errors."""

from __future__ import annotations

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
