"""The cube dashboard: its view checked without a browser, then served and fetched over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

import workbench as wb

from .conftest import DEMO_CATALOG, REPO


@pytest.fixture
def store(demo):
    from workbench.views import CubeStore

    _, ws, _ = demo
    return CubeStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))


def test_view_shows_the_cube_query(store, demo):
    from workbench.views import CubeExplorer

    catalog, ws, _ = demo
    view = CubeExplorer(store, measure="mean_dep_delay", dimension="carrier")
    shown = view.data()
    expected = wb.open_cube(catalog, ws, "flight_delays").query(
        ["carrier"], measures=["mean_dep_delay"]
    )
    assert shown["carrier"].tolist() == expected.index.tolist()
    assert shown["mean_dep_delay"].equals(expected["mean_dep_delay"].reset_index(drop=True))
    assert shown.set_index("carrier").loc["UA", "carrier_label"] == "United Air Lines Inc."
    view.dimension = "origin"
    assert view.data()["origin"].tolist() == ["EWR", "JFK", "LGA"]
    assert view.param.measure.objects == wb.open_cube(catalog, ws, "flight_delays").measures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_served_app_answers_on_loopback(demo):
    _, ws, _ = demo
    port = _free_port()
    env = {
        **os.environ,
        "WORKBENCH_WORKSPACE": str(ws.root),
        "WORKBENCH_CATALOG": str(DEMO_CATALOG),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panel",
            "serve",
            str(REPO / "apps" / "cubes.py"),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--allow-websocket-origin",
            f"127.0.0.1:{port}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/cubes", timeout=30)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert page is not None, "panel serve did not start"
        assert page.status_code == 200
        # The document itself travels over the websocket; the browser tests look at it.
        assert "cube explorer" in page.text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert "Traceback" not in out, out
