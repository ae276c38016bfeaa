"""Two writers on one workspace: locks naming their holder, dead holders taken over, cube
versions never mixed up, vacuum never deleting what a running writer needs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.cubes.build import current_version
from workbench.cubes.store import staged_version
from workbench.errors import TargetLocked
from workbench.io.locks import lock_path, running_holders, target_lock
from workbench.testing import orders_cube_catalog, random_orders, write_customers

runner = CliRunner()

HOLD = """
import sys, time
from pathlib import Path
from workbench.io.locks import target_lock
from workbench.io.workspace import Workspace
ws = Workspace(Path(sys.argv[1]))
with target_lock(ws, "cubes", "sales", doing="cube:sales", run_id="r-holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(root: Path, seconds: float) -> subprocess.Popen:
    """A real process holding the lock of cube ``sales``; returns once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from workbench.cli import app; app()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.fixture
def orders_ws(client, tmp_path):
    """The orders catalog with cube ``sales``, run once: lake tables and cube version 1."""
    data = tmp_path / "data"
    write_customers(data)
    random_orders(7, 3000).to_csv(data / "orders.csv", index=False)
    path = orders_cube_catalog(tmp_path, data)
    catalog = wb.load_catalog(path)
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, cluster=client.scheduler.address)
    return path, catalog, ws


def test_lock_names_its_holder_and_a_dead_holders_lock_is_taken_over(tmp_path):
    ws = wb.Workspace(tmp_path)
    holder = hold_lock(tmp_path, 60)
    try:
        with (
            pytest.raises(TargetLocked) as info,
            target_lock(ws, "cubes", "sales", doing="test", wait=0),
        ):
            pass
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "r-holder" in message
        assert "cube:sales" in message and "--wait" in message
        assert [h.pid for h in running_holders(ws)] == [holder.pid]
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)
    # The dead holder's record stays in the file, but the kernel freed its lock.
    assert f'"pid": {holder.pid}' in lock_path(ws, "cubes", "sales").read_text()
    assert running_holders(ws) == []
    t0 = time.monotonic()
    with target_lock(ws, "cubes", "sales", doing="test", wait=0) as me:
        assert me.pid == os.getpid() and running_holders(ws) == [me]
    assert time.monotonic() - t0 < 5
    assert lock_path(ws, "cubes", "sales").read_text() == ""  # released: nothing left


def test_a_waiting_writer_gets_the_lock_when_the_holder_finishes(tmp_path):
    ws = wb.Workspace(tmp_path)
    holder = hold_lock(tmp_path, 2)
    t0 = time.monotonic()
    with target_lock(ws, "cubes", "sales", doing="test", wait=30):
        waited = time.monotonic() - t0
    holder.wait(10)
    assert 0.5 < waited < 20


def test_two_builds_staged_at_once_publish_two_versions(orders_ws):
    """The interleaving that crashed with `Directory not empty: .v000012.tmp`: a second build
    starts while the first is still writing."""
    _, catalog, ws = orders_ws
    first_version, _ = current_version(ws, "sales")
    source = ws.path("cubes", "sales", f"v{first_version:06d}")
    with staged_version(ws, "sales", keep=3) as a:
        shutil.copytree(source, a.staging, dirs_exist_ok=True)
        with staged_version(ws, "sales", keep=3) as b:
            assert b.staging != a.staging
            shutil.copytree(source, b.staging, dirs_exist_ok=True)
    assert {a.version, b.version} == {first_version + 1, first_version + 2}
    version, folder = current_version(ws, "sales")
    assert version == a.version and folder.exists()
    assert b.folder.exists() and not list(ws.path("cubes", "sales").glob(".v*.tmp"))
    assert wb.open_cube(catalog, ws, "sales").query(["customer"], measures=["orders"]).sum().iloc[0]


def test_a_step_on_a_locked_target_stops_naming_the_holder_or_waits(client, orders_ws):
    path, catalog, ws = orders_ws
    common = ["--catalog", str(path), "--cluster", client.scheduler.address]
    holder = hold_lock(ws.root, 300)
    try:
        stopped = cli("cube", "build", "sales", *common)
        waited = cli("cube", "build", "sales", "--wait", "120", *common)
        _, err = stopped.communicate(timeout=120)
        assert stopped.returncode == 3, err
        assert "cubes/sales is being written by cube:sales (run r-holder" in err
        assert f"pid {holder.pid}" in err
        assert waited.poll() is None  # still queued behind the holder
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # the holder dies: its lock is taken over
        holder.wait(30)
    out, err = waited.communicate(timeout=180)
    assert waited.returncode == 0, err
    version, folder = current_version(ws, "sales")
    assert version == 2 and folder.exists()


def test_two_runs_at_once_never_corrupt_the_cube(client, orders_ws):
    path, catalog, ws = orders_ws
    before = wb.open_cube(catalog, ws, "sales").query(["customer"], measures=["orders", "amount"])
    common = ["--catalog", str(path), "--cluster", client.scheduler.address]
    procs = [cli("run", "sales", *common), cli("cube", "build", "sales", *common)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 or (
            proc.returncode == 3 and "is being written by" in err and "pid" in err
        ), err
    version, folder = current_version(ws, "sales")
    assert folder.exists() and version > 1
    after = wb.open_cube(catalog, ws, "sales").query(["customer"], measures=["orders", "amount"])
    assert after.equals(before)
    assert not list(ws.path("cubes", "sales").glob(".v*.tmp"))


def test_vacuum_refuses_ages_below_an_hour_and_keeps_what_a_running_writer_wrote(client, orders_ws):
    path, catalog, ws = orders_ws
    lake = ws.path("lake", "orders")
    stray = lake / "b-uncommitted-part.parquet"  # a promotion's file, not committed yet
    stray.write_bytes(b"PAR1")
    common = ["--catalog", str(path)]
    refused = runner.invoke(app, ["lake", "vacuum", "orders", "--older-than", "30m", *common])
    assert refused.exit_code == 2 and "--force" in refused.output and stray.exists()
    # Forced below an hour: Delta counts whole hours, and 30m rounds up, not down to zero.
    forced = runner.invoke(
        app, ["lake", "vacuum", "orders", "--older-than", "30m", "--force", *common]
    )
    assert forced.exit_code == 0, forced.output
    assert stray.exists()
    holder = hold_lock(ws.root, 60)  # a writer still running
    stray.write_bytes(b"PAR1")  # ... that wrote this file after it started
    try:
        zero = runner.invoke(
            app, ["lake", "vacuum", "orders", "--older-than", "0s", "--force", *common]
        )
        assert zero.exit_code == 0, zero.output
        assert stray.exists()
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)
    gone = runner.invoke(
        app, ["lake", "vacuum", "orders", "--older-than", "0s", "--force", *common]
    )
    assert gone.exit_code == 0, gone.output
    assert not stray.exists()  # with nothing running, the same call does delete it
    assert len(wb.read_table(lake).compute()) == 3000
