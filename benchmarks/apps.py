"""Dashboard latency in a real browser: `workbench serve cubes` driven by Playwright + chromium.

For each cube: the first load (navigation to the pivot table on screen, five fresh tabs) and the
time from a widget change (measure or row level) to the updated table on screen, median and p95
over N interactions. A change is made and timed inside the page (from the change event to the
frame after the new column shows); the same changes driven from Python through Playwright are
timed too, and include the driver's own round trips. Peers in the same run: the cube query
alone (the API the view calls, in this process) and, on the flight cube, DuckDB answering the
same views from the curated Parquet files (what a dashboard without a cube would wait for).

    python benchmarks/apps.py                          # flight cube of ./workspace (make demo)
    python benchmarks/apps.py --tpch-workspace /tmp/wb-bench/ws-cube-sf10   # + benchmarks/cubes.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

import workbench as wb
from workbench.cubes.query import Query

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.dashboards import (  # noqa: E402
    CHROMIUM_ARGS,
    free_port,
    start_server,
    wait_until_idle,
)

FLIGHT_STEPS = [
    ("Measure", "mean_dep_delay"),
    ("Rows", "dest"),
    ("Measure", "delayed_rate"),
    ("Rows", "month"),
    ("Measure", "flights"),
    ("Rows", "carrier"),
]
TPCH_STEPS = [
    ("Measure", "revenue"),
    ("Rows", "nation"),
    ("Measure", "quantity"),
    ("Rows", "month"),
    ("Measure", "lines"),
    ("Rows", "r_name"),
]
# DuckDB over the curated flights: the same views the flight steps show.
FLIGHT_SQL = {
    ("mean_dep_delay", "dest"): "select dest, avg(dep_delay) from t group by 1",
    ("delayed_rate", "dest"): "select dest, avg(dep_delayed::double) from t group by 1",
    ("delayed_rate", "month"): "select date_trunc('month', flight_date), "
    "avg(dep_delayed::double) from t group by 1",
    ("flights", "month"): "select date_trunc('month', flight_date), count(*) from t group by 1",
    ("flights", "carrier"): "select carrier, count(*) from t group by 1",
    ("mean_dep_delay", "carrier"): "select carrier, avg(dep_delay) from t group by 1",
}


LOGS: list = []


# The floor under any Panel dashboard here: one Select (the apps' own, without Panel's 50 ms
# debounce) and one remote-paginated Tabulator whose column changes with the selection (no cube,
# no chart).
FLOOR_APP = """
import numpy as np, pandas as pd, panel as pn
from workbench.views.shell import Select
pn.extension("tabulator")
pick = Select(label="Measure", options=["flights", "mean_dep_delay", "delayed_rate"])
table = pn.widgets.Tabulator(pd.DataFrame({"carrier": list("abc"), "flights": [1, 2, 3]}),
                             pagination="remote", page_size=20, show_index=False, disabled=True)
pick.param.watch(lambda e: setattr(table, "value", pd.DataFrame(
    {"carrier": [f"c{i}" for i in range(16)], e.new: np.arange(16.0)})), "value")
