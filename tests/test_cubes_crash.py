"""A cube build killed while writing leaves the current version readable; the next build works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import workbench as wb
from workbench.cubes.build import current_version

from .conftest import DEMO_CATALOG


@pytest.mark.slow
def test_killed_build_leaves_previous_version(demo, tmp_path):
    import shutil

    catalog, ws, _ = demo
    copy = wb.Workspace(tmp_path / "ws")
    for zone, name in [("curated", "flights_enriched"), ("lake", "airlines")]:
        shutil.copytree(ws.path(zone, name), copy.path(zone, name))
    wb.build_cube(catalog, copy, "flight_delays")
    version, folder = current_version(copy, "flight_delays")
    before = wb.open_cube(catalog, copy, "flight_delays").query(["origin"], measures=["flights"])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from workbench.cli import app; app()",
            "cube",
            "build",
            "flight_delays",
            "--catalog",
            str(DEMO_CATALOG),
            "--workspace",
            str(copy.root),
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = copy.path("cubes", "flight_delays")
    deadline, killed = time.monotonic() + 120, False
    while time.monotonic() < deadline and proc.poll() is None:
        staging = list(root.glob(".v*.tmp/*.zarr"))
        if staging:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert killed, "the build finished before it was seen writing"
    assert current_version(copy, "flight_delays") == (version, folder)
    after = wb.open_cube(catalog, copy, "flight_delays").query(["origin"], measures=["flights"])
    assert after.equals(before)
    rebuilt = wb.build_cube(catalog, copy, "flight_delays")
    assert rebuilt.version == version + 1 and not list(root.glob(".v*.tmp"))
