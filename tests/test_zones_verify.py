"""`lake verify`: a clean lake verifies line by line; every kind of damage is found and named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dask
import dask.dataframe as dd
import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.io.delta import write_table
from workbench.io.gzseek import record_seek_points
from workbench.io.textscan import GRAIN
from workbench.testing import (
    BROKEN_FILES,
    data_rows,
    orders_catalog,
    random_orders,
    write_broken_orders,
    write_customers,
)
from workbench.zones.reference_types import typed
from workbench.zones.verify import verify_lake

from .conftest import DEMO_CATALOG

runner = CliRunner()


@pytest.fixture
def broken(tmp_path, client):
    data = tmp_path / "data"
    write_customers(data)
    write_broken_orders(data)
    catalog = wb.load_catalog(orders_catalog(tmp_path, data))
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, ["orders"])
    return catalog, ws


def _rewrite(ws, zone: str, name: str, frame: pd.DataFrame) -> None:
    """Replace a table's content by ``frame`` as a new committed version (the damage)."""
    write_table(dd.from_pandas(frame, npartitions=1), ws.path(zone, name), mode="overwrite")


def test_clean_lake_verifies_every_landed_line(broken):
    catalog, ws = broken
    result = verify_lake(catalog, ws, "orders")
    assert result.ok, result.differences
    lines = {f.file: f.lines for f in result.files}
    assert lines == {name: data_rows(name) for name in BROKEN_FILES}
    for f in result.files:
        assert f.in_lake + f.quarantined == f.lines and f.problems == 0
    assert result.rows_checked == sum(data_rows(name) for name in BROKEN_FILES)


def test_damage_to_the_lake_is_found_and_named(broken):
    catalog, ws = broken
    lake = wb.read_table(ws.path("lake", "orders")).compute().reset_index(drop=True)
    held = wb.read_table(ws.path("quarantine", "orders")).compute()
    good = lake[lake._file == "orders_good.csv"].set_index("_line")
    assert good.loc[2, "amount"] == 10.5  # line 2 of orders_good.csv says 10.5
    changed = lake.copy()
    changed.loc[(changed._file == "orders_good.csv") & (changed._line == 2), "amount"] = 10.25
    dropped = (changed._file == "orders_quoting.csv") & (changed._line == 4)
    twice = changed[(changed._file == "orders_malformed.csv") & (changed._line == 6)]
    # A quarantined row (orders_types.csv line 5, amount -5) slips into the lake as well.
    slipped = held[(held._file == "orders_types.csv") & (held._line == 5)]
    slipped = slipped.assign(order_id=13, amount=-5.0, customer="C4")[lake.columns]
    slipped["placed_at"] = pd.Timestamp("2024-01-05T10:00:00Z").as_unit("us")
    damaged = pd.concat([changed[~dropped], twice, slipped], ignore_index=True)
    _rewrite(ws, "lake", "orders", damaged.astype(lake.dtypes.to_dict()))

    result = verify_lake(catalog, ws, "orders")
    assert not result.ok
    by_file = {f.file: f for f in result.files}
    assert by_file["orders_good.csv"].values == {"amount": 1}
    assert by_file["orders_quoting.csv"].missing == 1
    assert by_file["orders_malformed.csv"].duplicated == 1
    assert by_file["orders_types.csv"].in_both == 1
    assert by_file["orders_types.csv"].values == {}  # the slipped row equals its line
    untouched = set(by_file) - {
        "orders_good.csv", "orders_quoting.csv", "orders_malformed.csv", "orders_types.csv"
    }  # fmt: skip
    assert all(by_file[f].problems == 0 for f in untouched)
    found = {(d.kind, d.file, d.line, d.column) for d in result.differences}
    assert found == {
        ("values", "orders_good.csv", 2, "amount"),
        ("missing", "orders_quoting.csv", 4, None),
        ("duplicated", "orders_malformed.csv", 6, None),
        ("in_both", "orders_types.csv", 5, None),
    }
    value = next(d for d in result.differences if d.kind == "values")
    assert (value.stored, value.source) == ("10.25", "10.5")