pn.Column(pick, table).servable()
"""


def panel_floor(browser, n: int) -> list[float]:
    """Widget change to updated table for the bare Panel app above, served by panel serve."""
    folder = Path(tempfile.mkdtemp(prefix="wb-bench-floor-"))
    (folder / "floor.py").write_text(FLOOR_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(folder / "floor.py"), "--port", str(port)]
        + ["--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/floor"
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=5)  # noqa: S310 (loopback)
                break
            except OSError:
                time.sleep(0.5)
        steps = [("Measure", m) for m in ("mean_dep_delay", "delayed_rate", "flights")]
        return interactions(browser, url, "flights", steps, n)[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# Measured in the page: a widget change is made from JavaScript and timed with the page's own
# clock until the frame after the new column is on screen. Driving the same change from Python
# through Playwright added 60-70 ms of its own round trips per interaction here.
CHANGE_AND_WAIT = """([label, value, title]) => new Promise((resolve, reject) => {
  const all = (root, css, out = []) => {
    root.querySelectorAll(css).forEach(e => out.push(e));
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) all(e.shadowRoot, css, out); });
    return out;
  };
  const select = all(document, 'select').find(s => [...(s.labels || [])].some(
    l => l.textContent.trim() === label));
  if (!select) { reject(new Error(`no select labelled ${label}`)); return; }
  const roots = all(document, '.tabulator').map(t => t.getRootNode());
  const cellsOf = (root, col) => root.querySelector(
    `.tabulator-row .tabulator-cell[tabulator-field='${col.getAttribute('tabulator-field')}']`);
  const shown = () => roots.some(root => [...root.querySelectorAll('.tabulator-col')].some(col =>
    col.querySelector('.tabulator-col-title')?.textContent.trim() === title && cellsOf(root, col)));
  const late = setTimeout(() => reject(new Error(`no column ${title} after 60 s`)), 60000);
  const t0 = performance.now();
  const tick = () => {
    if (!shown()) { requestAnimationFrame(tick); return; }
    // the next frame holds the whole update (table and chart); time it once it is painted
    const done = () => { clearTimeout(late); resolve(performance.now() - t0); };
    requestAnimationFrame(() => setTimeout(done));
  };
  select.value = value;
  select.dispatchEvent(new Event('change', {bubbles: true}));
  requestAnimationFrame(tick);
})"""


def column_shown(title: str) -> str:
    """A selector for the body cells under the header ``title`` (Playwright pierces shadow DOM)."""
    return f".tabulator:has(.tabulator-col-title:text-is('{title}')) .tabulator-row"


def first_loads(browser, url: str, title: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(column_shown(title), timeout=120_000)
        times.append(time.perf_counter() - t0)
        context.close()
    return times


def interactions(
    browser, url: str, title: str, steps, n: int, *, in_page: bool = True
) -> tuple[list[float], list]:
    """Seconds from a widget change to the new column on screen, and the views visited.

    ``in_page``: the change is made and timed by the page itself (``CHANGE_AND_WAIT``);
    otherwise it is driven from Python through Playwright, whose round trips count too.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    LOGS.clear()
    page.on("console", lambda m: LOGS.append(f"{m.type}: {m.text}"))
    page.goto(url)
    page.wait_for_selector(column_shown(title), timeout=120_000)
    wait_until_idle(page)
    state = {"Measure": None, "Rows": title}
    times, views = [], []
    for i in range(n):
        label, value = steps[i % len(steps)]
        state[label] = value
        shown = value if label == "Rows" else state["Measure"]
        try:
            if in_page:
                times.append(page.evaluate(CHANGE_AND_WAIT, [label, value, shown]) / 1000)
            else:
                t0 = time.perf_counter()
                page.get_by_label(label).select_option(value)
                page.wait_for_selector(column_shown(shown), timeout=60_000)
                times.append(time.perf_counter() - t0)
        except Exception:
            print("failed at step", i, label, value, flush=True)
            raise
        views.append((state["Measure"], state["Rows"], label))
        time.sleep(0.2)  # a user reads the result before the next click
    context.close()
    return times, views


def query_latency(cube, views, n: int) -> list[float]:
    """The cube query API alone, for the same views (as CubeSelection asks them)."""
    times = []
    for i in range(n):
        measure, rows, _ = views[i % len(views)]
        counted = "flights" if "flights" in cube.measures else "lines"
        q = Query(by=(rows,), measures=(measure or counted,)).filter(f"{counted} > 0")
        t0 = time.perf_counter()
        cube.run(q)
        times.append(time.perf_counter() - t0)
    return times


