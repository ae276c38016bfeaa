"""Batch scoring throughput: the production flight model over millions of feature rows.

The demo's feature table (320k rows) repeated ``--copies`` times (default 20: 6.4M rows), held
in worker memory (the same number of partitions on each worker), then scored on the local
cluster (two workers of one thread) with LightGBM's ``predict`` and with the model compiled to
native code; the compiled model also scores the same rows read from Parquet files by its tasks.
Peers in this process: one LightGBM ``predict`` call with two threads and one compiled call with
two threads. Writing the predictions is left out. Run ``make demo`` first.

    python benchmarks/score.py [--copies 20] [--workspace ./workspace]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import wait
from rich.console import Console
from rich.table import Table

import workbench as wb
from workbench.ml import native
from workbench.ml.features import feature_matrix
from workbench.ml.registry import load_predictor, resolve_version
from workbench.ml.score import score_frame

REPO = Path(__file__).resolve().parents[1]
NAME = "departure_delay"


def timed(func):
    t0 = time.perf_counter()
    out = func()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--workspace", default=str(REPO / "workspace"))
    args = parser.parse_args()
    console = Console(width=140)
    catalog = wb.load_catalog(REPO / "data_catalog.yaml")
    ws = wb.Workspace.for_catalog(catalog, args.workspace)
    client = wb.get_client("local")
    predictor = load_predictor(ws, NAME)
    folder = ws.path("models", NAME, str(resolve_version(ws, NAME)))
    forest = native.load(folder)
    n_features = len(predictor.features)
    compile_seconds = None
    if forest is None:
        forest, compile_seconds = timed(
            lambda: native.compile_forest(predictor.model.model_to_string(), n_features)
        )
    compiled = dataclasses.replace(predictor, native=forest)

    base = wb.ml.read_features(ws, "flight_features").compute()
    keys = ["flight_date", "carrier", "flight", "origin", "tailnum"]
    # One 320k-row partition per copy, in worker memory, the same number on each worker: left
    # to the scheduler, 13 of 20 landed on one worker, which then did most of the scoring.
    workers = list(client.scheduler_info()["workers"])
    held = [
        client.scatter(base, workers=[workers[i % len(workers)]], hash=False)
        for i in range(args.copies)
    ]
    wait(held)
    frame = dd.from_delayed(held, meta=base.iloc[:0], verify_meta=False)
    # The same rows as Parquet files, read by the scoring tasks: what `workbench model score`
    # does (it also writes the predictions, left out here).
    files = Path(tempfile.mkdtemp(prefix="score-bench-", dir=ws.root))
    for i in range(args.copies):
        base.to_parquet(files / f"part-{i:03d}.parquet", index=False)
    stored = dd.read_parquet(str(files), split_row_groups=False)
    rows = len(base) * args.copies
    local = pd.concat([base] * min(args.copies, 4), ignore_index=True)  # one process: 1.3M rows

    table = Table(
        "scoring", "rows", "seconds", "rows/s", "vs LightGBM on Dask (second run)", title="Scoring"
    )
    results = {}
    for label, model in (("LightGBM on Dask (2 workers)", predictor), ("native on Dask", compiled)):
        # The first run also ships the model to the workers (and loads the machine code there).
        for run in ("first run", "second run"):
            scored, seconds = timed(
                lambda m=model: score_frame(frame, m, keys)["score"].sum().compute()
            )
            results[f"{label}, {run}"] = (scored, seconds)
    for run in ("first run", "second run"):
        scored, seconds = timed(
            lambda: score_frame(stored, compiled, keys)["score"].sum().compute()
        )
        results[f"native on Dask reading Parquet, {run}"] = (scored, seconds)
    shutil.rmtree(files)
    _, base_seconds = results["LightGBM on Dask (2 workers), second run"]
    for label, (_, seconds) in results.items():
        ratio = f"{base_seconds / seconds:.1f}x" if "native" in label else ""
        table.add_row(label, f"{rows:,}", f"{seconds:.1f}", f"{rows / seconds:,.0f}", ratio)
    matrix = feature_matrix(local, predictor.features, predictor.categories)
    predictor.predict(local.head(1000), threads=2)  # warm: this process loads the machine code
    forest.predict(matrix[:1000], threads=2)
    reference, t_lgb = timed(lambda: predictor.predict(local, threads=2))
    same, t_nat = timed(lambda: forest.predict(matrix, threads=2))
    _, t_prep = timed(lambda: feature_matrix(local, predictor.features, predictor.categories))
    n = len(local)
    table.add_row(
        "one LightGBM predict call, 2 threads", f"{n:,}", f"{t_lgb:.1f}", f"{n / t_lgb:,.0f}"
    )
    table.add_row("one native call, 2 threads", f"{n:,}", f"{t_nat:.1f}", f"{n / t_nat:,.0f}")
    table.add_row("feature matrix, 1 thread", f"{n:,}", f"{t_prep:.1f}", f"{n / t_prep:,.0f}")
    console.print(table)
    sums = [results[k][0] for k in results if k.endswith("second run")]
    console.print(
        f"{predictor.model.num_trees()} trees; largest difference native vs LightGBM "
        f"{np.abs(same - reference).max():.1e}; score sums {sums[0]:.6f} / {sums[1]:.6f}; "
        + (f"compiled in {compile_seconds:.1f} s" if compile_seconds else "compiled forest kept")
    )
    wb.close_client(client)


if __name__ == "__main__":
    main()
