"""Batch scoring to a versioned ``predictions/<model>`` table, and one-record predictions.

Scoring runs per partition on the workers (each gets the verified model once) and writes one
Parquet file per partition; the new table version is committed at the end, so a failed run
leaves the previous predictions readable.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import pandas as pd

from workbench import config
from workbench.catalog.load import columns_of
from workbench.catalog.models import Catalog
from workbench.cluster import share
from workbench.errors import FeatureNotKnown, WorkbenchError, WorkspaceError
from workbench.io.delta import (
    Growth,
    commit_table,
    history,
    open_table,
    read_files,
    read_table,
    stage_table,
)
from workbench.io.workspace import Workspace
from workbench.ml import native
from workbench.ml.estimators import Predictor
from workbench.ml.features import (
    SPLIT,
    feature_matrix,
    feature_path,
    make_features,
    read_features,
)
from workbench.ml.registry import load_predictor
from workbench.ml.train import model_spec
from workbench.zones.tables import read_dataset

# The label as known when the rows were scored (missing for rows whose outcome is not known yet).
ACTUAL = "actual"


@dataclass(frozen=True)
class ScoreResult:
    name: str
    model_version: int
    predictions_version: int
    rows: int
    seconds: float
    engine: str  # "native" (a compiled forest) or the model's own predict ("lightgbm", "sklearn")


@dataclass(frozen=True)
class CompileResult:
    name: str
    model_version: int
    path: str
    seconds: float
    check_rows: int
    max_difference: float


ENGINES = ("auto", "lightgbm", "native")
MODEL_VERSION = "workbench.model_version"  # commit metadata: the model version that scored
FEATURE_VERSION = "workbench.feature_version"  # ... and the feature table version it read


def predictions_path(ws: Workspace, name: str):
    return ws.path("predictions", name)


def predictions_version(ws: Workspace, name: str) -> int | None:
    """The latest version of ``predictions/<name>``; None before the first scoring."""
    path = predictions_path(ws, name)
    return open_table(path).version() if path.exists() else None


def prediction_columns(ws: Workspace, name: str, version: int | None = None) -> list[str]:
    """The columns stored in one version (default: latest) of ``predictions/<name>``."""
    return open_table(predictions_path(ws, name), version).schema().to_arrow().names


def prediction_provenance(ws: Workspace, name: str, version: int) -> dict[str, Any]:
    """Which model version scored a predictions version, and when (from the table's log)."""
    found = [e for e in history(predictions_path(ws, name)) if e["version"] == version]
    if not found:
        raise WorkspaceError(
            f"predictions/{name} has no version {version}; score it with `workbench run {name}`."
        )
    when = dt.datetime.fromtimestamp(found[0]["timestamp"] / 1000, dt.UTC)
    version = found[0].get(MODEL_VERSION)  # Delta keeps commit metadata as text
    return {"model_version": None if version is None else int(version), "scored_at": when}


def _score_partition(
    df: pd.DataFrame,
    predictor: Predictor,
    keys: list[str],
    meta: dict[str, Any],
    label: str | None = None,
) -> pd.DataFrame:
    out = df[keys].copy()
    score = predictor.predict(df, threads=1)
    out["score"] = score
    if predictor.task == "classification":
        out["predicted"] = (score >= 0.5).astype("int64")
    else:
        out["predicted"] = score
    if label is not None:
        out[ACTUAL] = pd.to_numeric(df[label], errors="coerce").astype("float64")
    out["model"] = meta["name"]
    out["model_version"] = int(meta["version"])
    out["scored_at"] = pd.Timestamp(meta["scored_at"])
    return out


def _spread(frame: dd.DataFrame) -> dd.DataFrame:
    """At least a partition per worker thread: a small table is often a single file."""
    try:
        from distributed import get_client

        threads = sum(get_client().nthreads().values())
    except ValueError:  # no distributed client: the local schedulers
        return frame
    return frame.repartition(npartitions=threads) if frame.npartitions < threads else frame


def score_frame(
    frame: dd.DataFrame, predictor: Predictor, keys: list[str], label: str | None = None
) -> dd.DataFrame:
    """Lazy predictions for raw feature rows: keys, score, predicted, the ``label`` column's
    value as ``actual`` (when given: missing where not known yet), model, version, time."""
    frame = _spread(frame)
    meta = {
        "name": predictor.fit_info["name"],
        "version": predictor.fit_info["version"],
        "scored_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
    empty = _score_partition(frame._meta, predictor, keys, meta, label)
    # The model goes to each worker once, not with every task.
    return frame.map_partitions(_score_partition, share(predictor), keys, meta, label, meta=empty)


def score_batch(
    catalog: Catalog,
    ws: Workspace,
    name: str,
    *,
    alias: str | None = "production",
    version: int | None = None,
    input_dataset: str | None = None,
    appended: Growth | None = None,
) -> ScoreResult:
    """Score rows with a registered model into a new version of ``predictions/<name>``.

    Each row keeps its keys, its score and, when the rows carry the label, the known outcome
    as ``actual``, so predictions can be set against what happened. Rows come from
    ``input_dataset`` (a lake or curated dataset, turned into features the way the feature set
    declares) or, by default, from the feature set's current table.

    Examples
    --------
    >>> score_batch(catalog, ws, "departure_delay").rows  # doctest: +SKIP
    329174
    """
    started = time.perf_counter()
    spec = model_spec(catalog, name)
    fs = catalog.features[spec.feature_set]
    predictor = load_predictor(ws, name, version, alias=None if version else alias)
    predictor = with_engine(catalog, ws, predictor)
    info = {MODEL_VERSION: predictor.fit_info["version"]}
    if appended is not None:  # only the rows the feature table gained, appended
        info[FEATURE_VERSION] = appended.version
        frame = read_files(appended.files, feature_path(ws, spec.feature_set))
    elif input_dataset is None:
        version_read = open_table(feature_path(ws, spec.feature_set)).version()
        info[FEATURE_VERSION] = version_read
        frame = read_features(ws, spec.feature_set, version=version_read)
    else:
        known = set(columns_of(catalog, input_dataset))
        raw = read_dataset(catalog, ws, input_dataset, columns=fs.source_columns(known))
        frame = make_features(raw, fs)
    keys = [k for k in dict.fromkeys([*fs.keys, SPLIT]) if k in frame.columns]
    label = fs.label if fs.label in frame.columns else None
    staged = stage_table(score_frame(frame, predictor, keys, label), predictions_path(ws, name))
    actions = staged.actions.compute()
    out_version = commit_table(
        staged,
        actions,
        mode="overwrite" if appended is None else "append",
        operation=f"score {name}" + ("" if appended is None else " (append)"),
        info=info,
    )
    rows = int(actions["rows"].sum())
    engine = "native" if predictor.native is not None else predictor.kind
    seconds = time.perf_counter() - started
    return ScoreResult(name, predictor.fit_info["version"], out_version, rows, seconds, engine)


def compile_native(
    catalog: Catalog,
    ws: Workspace,
    name: str,
    *,
    alias: str | None = "production",
    version: int | None = None,
    check_rows: int = 10_000,
) -> CompileResult:
    """Compile a LightGBM model version for this host and keep it for batch scoring.

    The compiled forest must give LightGBM's scores (within 1e-9) on the first ``check_rows``
    rows of the feature table before it is kept (see :mod:`workbench.ml.native`).

    Examples
    --------
    >>> compile_native(catalog, ws, "departure_delay").seconds  # doctest: +SKIP
    41.7
    """
    predictor = load_predictor(ws, name, version, alias=None if version else alias)
    chosen = predictor.fit_info["version"]
    if predictor.kind != "lightgbm":
        raise WorkbenchError(
            f"model {name!r} v{chosen} is a {predictor.fit_info.get('estimator')} model; only "
            "LightGBM models compile to native code."
        )
    if not native.available():
        raise WorkbenchError("native scoring needs lleaves: pip install 'lleaves==1.3.0'")
    started = time.perf_counter()
    forest = native.compile_forest(predictor.model.model_to_string(), len(predictor.features))
    seconds = time.perf_counter() - started
    feature_set = model_spec(catalog, name).feature_set
    rows = read_features(ws, feature_set, columns=predictor.features).head(
        check_rows, npartitions=-1
    )
    matrix = feature_matrix(rows, predictor.features, predictor.categories)
    difference = native.check(forest, predictor.predict(rows), matrix)
    path = native.save(ws.path("models", name, str(chosen)), forest, seconds)
    return CompileResult(name, chosen, str(path), seconds, len(rows), difference)


def with_engine(catalog: Catalog, ws: Workspace, predictor: Predictor) -> Predictor:
    """``predictor`` with its compiled forest attached when the scoring engine says so.

    ``workbench.ml-scoring-engine``: ``auto`` uses a forest compiled for this host when one is
    kept, ``native`` compiles one first if needed, ``lightgbm`` always uses LightGBM.
    """
    engine = config.get("ml-scoring-engine")
    if engine not in ENGINES:
        raise WorkbenchError(
            f"workbench.ml-scoring-engine is {engine!r}; use one of {', '.join(ENGINES)}"
        )
    if predictor.kind != "lightgbm" or engine == "lightgbm":
        return predictor
    name, chosen = predictor.fit_info["name"], predictor.fit_info["version"]
    folder = ws.path("models", name, str(chosen))
    forest = native.load(folder)
    if forest is None and engine == "native":
        compile_native(catalog, ws, name, version=chosen)
        forest = native.load(folder)
    predictor.native = forest
    return predictor


def read_predictions(
    ws: Workspace, name: str, *, version: int | None = None, columns: list[str] | None = None
) -> dd.DataFrame:
    """A lazy frame over one version (default: latest) of ``predictions/<name>``."""
    return read_table(predictions_path(ws, name), columns=columns, version=version)


def predict_one(
    ws: Workspace,
    name: str,
    record: dict[str, Any],
    *,
    alias: str | None = "production",
    version: int | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Score one record of feature values (a what-if form); missing features count as unknown
    and are named in the answer. With ``strict``, a name the model does not know is an error
    listing the known ones (a record typed by hand); otherwise other columns (keys, label of a
    feature-table row) are left aside.

    Examples
    --------
    >>> predict_one(ws, "departure_delay", {"carrier": "UA", "origin": "EWR", "temp": 80.0})
    ... # doctest: +SKIP
    {'score': 0.27, 'predicted': 0, 'model': 'departure_delay', 'version': 1}
    """
    predictor = load_predictor(ws, name, version, alias=None if version else alias)
    unknown = sorted(set(record) - set(predictor.features))
    if strict and unknown:
        # A misspelt feature would otherwise be scored as missing, silently.
        raise FeatureNotKnown(
            f"model {name!r} has no feature {', '.join(map(repr, unknown))}; its features are "
            f"{', '.join(predictor.features)}."
        )
    row = pd.DataFrame([{f: record.get(f) for f in predictor.features}])
    score = float(predictor.predict(row)[0])
    predicted = int(score >= 0.5) if predictor.task == "classification" else score
    return {
        "score": score,
        "predicted": predicted,
        "model": name,
        "version": predictor.fit_info["version"],
        "missing": [f for f in predictor.features if record.get(f) is None],
    }