def duckdb_latency(ws: wb.Workspace, views, n: int) -> list[float]:
    files = sorted(str(p) for p in ws.path("curated", "flights_enriched").glob("*.parquet"))
    con = duckdb.connect()
    con.execute(f"create view t as select * from read_parquet({files!r})")
    times = []
    for i in range(n):
        measure, rows, _ = views[i % len(views)]
        sql = FLIGHT_SQL.get((measure or "flights", rows))
        if sql is None:
            continue
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t0)
    return times


def _of(times: list[float], views: list, label: str) -> list[float]:
    return [t for t, view in zip(times, views, strict=True) if view[2] == label]


def bench_cube(browser, console, name, catalog, ws, steps, start_field, args, env=None):
    folder = Path(tempfile.mkdtemp(prefix="wb-bench-apps-"))
    server = start_server(
        folder, "cubes", "--catalog", str(catalog), "--workspace", str(ws.root), env=env
    )
    try:
        url = f"{server.url}/cubes"
        loads = first_loads(browser, url, start_field, args.loads)
        clicks, views = interactions(browser, url, start_field, steps, args.interactions)
        driven, _ = interactions(browser, url, start_field, steps, args.interactions, in_page=False)
    except Exception:
        print(server.output()[-5000:])
        print("\n".join(LOGS[-40:]))
        raise
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    cube = wb.open_cube(wb.load_catalog(catalog), ws, name)
    api = query_latency(cube, views, args.interactions)
    rows = [
        ("first load (cold, first tab)", [loads[0]]),
        (f"first load (next {len(loads) - 1} tabs)", loads[1:]),
        (f"widget change -> table updated ({len(clicks)})", clicks),
        ("  of which: new measure (same members)", _of(clicks, views, "Measure")),
        ("  of which: new row level (new members)", _of(clicks, views, "Rows")),
        ("  the same, driven through Playwright", driven),
        ("bare Panel floor: Select -> Tabulator column", args.floor),
        ("cube query alone, same views", api),
    ]
    if name == "flight_delays":
        rows.append(
            ("DuckDB from the curated Parquet", duckdb_latency(ws, views, args.interactions))
        )
    table = Table(
        "what", "median ms", "p95 ms", "x cube query", title=f"{name}: browser round trips"
    )
    base = statistics.median(api)
    for what, values in rows:
        if not values:
            continue
        med = statistics.median(values)
        table.add_row(
            what, f"{med * 1000:.0f}", f"{pct(values, 0.95) * 1000:.0f}", f"{med / base:.0f}"
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=30)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--workspace", type=Path, default=None, help="demo workspace")
    parser.add_argument("--tpch-workspace", type=Path, default=None)
    args = parser.parse_args()
    exe = shutil.which("chromium")
    if exe is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    console = Console(width=120)
    catalog_path = REPO / "data_catalog.yaml"
    catalog = wb.load_catalog(catalog_path)
    ws = wb.Workspace.for_catalog(catalog, args.workspace or os.environ.get("WORKBENCH_WORKSPACE"))
    if not ws.path("cubes", "flight_delays", "CURRENT.json").exists():
        sys.exit(f"no flight cube in {ws.root}: run `make demo` first")
    console.print(f"chromium {exe}; machine shared with other work, so figures are noisy")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        args.floor = panel_floor(browser, args.interactions)
        bench_cube(
            browser, console, "flight_delays", catalog_path, ws, FLIGHT_STEPS, "carrier", args
        )
        if args.tpch_workspace:
            env = {"TPCH_DIR": str(args.tpch_workspace), "TPCH_WORKSPACE": str(args.tpch_workspace)}
            os.environ.update(env)
            tpch_catalog = REPO / "benchmarks" / "tpch_cube_catalog.yaml"
            tpch_ws = wb.Workspace.for_catalog(wb.load_catalog(tpch_catalog), args.tpch_workspace)
            bench_cube(
                browser,
                console,
                "sales_cube",
                tpch_catalog,
                tpch_ws,
                TPCH_STEPS,
                "r_name",
                args,
                env=env,
            )
        browser.close()


if __name__ == "__main__":
    free_port()  # fail early if loopback sockets are unavailable
    main()
