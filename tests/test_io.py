"""Workspace confinement and atomic, versioned Delta tables."""

from __future__ import annotations

import datetime as dt

import dask.dataframe as dd
import pandas as pd
import pytest

import workbench as wb
from workbench.io.delta import open_table, read_table, table_rows, write_table


def test_paths_stay_inside_the_workspace(tmp_path):
    ws = wb.Workspace(tmp_path)
    assert ws.path("lake", "flights") == tmp_path / "lake" / "flights"
    for bad in (("..", "etc"), ("/etc/passwd",), ("lake", "../../x")):
        with pytest.raises(wb.WorkspaceError, match="leaves the workspace"):
            ws.path(*bad)


def _boom(df):
    raise RuntimeError("worker failed mid-write")


def test_versions_time_travel_and_failed_write_leaves_last_version(client, tmp_path):
    path = tmp_path / "t"
    frame = dd.from_pandas(pd.DataFrame({"a": range(100), "b": ["x"] * 100}), npartitions=4)
    assert write_table(frame, path) == 0
    assert write_table(frame[frame.a < 10], path) == 1
    assert table_rows(path) == 10 and table_rows(path, 0) == 100
    assert len(read_table(path, version=0)) == 100
    broken = frame.map_partitions(
        lambda df: _boom(df) if df.a.min() >= 50 else df, meta=frame._meta
    )
    with pytest.raises(RuntimeError, match="mid-write"):
        write_table(broken, path)
    assert open_table(path).version() == 1
    assert read_table(path).compute().a.tolist() == list(range(10))


def test_reading_a_missing_table_says_what_to_run(tmp_path):
    with pytest.raises(wb.WorkspaceError, match="workbench run"):
        read_table(tmp_path / "nope")


def test_vacuum_removes_old_versions_and_crash_leftovers(client, tmp_path):
    from workbench.io.delta import vacuum

    path = tmp_path / "t"
    frame = dd.from_pandas(pd.DataFrame({"a": range(100)}), npartitions=2)
    write_table(frame, path)
    write_table(frame[frame.a < 10], path)
    (path / "part-never-committed.parquet").write_bytes(b"left by a crash")
    before = set(path.glob("*.parquet"))
    removed = vacuum(path, older_than=dt.timedelta(0), force=True)  # below 1 h needs force
    after = set(path.glob("*.parquet"))
    assert len(after) == len(open_table(path).file_uris()) < len(before)
    assert any("never-committed" in f for f in removed)
    assert read_table(path).compute().a.tolist() == list(range(10))


def test_direct_lookup_join_equals_a_hash_merge():
    from workbench.catalog.models import Join
    from workbench.zones.joins import DirectLookup

    right = pd.DataFrame(
        {"__key0": [1, 3, 4, 7], "name": ["a", "c", "d", "g"], "size": [10, 30, 40, 70]}
    )
    left = pd.DataFrame({"k": pd.array([3, 2, None, 7, 1, 9], dtype="Int64"), "x": range(6)})
    for how in ("left", "inner"):
        join = Join(dataset="r", left_on=["k"], right_on=["id"], how=how)
        lookup = DirectLookup.build(right, ["__key0"])
        assert lookup is not None
        got = lookup.join(left, join).reset_index(drop=True)
        want = left.merge(right, how=how, left_on="k", right_on="__key0").drop(columns="__key0")
        assert got["x"].tolist() == want["x"].tolist()
        assert got["name"].fillna("?").tolist() == want["name"].fillna("?").tolist()
        assert got["size"].astype("Float64").tolist() == want["size"].astype("Float64").tolist()
    sparse = pd.DataFrame({"__key0": [1, 10_000_000], "name": ["a", "b"]})
    assert DirectLookup.build(sparse, ["__key0"]) is None  # too sparse: hash merge instead
