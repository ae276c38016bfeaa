"""Faults across the chain, for real: workers killed mid-step, a task that segfaults every
time, every worker gone, a promotion that died between its two commits, a full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import pandas as pd
import pytest
from distributed import Client

import workbench as wb
from workbench.catalog.models import NotNull
from workbench.cubes.build import current_version
from workbench.errors import StepFailed, WorkspaceError
from workbench.io.delta import open_table
from workbench.io.workspace import write_json_atomic
from workbench.testing import orders_cube_catalog, random_orders, write_customers
from workbench.validation.rules import register
from workbench.zones.promote import pending_path
from workbench.zones.quarantine import batch_balance

from .conftest import IN_CI

LINEAGE = ["_file", "_line"]
DASK = str(Path(sys.executable).parent / "dask")


class Segfault(NotNull):
    """A not_null rule whose evaluator kills its own process on a worker."""


@register(Segfault)
def _segfault(df: pd.DataFrame, rule: Segfault, ctx) -> dict[str, pd.Series]:
    if len(df):  # the plan is also evaluated on an empty frame in the client: spare it
        os.kill(os.getpid(), signal.SIGSEGV)
    return {"segfault": pd.Series(False, index=df.index)}


def orders_workspace(folder: Path, rows: int, *, load: str = "replace"):
    data = folder / "data"
    write_customers(data)
    random_orders(7, rows).to_csv(data / "orders.csv", index=False)
    catalog = wb.load_catalog(orders_cube_catalog(folder, data, load=load))
    return catalog, wb.Workspace.for_catalog(catalog), data


def kill_worker_when_busy(client: Client) -> threading.Thread:
    """A thread that SIGKILLs the first worker process seen running a task."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [addr for addr, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                watch.killed = pid
                return
            time.sleep(0.005)

    watch.killed = None
    thread = threading.Thread(target=watch, daemon=True)
    thread.watch = watch
    thread.start()
    return thread


def lake_frame(ws: wb.Workspace, zone: str = "lake") -> pd.DataFrame:
    frame = wb.read_table(ws.path(zone, "orders")).compute().drop(columns="_batch_id")
    return frame.sort_values(LINEAGE).reset_index(drop=True)


def versions(ws: wb.Workspace) -> tuple[int, int]:
    return tuple(open_table(ws.path(z, "orders")).version() for z in ("lake", "quarantine"))


def test_worker_killed_mid_promotion_and_mid_cube_build_gives_the_undisturbed_result(
    client, tmp_path
):
    with dask.config.set({"workbench.partition-rows": 4000}):
        quiet_cat, quiet_ws, _ = orders_workspace(tmp_path / "quiet", 120_000)
        wb.run_pipeline(quiet_cat, quiet_ws, ["promote:orders"])
        catalog, ws, _ = orders_workspace(tmp_path / "killed", 120_000)
        killer = kill_worker_when_busy(client)
        result = wb.run_pipeline(catalog, ws, ["promote:orders"])
        killer.join(60)
    assert killer.watch.killed, "no worker was seen busy"
    assert result.status == "succeeded"
    pd.testing.assert_frame_equal(lake_frame(ws), lake_frame(quiet_ws))
    assert result.steps[-1].details["reconciled"]
    before = wb.build_cube(catalog, ws, "sales")
    expected = wb.open_cube(catalog, ws, "sales").query(["customer"], measures=["orders", "amount"])
    killer = kill_worker_when_busy(client)
    rebuilt = wb.run_pipeline(catalog, ws, ["cube:sales"], upstream=False)
    killer.join(60)
    assert killer.watch.killed and rebuilt.status == "succeeded"
    assert current_version(ws, "sales")[0] == before.version + 1
    got = wb.open_cube(catalog, ws, "sales").query(["customer"], measures=["orders", "amount"])
    pd.testing.assert_frame_equal(got, expected)


def test_a_task_that_segfaults_every_time_fails_the_step_naming_killed_worker(client, tmp_path):
    catalog, ws, _ = orders_workspace(tmp_path, 2000)
    wb.run_pipeline(catalog, ws, ["promote:orders"])
    committed = versions(ws)
    catalog.datasets["orders"].rules.append(Segfault(rule="not_null", columns=["order_id"]))
    t0 = time.monotonic()
    with pytest.raises(StepFailed) as info:
        wb.run_pipeline(catalog, ws, ["promote:orders"], upstream=False)
    assert time.monotonic() - t0 < 120
    message = str(info.value)
    assert "KilledWorker" in message and "promote:orders" in message and "'orders'" in message
    assert versions(ws) == committed  # nothing committed
    assert not pending_path(ws, "orders").exists()


