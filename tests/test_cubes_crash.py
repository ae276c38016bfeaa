"""A cube build killed while writing leaves the current version readable; the next build works."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.cubes.build import current_version

from .conftest import DEMO_CATALOG, cli_process, kill_when


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
    proc = cli_process(
        "cube",
        "build",
        "flight_delays",
        "--catalog",
        str(DEMO_CATALOG),
        "--workspace",
        str(copy.root),
    )
    root = copy.path("cubes", "flight_delays")
    killed = kill_when(proc, lambda: list(root.glob(".v*.tmp/*.zarr")))
    assert killed, "the build finished before it was seen writing"
    assert current_version(copy, "flight_delays") == (version, folder)
    after = wb.open_cube(catalog, copy, "flight_delays").query(["origin"], measures=["flights"])
    assert after.equals(before)
    rebuilt = wb.build_cube(catalog, copy, "flight_delays")
    assert rebuilt.version == version + 1 and not list(root.glob(".v*.tmp"))
