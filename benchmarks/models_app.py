"""The models app's predictions explorer in a real browser, against the same answers computed by
its store alone, by Dask per interaction, and by DuckDB from the predictions' Parquet files.

Each interaction adds a carrier to (or, after all of them, removes one from) the carrier filter
and waits for the summary line the store computes for that selection. Peers answer the same
selections with what the explorer shows: the summary, per-day and per-carrier means and the
calibration bins.

    python benchmarks/models_app.py        # ./workspace after `make demo`; scores and monitors
                                           # it first if it has no predictions
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dask
import duckdb
from rich.console import Console
from rich.table import Table

import workbench as wb
from workbench.io.delta import open_table
from workbench.ml.score import predictions_path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.dashboards import CHROMIUM_ARGS, start_server, wait_until_idle  # noqa: E402

NAME = "departure_delay"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def selections(carriers: list[str], n: int) -> list[list[str]]:
    """Carrier filters after each interaction: add one at a time, then remove the first."""
    out, chosen = [], []
    for i in range(n):
        if len(chosen) < len(carriers) and (i // len(carriers)) % 2 == 0:
            chosen = [*chosen, carriers[len(chosen)]]
        else:
            chosen = chosen[1:] or [carriers[0]]
        out.append(chosen)
    return out


def summary_line(store, version: int, carriers: list[str]) -> str:
    from workbench.views.predictions import summary

    s = summary(store.rows(NAME, version, members={"carrier": carriers}))
    return (
        f"{s['rows']:,} predictions, mean predicted {s['predicted']:.1%}; {s['known']:,} "
        f"with a known outcome, observed {s['observed']:.1%}, ROC AUC {s['roc_auc']:.3f}."
    )


def browser_round_trips(url: str, store, version: int, steps: list[list[str]], loads: int):
    from playwright.sync_api import sync_playwright

    first, clicks = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(url)
            page.locator(".whatif").get_by_text("probability that").wait_for(timeout=120_000)
            first.append(time.perf_counter() - t0)
            context.close()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_until_idle(page)
        page.get_by_text("Predictions", exact=True).click()
        page.get_by_text("predictions, mean predicted").wait_for(timeout=120_000)
        box = page.locator(".prediction-filters .choices__input--cloned").first
        shown: list[str] = []
        for chosen in steps:
            expected = summary_line(store, version, chosen)
            t0 = time.perf_counter()
            if len(chosen) > len(shown) or chosen[-1] not in shown:
                box.click()
                page.keyboard.type(chosen[-1])
                page.keyboard.press("Enter")
                page.keyboard.press("Escape")
            else:
                page.locator(".prediction-filters .choices__button").first.click()
            page.get_by_text(expected, exact=True).wait_for(timeout=60_000)
            clicks.append(time.perf_counter() - t0)
            shown = chosen
        browser.close()
    return first, clicks


def store_alone(store, version: int, steps: list[list[str]]) -> list[float]:
    """What one interaction computes, in this process, on the cached rows."""
    from workbench.views.predictions import calibration, compare_by, per_period, summary

    times = []
    for chosen in steps:
        t0 = time.perf_counter()
        rows = store.rows(NAME, version, members={"carrier": chosen})
        summary(rows), per_period(rows, "flight_date"), compare_by(rows, "carrier")
        calibration(rows)
        times.append(time.perf_counter() - t0)
    return times


def dask_per_interaction(ws, version: int, steps: list[list[str]]) -> list[float]:
    """The same answers read and aggregated by Dask at each interaction (no cached rows)."""
    from workbench.ml import read_predictions

    columns = ["flight_date", "carrier", "score", "actual"]
    times = []
    for chosen in steps:
        t0 = time.perf_counter()
        frame = read_predictions(ws, NAME, version=version, columns=columns)
        rows = frame[frame.carrier.isin(chosen)]
        day = rows.assign(day=rows.flight_date.dt.floor("D"))
        score_bin = (rows.score * 10).astype("int64").clip(upper=9)
        dask.compute(
            rows.score.mean(),
            rows.actual.mean(),
            rows.score.count(),
            day.groupby("day")[["score", "actual"]].mean(),
            rows.groupby("carrier")[["score", "actual"]].mean(),
            rows.assign(b=score_bin).groupby("b")[["score", "actual"]].mean(),
        )
        times.append(time.perf_counter() - t0)
    return times


def duckdb_per_interaction(ws, version: int, steps: list[list[str]]) -> list[float]:
    files = open_table(predictions_path(ws, NAME), version).file_uris()
    con = duckdb.connect()
    con.execute(f"create view p as select * from read_parquet({files!r})")
    times = []
    for chosen in steps:
        keep = "carrier in (" + ", ".join(f"'{c}'" for c in chosen) + ")"
        t0 = time.perf_counter()
        con.execute(f"select count(*), avg(score), avg(actual) from p where {keep}").fetchall()
        con.execute(
            f"select date_trunc('day', flight_date), avg(score), avg(actual) from p where {keep} "
            "group by 1"
        ).fetchall()
        con.execute(
            f"select carrier, avg(score), avg(actual) from p where {keep} group by 1"
        ).fetchall()
        con.execute(
            f"select least(floor(score * 10), 9), avg(score), avg(actual) from p where {keep} "
            "group by 1"
        ).fetchall()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=30)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--workspace", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("chromium") is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    console = Console(width=120)
    catalog_path = REPO / "data_catalog.yaml"
    catalog = wb.load_catalog(catalog_path)
    ws = wb.Workspace.for_catalog(catalog, args.workspace or os.environ.get("WORKBENCH_WORKSPACE"))
    if not ws.path("models", NAME).exists():
        sys.exit(f"no model {NAME} in {ws.root}: run `make demo` first")
    if not predictions_path(ws, NAME).exists():
        with wb.get_client() as _:
            wb.score_batch(catalog, ws, NAME)
            wb.monitor_model(catalog, ws, NAME, start="2013-12-01", end="2014-01-01")
    from workbench.views import PredictionStore

    store = PredictionStore(catalog_path=str(catalog_path), workspace=str(ws.root))
    version = store.version(NAME)
    t0 = time.perf_counter()
    carriers = store.members(NAME, version, "carrier")  # loads the cached rows
    cold = time.perf_counter() - t0
    steps = selections(carriers, min(args.interactions, 2 * len(carriers) - 1))
    folder = Path(tempfile.mkdtemp(prefix="wb-bench-models-"))
    server = start_server(
        folder, "models", "--catalog", str(catalog_path), "--workspace", str(ws.root)
    )
    try:
        first, clicks = browser_round_trips(
            f"{server.url}/models", store, version, steps, args.loads
        )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    alone = store_alone(store, version, steps)
    rows = [
        ("first load of /models (what-if answered)", first),
        (f"carrier filter -> summary updated ({len(clicks)})", clicks),
        ("store alone: filter + every aggregate", alone),
        ("Dask: read + aggregate per interaction", dask_per_interaction(ws, version, steps)),
        ("DuckDB: the same aggregates from Parquet", duckdb_per_interaction(ws, version, steps)),
    ]
    console.print(
        f"{len(store.frame(NAME, version)):,} predictions; loading the explorer's columns once "
        f"took {cold * 1000:.0f} ms. Machine shared with other work: figures are noisy."
    )
    table = Table("what", "median ms", "p95 ms", "x store alone", title="predictions explorer")
    base = statistics.median(alone)
    for what, values in rows:
        med = statistics.median(values)
        table.add_row(
            what, f"{med * 1000:.0f}", f"{pct(values, 0.95) * 1000:.0f}", f"{med / base:.1f}"
        )
    console.print(table)


if __name__ == "__main__":
    main()