def test_every_worker_gone_fails_the_run_in_bounded_time(tmp_path):
    """A scheduler and one worker without a nanny, as separate processes: once the worker is
    killed nothing restarts it."""
    catalog, ws, _ = orders_workspace(tmp_path, 60_000)
    env = os.environ | {"DASK_DISTRIBUTED__SCHEDULER__NO_WORKERS_TIMEOUT": "5s"}
    info_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(info_file)],
        env=env, start_new_session=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = subprocess.Popen(
        [DASK, "worker", "--no-nanny", "--nthreads", "1", "--no-dashboard",
         "--scheduler-file", str(info_file)],
        env=env, start_new_session=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with Client(scheduler_file=str(info_file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            with dask.config.set({"workbench.partition-rows": 2000}):
                killer = kill_worker_when_busy(client)
                t0 = time.monotonic()
                with pytest.raises(StepFailed) as info:
                    wb.run_pipeline(catalog, ws, ["promote:orders"])
                seconds = time.monotonic() - t0
                killer.join(10)
    finally:
        for proc in (worker, scheduler):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert killer.watch.killed == worker.pid
    assert seconds < 60
    assert "no Dask worker left" in str(info.value) and "step promote:" in str(info.value)
    assert not (ws.path("lake", "orders") / "_delta_log").exists()


def test_a_promotion_that_died_between_its_commits_is_finished_by_the_next_run(client, tmp_path):
    """The state a crash after the lake commit and before the quarantine commit leaves, built
    from real files: batch B in the lake, its quarantine commit gone, the pending record."""
    catalog, ws, data = orders_workspace(tmp_path, 10, load="append")
    bad = "999,C1,-5,2024-01-01T00:00:00Z\n"  # below the minimum amount: quarantined
    batches = []
    for seed in (1, 2):
        frame = random_orders(seed, 40).assign(order_id=lambda f, s=seed: f.order_id + 1000 * s)
        (data / "orders.csv").write_text(
            frame.to_csv(index=False) + bad.replace("999", f"{seed}999")
        )
        run = wb.run_pipeline(catalog, ws, ["orders"])
        batches.append(next(s for s in run.steps if s.step == "promote:orders").details["batch"])
    b = batches[1]
    q_log = ws.path("quarantine", "orders", "_delta_log")
    last = open_table(ws.path("quarantine", "orders")).version()
    (q_log / f"{last:020d}.json").unlink()  # the quarantine commit of B never happened
    write_json_atomic(pending_path(ws, "orders"), {"batch_id": b})
    assert batch_balance(ws, "orders", b) == {"promoted": 40, "quarantined": 0, "total": 40}
    frame = random_orders(3, 40).assign(order_id=lambda f: f.order_id + 3000)
    (data / "orders.csv").write_text(frame.to_csv(index=False))
    run = wb.run_pipeline(catalog, ws, ["orders"])
    promote = next(s for s in run.steps if s.step == "promote:orders")
    assert promote.details["healed"] == b and promote.details["reconciled"]
    assert batch_balance(ws, "orders", b) == {"promoted": 40, "quarantined": 1, "total": 41}
    assert not pending_path(ws, "orders").exists()
    lake = lake_frame(ws)
    assert len(lake) == 120 and lake.order_id.is_unique
    assert len(lake_frame(ws, "quarantine")) == 2


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 32 MiB mounted for the test (root only; a missing capability fails on CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs (root needed): {done.stderr.decode()}")
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave: int) -> None:
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def test_a_full_disk_during_a_commit_keeps_the_previous_version_and_names_the_path(
    client, small_disk
):
    catalog, ws, _ = orders_workspace(small_disk, 3000)
    data = small_disk / "data"
    wb.run_pipeline(catalog, ws)
    version, folder = current_version(ws, "sales")
    expected = wb.open_cube(catalog, ws, "sales").query(["customer"], measures=["orders", "amount"])
    lake_before, committed = lake_frame(ws), versions(ws)
    assert data.exists()
    fill(small_disk, 64 * 1024)  # room for the run record, not for a cube version
    with pytest.raises(WorkspaceError) as info:
        wb.run_pipeline(catalog, ws, ["cube:sales"], upstream=False, force=True)
    message = str(info.value)
    assert "no space left" in message and str(ws.root) in message and "cube:sales" in message
    assert current_version(ws, "sales") == (version, folder)
    got = wb.open_cube(catalog, ws, "sales").query(["customer"], measures=["orders", "amount"])
    pd.testing.assert_frame_equal(got, expected)
    assert not list(ws.path("cubes", "sales").glob(".v*.tmp"))
    with pytest.raises(WorkspaceError) as info:
        wb.run_pipeline(catalog, ws, ["promote:orders"], upstream=False, force=True)
    assert "no space left" in str(info.value) and str(ws.root) in str(info.value)
    assert versions(ws) == committed
    pd.testing.assert_frame_equal(lake_frame(ws), lake_before)
