"""`lake verify` against the promotion it checks: TPC-H lineitem as one CSV file.

Lands lineitem and orders (one file each, from `tpchgen-cli`), promotes orders, then times the
promotion of lineitem (parse, every rule of benchmarks/tpch_catalog.yaml, lake + quarantine
written) and `lake verify lineitem` (re-read every block, type it in DuckDB, compare per-row
fingerprints with the lake) on the same local Dask cluster, and prints both times and the ratio
(the target is under 2).

    python benchmarks/verify.py [--sf 1] [--data DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster

import workbench as wb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate import make_tpch  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "wb-bench")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tpch = make_tpch(args.data, args.sf, parts=1)
    os.environ["TPCH_DIR"] = str(tpch)
    os.environ["TPCH_WORKSPACE"] = str(args.data / f"ws-verify-sf{args.sf:g}")
    catalog = wb.load_catalog(HERE / "tpch_catalog.yaml")
    ws = wb.Workspace.for_catalog(catalog)
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
    )
    with cluster, Client(cluster) as client:
        address = client.scheduler.address
        wb.run_pipeline(catalog, ws, ["orders", "land:lineitem"], cluster=address)
        batch = wb.list_batches(ws, "lineitem")[-1]
        start = time.perf_counter()
        promotion = wb.promote_batch(catalog, ws, "lineitem", batch)
        promote_secs = time.perf_counter() - start
        start = time.perf_counter()
        result = wb.verify_lake(catalog, ws, "lineitem")
        verify_secs = time.perf_counter() - start
    print(f"TPC-H SF{args.sf:g} lineitem, one file, {batch.rows:,} rows, {args.workers} workers")
    print(f"promote: {promote_secs:.1f} s ({promotion.promoted:,} promoted)")
    print(
        f"verify:  {verify_secs:.1f} s ({result.rows_checked:,} rows checked, "
        f"{'0 differences' if result.ok else 'DIFFERENCES'})"
    )
    print(f"ratio verify / promote: {verify_secs / promote_secs:.2f} (target < 2)")


if __name__ == "__main__":
    main()
