"""TPC-H at scale factor 0.1: Q1 and a Q5-style question answered from cubes, checked against
DuckDB running the SQL on the same lake tables."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

import workbench as wb
from workbench.io.delta import open_table
from workbench.testing import make_tpch, tpch_catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tpch(client, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tpch")
    data = make_tpch(folder / "data", 0.1)
    catalog = wb.load_catalog(tpch_catalog(folder, data))
    ws = wb.Workspace.for_catalog(catalog)
    wb.run_pipeline(catalog, ws, ["pricing", "revenue"])
    con = duckdb.connect()
    for name in ("lineitem", "orders", "customer", "nation", "region"):
        files = open_table(ws.path("lake", name)).file_uris()
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({files})")
    return catalog, ws, con


def test_q1_pricing_summary(tpch):
    catalog, ws, con = tpch
    cube = wb.open_cube(catalog, ws, "pricing")
    got = cube.query(
        ["l_returnflag", "l_linestatus"],
        where={"day": slice(None, "1998-09-02")},
        measures=[
            "sum_qty",
            "sum_base_price",
            "sum_disc_price",
            "sum_charge",
            "avg_qty",
            "avg_price",
            "avg_disc",
            "lines",
        ],
    )
    got = got[got.lines > 0]
    expected = (
        con.execute("""
        SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
               sum(l_extendedprice) AS sum_base_price,
               sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
               sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
               avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price,
               avg(l_discount) AS avg_disc, count(*) AS lines
        FROM lineitem WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL 90 DAY
        GROUP BY ALL ORDER BY ALL""")
        .df()
        .set_index(["l_returnflag", "l_linestatus"])
    )
    assert got.index.tolist() == expected.index.tolist() and len(got) == 4
    np.testing.assert_array_equal(got.lines, expected.lines)
    for col in expected.columns.drop("lines"):
        np.testing.assert_allclose(got[col], expected[col], rtol=1e-9)


def test_q5_style_revenue_by_nation(tpch):
    catalog, ws, con = tpch
    cube = wb.open_cube(catalog, ws, "revenue")
    got = cube.query(
        ["nation"], where={"r_name": "ASIA", "year": "1994-01-01"}, measures=["revenue"]
    ).sort_values("revenue", ascending=False)
    expected = (
        con.execute("""
        SELECT n_name AS nation, sum(l_extendedprice * (1 - l_discount)) AS revenue
        FROM lineitem JOIN orders ON l_orderkey = o_orderkey
        JOIN customer ON o_custkey = c_custkey JOIN nation ON c_nationkey = n_nationkey
        JOIN region ON n_regionkey = r_regionkey
        WHERE r_name = 'ASIA' AND o_orderdate >= DATE '1994-01-01'
          AND o_orderdate < DATE '1995-01-01'
        GROUP BY n_name ORDER BY revenue DESC""")
        .df()
        .set_index("nation")
    )
    assert got.index.tolist() == expected.index.tolist() and len(got) == 5
    np.testing.assert_allclose(got.revenue, expected.revenue, rtol=1e-9)
    by_year = cube.query(["year", "r_name"], measures=["revenue"])
    total = con.execute("SELECT sum(l_extendedprice * (1 - l_discount)) FROM lineitem").fetchall()[
        0
    ][0]
    assert by_year.revenue.sum() == pytest.approx(total, rel=1e-9)
