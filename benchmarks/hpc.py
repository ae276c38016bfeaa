"""HPC overheads on a real SLURM (start one with `sudo bash ci/slurm/start.sh`).

Times, in one run on the same machine:
- worker jobs: from `get_client("slurm", jobs=2)` to two workers connected (median of N);
- the demo pipeline end to end (a fresh workspace each time, the command started as a new
  process): on a LocalCluster, with workers as 2 SLURM jobs, and as one batch job from
  `job submit` to its result; printed as ratios to the local run.

    python benchmarks/hpc.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import workbench as wb

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "data_catalog.yaml"
CLI = [sys.executable, "-c", "from workbench.cli import app; app()"]


def worker_startup(repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        # Worker jobs without a log directory write slurm-<id>.out where sbatch runs (the
        # checkout, when run from it): give them a temporary one.
        with tempfile.TemporaryDirectory() as logs:
            t0 = time.perf_counter()
            client = wb.get_client(
                "slurm", cores=1, memory="2GB", jobs=2, default_log_directory=logs
            )
            client.wait_for_workers(2, timeout=120)
            times.append(time.perf_counter() - t0)
            wb.close_client(client)
            time.sleep(2)  # let SLURM release the CPUs
    return times


def demo(how: str) -> float:
    with tempfile.TemporaryDirectory() as ws:
        common = ["--catalog", str(CATALOG), "--workspace", ws]
        t0 = time.perf_counter()
        if how == "local":
            subprocess.run([*CLI, "run", *common], check=True, capture_output=True)
        elif how == "slurm workers":
            args = ["--cluster", "slurm", "--cores", "1", "--memory", "3GB", "--jobs", "2"]
            subprocess.run([*CLI, "run", *common, *args], check=True, capture_output=True)
        else:
            args = ["--walltime", "00:30:00", "--cores", "2", "--memory", "6GB", "--json"]
            out = subprocess.run(
                [*CLI, "job", "submit", *common, *args], check=True, capture_output=True
            )
            job = json.loads(out.stdout)["id"]
            done = subprocess.run(
                [*CLI, "job", "status", job, "--wait", "900", "--json", *common],
                capture_output=True,
            )
            assert json.loads(done.stdout)["status"] == "succeeded", done.stdout
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    startup = worker_startup(max(3, args.repeat))
    print(
        f"2 SLURM worker jobs connected in {statistics.median(startup):.1f} s (median of "
        f"{len(startup)}: {', '.join(f'{t:.1f}' for t in startup)})"
    )
    results = {}
    for how in ("local", "slurm workers", "batch job"):
        runs = [demo(how) for _ in range(args.repeat)]
        results[how] = statistics.median(runs)
    base = results["local"]
    print("| demo pipeline, end to end | seconds | ratio to local |")
    print("| --- | ---: | ---: |")
    for how, seconds in results.items():
        print(f"| {how} | {seconds:.1f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