def test_altered_quarantine_text_and_landing_file_are_found(broken):
    catalog, ws = broken
    held = wb.read_table(ws.path("quarantine", "orders")).compute()
    hit = (held._file == "orders_keys.csv") & (held._line == 5)
    assert held.loc[hit, "customer"].tolist() == ["C99"]
    held.loc[hit, "customer"] = "C98"
    _rewrite(ws, "quarantine", "orders", held)
    batch = wb.list_batches(ws, "orders")[0]
    landed = ws.path("landing", "orders", batch.batch_id, "orders_good.csv")
    landed.write_bytes(landed.read_bytes() + b"\n")  # same rows, different bytes

    result = verify_lake(catalog, ws, "orders")
    by_file = {f.file: f for f in result.files}
    assert by_file["orders_keys.csv"].quarantine_text == 1
    assert by_file["orders_good.csv"].landing_altered
    assert by_file["orders_good.csv"].values == {} and not result.ok
    sample = next(d for d in result.differences if d.kind == "quarantine_text")
    assert (sample.line, sample.source) == (5, "20,C99,1.0,2024-01-08T13:00:00Z")


def test_rows_without_a_landed_file(tmp_path, client):
    """Rows of a batch removed from landing are counted, not failed; rows naming a file their
    batch never landed fail."""
    data = tmp_path / "data"
    write_customers(data)
    catalog = wb.load_catalog(orders_catalog(tmp_path, data, load="append"))
    ws = wb.Workspace.for_catalog(catalog)
    random_orders(1, 40).to_csv(data / "orders1.csv", index=False)
    wb.run_pipeline(catalog, ws, ["orders"])
    (data / "orders1.csv").unlink()
    second = random_orders(2, 25)
    second["order_id"] += 1000
    second.to_csv(data / "orders2.csv", index=False)
    wb.run_pipeline(catalog, ws, ["orders"])
    assert verify_lake(catalog, ws, "orders").rows_checked == 65
    first = wb.list_batches(ws, "orders")[0]
    shutil.rmtree(ws.path("landing", "orders", first.batch_id))  # what retention does

    result = verify_lake(catalog, ws, "orders")
    assert result.ok and result.rows_checked == 25
    assert [(u.batch_id, u.in_lake, u.reason) for u in result.unchecked] == [
        (first.batch_id, 40, "landing removed")
    ]
    lake = wb.read_table(ws.path("lake", "orders")).compute()
    lake.loc[lake._line == 3, "_file"] = "forged.csv"
    _rewrite(ws, "lake", "orders", lake)
    forged = verify_lake(catalog, ws, "orders")
    assert not forged.ok
    assert ("forged.csv", "not in the batch's manifest") in {
        (u.file, u.reason) for u in forged.unchecked
    }
    assert {f.missing for f in forged.files} == {1}  # line 3 of orders2.csv is gone


