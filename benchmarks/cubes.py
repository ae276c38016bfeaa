"""Cube build and query latency against DuckDB and Polars on TPC-H (ratios printed).

Build: the cube build (year-month x nation x brand x ship mode x return flag over lineitem
joined with orders, customer, nation, region and part: the build tasks do the broadcast joins
themselves), against DuckDB and Polars joining and grouping the same lake Parquet files. The
time to materialise the curated star join, which the cube does not wait for, is shown apart.
Each build runs --repeat times; the first run is shown apart from the median of all runs, for
every engine. Every engine's modules are imported before timing: DuckDB, Polars, and the two the
cube build would otherwise load at its first use (flox, whose numpy_groupies imports numba:
0.45 s; zarr and its codecs: 0.3 s). Without that, a process's first build paid for them.
Queries: slice, roll-up, drill-down and pivot on the built cube (median and p95 over --runs),
against DuckDB answering the same question from the lake tables.
Also the cube's size on disk against the source Parquet.

    python benchmarks/cubes.py [--sf 1] [--parts 8] [--runs 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import flox  # noqa: F401  (see "imported before timing" below)
import numpy as np
import polars as pl
import zarr  # noqa: F401
from rich.console import Console
from rich.table import Table

import workbench as wb
from workbench.cubes import Query
from workbench.io.delta import open_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PeakMemory  # noqa: E402

HERE = Path(__file__).resolve().parent
TABLES = ("lineitem", "orders", "customer", "nation", "region", "part")

JOIN = """FROM lineitem JOIN orders ON l_orderkey = o_orderkey
  JOIN customer ON o_custkey = c_custkey JOIN nation ON c_nationkey = n_nationkey
  JOIN region ON n_regionkey = r_regionkey JOIN part ON l_partkey = p_partkey"""


def duck(ws: wb.Workspace) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in TABLES:
        files = open_table(ws.path("lake", name)).file_uris()
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({files})")
    return con


def duckdb_build(con) -> int:
    return len(
        con.execute(f"""SELECT date_trunc('month', o_orderdate), n_name, p_brand,
        l_shipmode, l_returnflag, count(*), sum(l_extendedprice * (1 - l_discount)),
        sum(l_quantity) {JOIN} GROUP BY ALL""").fetchall()
    )


def polars_build(ws: wb.Workspace) -> int:

    needed = {
        "lineitem": [
            "l_orderkey",
            "l_partkey",
            "l_quantity",
            "l_extendedprice",
            "l_discount",
            "l_returnflag",
            "l_shipmode",
        ],
        "orders": ["o_orderkey", "o_custkey", "o_orderdate"],
        "customer": ["c_custkey", "c_nationkey"],
        "nation": ["n_nationkey", "n_name", "n_regionkey"],
        "region": ["r_regionkey", "r_name"],
        "part": ["p_partkey", "p_brand"],
    }

    def scan(name):
        return pl.scan_parquet(open_table(ws.path("lake", name)).file_uris()).select(needed[name])

    q = (
        scan("lineitem")
        .join(scan("orders"), left_on="l_orderkey", right_on="o_orderkey")
        .join(scan("customer"), left_on="o_custkey", right_on="c_custkey")
        .join(scan("nation"), left_on="c_nationkey", right_on="n_nationkey")
        .join(scan("region"), left_on="n_regionkey", right_on="r_regionkey")
        .join(scan("part"), left_on="l_partkey", right_on="p_partkey")
        .group_by(
            pl.col("o_orderdate").dt.truncate("1mo"),
            "n_name",
            "p_brand",
            "l_shipmode",
            "l_returnflag",
        )
        .agg(
            pl.len(),
            (pl.col("l_extendedprice") * (1 - pl.col("l_discount"))).sum(),
            pl.col("l_quantity").sum(),
        )
    )
    return q.collect().height


QUERIES = {
    "slice: revenue by nation, ship mode AIR": (
        Query(("nation",), (("shipmode", "AIR"),), ("revenue",)),
        f"SELECT n_name, sum(l_extendedprice * (1 - l_discount)) {JOIN} "
        "WHERE l_shipmode = 'AIR' GROUP BY ALL",
    ),
    "roll-up: revenue by year": (
        Query(("year",), (), ("revenue",)),
        f"SELECT year(o_orderdate), sum(l_extendedprice * (1 - l_discount)) {JOIN} GROUP BY ALL",
    ),
    "drill-down: months of 1995 in EUROPE": (
        Query(("month",), (("year", "1995-01-01"), ("r_name", "EUROPE")), ("revenue",)),
        f"SELECT date_trunc('month', o_orderdate), sum(l_extendedprice * (1 - l_discount)) "
        f"{JOIN} WHERE year(o_orderdate) = 1995 AND r_name = 'EUROPE' GROUP BY ALL",
    ),
    "pivot: nation x ship mode": (
        Query(("nation", "shipmode"), (), ("revenue",)),
        f"SELECT n_name, l_shipmode, sum(l_extendedprice * (1 - l_discount)) {JOIN} GROUP BY ALL",
    ),
}


def latencies(func, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), float(np.percentile(times, 95))


def timed(run, args) -> list[float]:
    """Seconds of each of ``args.repeat`` runs of ``run``."""
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sf", type=float, default=1)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="builds per engine")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "wb-bench")
    args = parser.parse_args()
    data = args.data / f"tpch-cube-sf{args.sf:g}"
    if not (data / "lineitem").exists():
        subprocess.run(
            [
                Path(sys.executable).parent / "tpchgen-cli",
                "csv",
                "-s",
                str(args.sf),
                "--tables",
                ",".join(TABLES),
                "--parts",
                str(args.parts),
                "--output-dir",
                str(data),
            ],
            check=True,
        )
    os.environ.update(TPCH_DIR=str(data), TPCH_WORKSPACE=str(args.data / f"ws-cube-sf{args.sf:g}"))
    catalog = wb.load_catalog(HERE / "tpch_cube_catalog.yaml")
    ws = wb.Workspace.for_catalog(catalog)
    console = Console(width=150)
    client = wb.get_client("local")
    console.print(
        f"landing and promoting TPC-H SF{args.sf:g} ... dashboard {client.dashboard_link}"
    )
    wb.run_pipeline(catalog, ws, [f"promote:{t}" for t in TABLES])

    with PeakMemory() as mem:
        t0 = time.perf_counter()
        wb.build_curated(catalog, ws, "sales")
        t_curate = time.perf_counter() - t0
        builds = []
        cube_times = timed(lambda: builds.append(wb.build_cube(catalog, ws, "sales_cube")), args)
        build = builds[-1]
    wb.close_client(client)
    con = duck(ws)
    duck_groups, polars_out = [], []
    duck_times = timed(lambda: duck_groups.append(duckdb_build(con)), args)
    polars_times = timed(lambda: polars_out.append(polars_build(ws)), args)
    groups, polars_groups = duck_groups[-1], polars_out[-1]
    cube = wb.open_cube(catalog, ws, "sales_cube")
    stored = int((cube.dataset["lines"] > 0).sum())
    assert stored == groups == polars_groups, (stored, groups, polars_groups)

    table = Table(
        "build",
        "first run s",
        f"median of {args.repeat} s",
        "x DuckDB (median)",
        title=f"TPC-H SF{args.sf:g}: {groups:,} groups, cube base {build.cuboids['base']:,} cells",
    )
    # The cube build joins the lake tables inside its own tasks (the curated table is current),
    # so it answers the same question from the same files as DuckDB and Polars do.
    duck_median = statistics.median(duck_times)
    for name, times in [
        ("workbench: cube build (star join + group-by)", cube_times),
        ("DuckDB: join + group by", duck_times),
        ("Polars: join + group by", polars_times),
        ("workbench: curated table materialised (not in the cube's path)", [t_curate]),
    ]:
        median = statistics.median(times)
        table.add_row(name, f"{times[0]:.2f}", f"{median:.2f}", f"{median / duck_median:.1f}")
    console.print(table)
    runs = {"cube build": cube_times, "DuckDB": duck_times, "Polars": polars_times}
    console.print(
        "every run, s: "
        + "; ".join(f"{k} {', '.join(f'{t:.2f}' for t in v)}" for k, v in runs.items())
    )
    console.print(f"peak memory of client + workers during join + cube: {mem.peak / 2**30:.2f} GiB")

    table = Table(
        "query",
        "cube cuboid",
        "cube median ms",
        "cube p95 ms",
        "DuckDB median ms",
        "DuckDB / cube",
        title=f"query latency over {args.runs} runs",
    )
    for name, (query, sql) in QUERIES.items():
        med, p95 = latencies(lambda q=query: cube.run(q), args.runs)
        dmed, _ = latencies(lambda s=sql: con.execute(s).fetchall(), max(5, args.runs // 10))
        table.add_row(
            name,
            cube.explain(query).chosen,
            f"{med * 1000:.1f}",
            f"{p95 * 1000:.1f}",
            f"{dmed * 1000:.0f}",
            f"{dmed / med:.0f}x",
        )
    console.print(table)
    cube_bytes = folder_size(build.path)
    # Only the files of the current versions: older versions stay on disk until vacuumed.
    source_bytes = sum(
        Path(f).stat().st_size for t in TABLES for f in open_table(ws.path("lake", t)).file_uris()
    )
    console.print(
        f"cube on disk: {cube_bytes / 2**20:.1f} MiB (all cuboids) against "
        f"{source_bytes / 2**20:.0f} MiB of lake Parquet ({cube_bytes / source_bytes:.1%})"
    )


if __name__ == "__main__":
    main()
