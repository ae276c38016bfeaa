"""Incremental runs of the demo: a second `workbench run` with nothing changed, then one with one
rule of `weather` changed, then (`--append`) a month of flights appended to a lake table that
held the eleven before it, against the same steps rebuilt in full. Times each from command to
summary (process start included) and lists the steps that ran and how.

    python benchmarks/incremental.py [--repeat 3] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKBENCH = Path(sys.executable).parent / "workbench"


def run(catalog: Path, env: dict, *force: str) -> tuple[float, list[dict]]:
    """Seconds from command to summary, and the steps that ran (not reused)."""
    t0 = time.perf_counter()
    forced = [a for f in force for a in ("--force", f)]
    out = subprocess.run(
        [str(WORKBENCH), "run", "-c", str(catalog), "--json", *forced],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - t0
    return seconds, [s for s in json.loads(out.stdout)["steps"] if s["status"] != "reused"]


def names(steps: list[dict]) -> str:
    return ", ".join(s["step"] for s in steps) or "none"


# What an append makes stale in the demo after its promotion: timed, then rebuilt in full.
AFTER_APPEND = (
    "curate:flights_enriched",
    "cube:flight_delays",
    "features:flight_features",
    "score:departure_delay",
)


def append_month() -> None:
    from workbench.testing import appending_demo_catalog, write_flights

    folder = Path(tempfile.mkdtemp(prefix="wb-append-"))
    catalog, data = appending_demo_catalog(folder, REPO / "data_catalog.yaml")
    env = os.environ | {"WORKBENCH_WORKSPACE": str(folder / "workspace")}
    first, _ = run(catalog, env)
    print(f"January-November, first run: {first:.1f} s")
    rows = write_flights(data / "flights_02.csv", {12})
    seconds, appended = run(catalog, env)
    print(f"December appended ({rows} rows): {seconds:.1f} s from command to summary")
    _, rebuilt = run(catalog, env, *AFTER_APPEND)
    table = [("step", "appended", "mode", "rebuilt in full", "ratio")]
    for step in AFTER_APPEND:
        a = next(s for s in appended if s["step"] == step)
        r = next(s for s in rebuilt if s["step"] == step)
        ratio = f"{r['seconds'] / a['seconds']:.1f}x"
        mode = a["details"].get("mode", "")
        table.append((step, f"{a['seconds']:.2f} s", mode, f"{r['seconds']:.2f} s", ratio))
    total = [
        sum(s["seconds"] for s in run if s["step"] in AFTER_APPEND) for run in (appended, rebuilt)
    ]
    table.append(
        ("the four", f"{total[0]:.2f} s", "", f"{total[1]:.2f} s", f"{total[1] / total[0]:.1f}x")
    )
    for row in table:
        print(" | ".join(row))
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--append", action="store_true", help="only the append scenario")
    args = parser.parse_args()
    if args.append:
        append_month()
        return
    folder = Path(tempfile.mkdtemp(prefix="wb-incremental-"))
    catalog = folder / "data_catalog.yaml"
    shutil.copy(REPO / "data_catalog.yaml", catalog)
    env = os.environ | {"WORKBENCH_WORKSPACE": str(folder / "workspace")}
    first, _ = run(catalog, env)
    print(f"first run (everything): {first:.1f} s")
    noop = [run(catalog, env) for _ in range(args.repeat)]
    print(
        f"nothing changed: median {statistics.median(s for s, _ in noop):.2f} s "
        f"({', '.join(f'{s:.2f}' for s, _ in noop)}), steps run: {names(noop[-1][1])}"
    )
    text = catalog.read_text()
    rule = "max: 200, name: wind_speed_implausible"
    changed = text.replace(rule, rule.replace("200", "150"))
    assert changed != text, "the weather rule to change was not found in data_catalog.yaml"
    catalog.write_text(changed)
    seconds, ran = run(catalog, env)
    print(f"one weather rule changed: {seconds:.1f} s, steps run: {names(ran)}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