def test_one_bad_line_does_not_change_other_values(tmp_path, client):
    """A file with one undecodable line used to be read line by line, with other rules for
    missing values than the rest of the file; now both read fields as written and the column's
    markers (quoted or not, as pandas and DuckDB do) make them missing."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.csv").write_bytes(
        b'customer_id,name\nC0,"NA"\nC1,""\nC2,NA\nC3,\nC4,"a,b"\nC5,\xff\n'
    )
    (data / "orders.csv").write_bytes(b"order_id,customer,amount,placed_at\n")
    catalog = wb.load_catalog(orders_catalog(tmp_path, data))
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, ["customers"])
    lake = wb.read_table(ws.path("lake", "customers")).compute().set_index("customer_id")
    names = [None if pd.isna(v) else v for v in lake.name.loc[["C0", "C1", "C2", "C3", "C4"]]]
    assert names == [None, None, None, None, "a,b"]
    result = verify_lake(catalog, ws, "customers")
    assert result.ok, result.differences
    assert result.files[0].quarantined == 1


def test_demo_lake_verifies_with_zero_differences(client, tmp_path, raw_tables):
    catalog = wb.load_catalog(DEMO_CATALOG)
    ws = wb.Workspace.for_catalog(catalog, tmp_path)
    lakes = [n for n, d in catalog.datasets.items() if d.zone == "lake"]
    wb.run_pipeline(catalog, ws, lakes, cluster=client.scheduler.address)
    for name in lakes:
        result = verify_lake(catalog, ws, name)
        assert result.ok, (name, result.differences, result.schema)
        assert result.rows_checked == len(raw_tables[name]) == sum(f.lines for f in result.files)
    flights = verify_lake(catalog, ws, "flights")
    assert flights.files[0].in_lake == len(wb.read_dataset(catalog, ws, "flights"))


@pytest.fixture
def blocks(tmp_path, client):
    """2,000 orders in one file landed as many 8 KiB blocks, promoted; the test then reads
    every line start the landing recorded as a block of its own."""
    data = tmp_path / "data"
    write_customers(data)
    random_orders(1, 2000).to_csv(data / "orders.csv", index=False)
    catalog = wb.load_catalog(orders_catalog(tmp_path, data))
    ws = wb.Workspace.for_catalog(catalog)
    with dask.config.set({"workbench.block-bytes": 8192}):
        wb.run_pipeline(catalog, ws, ["orders"])
    with dask.config.set({"workbench.block-bytes": 8192 // GRAIN}):
        yield catalog, ws


def test_each_block_checks_its_own_lines(blocks):
    catalog, ws = blocks
    (landed,) = wb.list_batches(ws, "orders")[0].files
    assert len(landed.blocks) > 5
    clean = verify_lake(catalog, ws, "orders")
    assert clean.ok and clean.rows_checked == 2000 and clean.files[0].blocks == len(landed.blocks)
    edge = landed.blocks[3][1]  # the first line of the fourth block
    lake = wb.read_table(ws.path("lake", "orders")).compute().reset_index(drop=True)
    inner = lake._line == edge + 7
    lake.loc[inner, "customer"] = "C9"
    _rewrite(ws, "lake", "orders", lake[lake._line != edge])

    damaged = verify_lake(catalog, ws, "orders")
    assert not damaged.ok
    found = {(d.kind, d.line, d.column) for d in damaged.differences}
    assert found == {("missing", edge, None), ("values", edge + 7, "customer")}
    assert damaged.files[0].values == {"customer": 1} and damaged.files[0].missing == 1
    past = verify_lake(catalog, ws, "orders", version=0)  # time travel: before the damage
    assert past.ok and past.lake_version == 0 and past.rows_checked == 2000


def test_a_block_start_off_a_line_start_is_found(blocks):
    catalog, ws = blocks
    batch = wb.list_batches(ws, "orders")[0]
    manifest = ws.path("landing", "orders", batch.batch_id, "_manifest.json")
    content = json.loads(manifest.read_text())
    start, line = content["files"][0]["blocks"][2]
    content["files"][0]["blocks"][2] = [start + 1, line]  # one byte into a line
    manifest.write_text(json.dumps(content))
    result = verify_lake(catalog, ws, "orders")
    # The block does not start a line, and the lines read no longer add up to the manifest's.
    assert result.files[0].block_plan == 2 and not result.ok
    assert ("block_plan", line) in {(d.kind, d.line) for d in result.differences}


def test_cli_exit_codes_and_json(broken, client, tmp_path):
    catalog, ws = broken
    where = ["--workspace", str(ws.root), "--cluster", client.scheduler.address]
    args = ["lake", "verify", "orders", "--catalog", str(catalog.path), *where]
    clean = runner.invoke(app, args)
    assert clean.exit_code == 0, clean.output
    assert "verified" in clean.output
    lake = wb.read_table(ws.path("lake", "orders")).compute()
    _rewrite(ws, "lake", "orders", lake.iloc[1:])
    damaged = runner.invoke(app, [*args, "--json"])
    assert damaged.exit_code == 1
    (report,) = json.loads(damaged.stdout)
    assert report["ok"] is False
    assert sum(f["missing"] for f in report["files"]) == 1
    before = runner.invoke(app, [*args, "--version", str(report["lake_version"] - 1)])
    assert before.exit_code == 0, before.output
    rerun = ["run", "orders", "--verify", "--force", "all", "--catalog", str(catalog.path)]
    repaired = runner.invoke(app, [*rerun, *where])
    assert repaired.exit_code == 0, repaired.output
    assert "orders: verified" in repaired.output
    curated = runner.invoke(
        app, ["lake", "verify", "flights_enriched", "-c", str(DEMO_CATALOG), *where]
    )
    assert curated.exit_code == 2 and "curated" in curated.output


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("int", " 12 ", "12"),
        ("int", "12.0", "12"),
        ("int", "1e3", "1000"),
        ("int", "11.5", None),  # DuckDB alone would round it to 12
        ("int", "1_000", None),
        ("int", "0x10", None),
        ("int", "9223372036854775808", None),
        ("float", "-.5", "-0.5"),
        ("float", "inf", None),
        ("bool", "Yes", "true"),
        ("bool", "t", None),
        ("datetime", "2013-01-01T05:00:00-05:00", "2013-01-01 10:00:00+00"),
        ("datetime", "2013-01-01 10:00:00", "2013-01-01 10:00:00+00"),
        ("date", "2024-02-29", "2024-02-29 00:00:00"),
        ("date", "2023-02-29", None),
        ("date", "yesterday", None),
    ],
)
def test_reference_typing(kind, text, expected):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("s", pa.table({"x": pa.array([text], pa.string())}))
    (value,) = con.execute(f"SELECT CAST({typed('x', kind)} AS VARCHAR) FROM s").fetchone()
    assert value == expected


@pytest.fixture(scope="session")
def tpch_sf1(tmp_path_factory):
    """TPC-H SF1 lineitem and orders as one CSV file each (765 MB and 173 MB)."""
    out = tmp_path_factory.mktemp("tpch-sf1")
    tool = Path(sys.executable).parent / "tpchgen-cli"
    command = [str(tool), "csv", "-s", "1", "--tables", "lineitem,orders", "--output-dir"]
    subprocess.run([*command, str(out)], check=True)
    return out


TPCH_CATALOG = """
version: 1
workspace: {ws}
datasets:
  orders:
    zone: lake
    source: {{path: "{data}/orders.csv"}}
    schema: {{o_orderkey: int, o_custkey: int, o_orderstatus: string, o_totalprice: float,
             o_orderdate: date, o_orderpriority: string, o_clerk: string, o_shippriority: int,
             o_comment: string}}
  lineitem:
    zone: lake
    source: {{path: "{data}/lineitem.csv"}}
    schema: {{l_orderkey: int, l_partkey: int, l_suppkey: int, l_linenumber: int,
             l_quantity: float, l_extendedprice: float, l_discount: float, l_tax: float,
             l_returnflag: string, l_linestatus: string, l_shipdate: date, l_commitdate: date,
             l_receiptdate: date, l_shipinstruct: string, l_shipmode: string, l_comment: string}}
    rules:
      - {{rule: references, column: l_orderkey, dataset: orders, key: o_orderkey}}
