"""CLI start-up: wall time of `workbench --help` and `workbench catalog list` (goal: under 1 s).

Each command runs ``--runs`` times (default 5) in a fresh interpreter, the way a user's shell
starts it; the script prints every time and the median, and the modules the slowest command
imports beyond typer and rich, largest first (from ``python -X importtime``), so a regression
names its cause.

    python benchmarks/cli_startup.py [--runs 5] [--catalog data_catalog.yaml]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = "from workbench.cli import main; main()"


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", ENTRY, *args], env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def heaviest_imports(args: list[str], env: dict[str, str], top: int = 8) -> list[tuple[int, str]]:
    """Top-level imports of the command by cumulative microseconds."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("   "):
            rows.append((int(parts[1]), parts[2].strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--catalog", default=str(REPO / "data_catalog.yaml"))
    options = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    commands = {
        "workbench --help": ["--help"],
        "workbench catalog list": ["catalog", "list", "--catalog", options.catalog],
    }
    medians = {}
    for label, args in commands.items():
        times = [timed(args, env) for _ in range(options.runs)]
        medians[label] = statistics.median(times)
        shown = " ".join(f"{t:.2f}" for t in times)
        print(f"{label:<24} median {medians[label]:.2f} s  (runs: {shown} s)")
    slowest = max(medians, key=medians.get)
    print(f"\nheaviest imports of `{slowest}` (cumulative):")
    for micros, module in heaviest_imports(commands[slowest], env):
        print(f"  {micros / 1e6:6.3f} s  {module}")
    goal = all(m < 1.0 for m in medians.values())
    print(f"\ngoal (every median under 1 s): {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