"""


@pytest.mark.slow
def test_tpch_sf1_lineitem_single_file_verifies(tpch_sf1, tmp_path, client):
    path = tmp_path / "tpch.yaml"
    path.write_text(TPCH_CATALOG.format(ws=tmp_path / "ws", data=tpch_sf1))
    catalog = wb.load_catalog(path)
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, ["orders", "lineitem"], cluster=client.scheduler.address)
    result = verify_lake(catalog, ws, "lineitem")
    assert result.ok, (result.differences, result.schema)
    assert result.rows_checked == 6_001_215
    (check,) = result.files
    assert check.in_lake == 6_001_215 and check.blocks > 20 and check.problems == 0


def test_a_gz_in_blocks_is_verified_from_points_of_its_own(tmp_path, client):
    """A .gz of several blocks: verify records seek points of its own from the landed file
    (not the ones landing kept, which it must not trust), reads each block from them, finds
    every line, catches a value damaged in a late block, and leaves no points behind."""
    import gzip

    data = tmp_path / "data"
    write_customers(data)
    text = random_orders(4, 150_000).to_csv(index=False).encode()
    (data / "orders.csv.gz").write_bytes(gzip.compress(text))
    path = orders_catalog(tmp_path, data)
    path.write_text(path.read_text().replace("orders*.csv", "orders*.csv.gz"))
    catalog = wb.load_catalog(path)
    ws = wb.Workspace.for_catalog(catalog)
    with dask.config.set({"workbench.block-bytes": 1 << 20}):
        wb.run_pipeline(catalog, ws, ["orders"])
        clean = verify_lake(catalog, ws, "orders")
        assert clean.ok and clean.rows_checked == 150_000 and clean.files[0].blocks > 2
        assert list(ws.path(".verify").iterdir()) == []
        (landed,) = wb.list_batches(ws, "orders")[-1].paths(ws)
        # At that spacing the file has points to read from (a point keeps 32 KiB of text).
        points = record_seek_points(landed, (1 << 20) // 4, tmp_path / "points")
        assert Path(points).stat().st_size > 3 * (32 << 10)
        lake = wb.read_table(ws.path("lake", "orders")).compute().reset_index(drop=True)
        lake.loc[lake._line == 140_000, "customer"] = "C9"
        _rewrite(ws, "lake", "orders", lake)
        damaged = verify_lake(catalog, ws, "orders")
    assert {(d.kind, d.line, d.column) for d in damaged.differences} == {
        ("values", 140_000, "customer")
    }
