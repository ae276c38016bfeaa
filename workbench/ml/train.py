"""Train a catalog model on the Dask cluster, evaluate it and register it as the candidate.

The model reads one version of its feature table: training rows to fit, test rows to evaluate
(against a baseline), and the training rows' distribution is kept as the drift reference.
A long fit saves checkpoints under ``models/<name>/.checkpoints/<fit key>/``; a fit killed
midway resumes from the last one when run again with the same data and parameters.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import pandas as pd

from workbench.catalog.models import Catalog, Model
from workbench.cluster import share
from workbench.io.workspace import Workspace
from workbench.ml import signing
from workbench.ml.checkpoints import Checkpoint
from workbench.ml.drift import reference_profile
from workbench.ml.estimators import LABEL, FitData, Predictor, get_estimator
from workbench.ml.feature_build import build_features
from workbench.ml.features import (
    SPLIT,
    encode_features,
    feature_info,
    read_features,
)
from workbench.ml.metrics import (
    calibration_table,
    classification_curves,
    classification_metrics,
    regression_metrics,
)
from workbench.ml.registry import RegisteredModel, register_model, set_alias


@dataclass(frozen=True)
class TrainedModel:
    registered: RegisteredModel
    metrics: dict[str, float]
    seconds: float
    promotion: Any = None


def model_spec(catalog: Catalog, name: str) -> Model:
    return catalog.model(name)


def split_rows(ws: Workspace, feature_set: str, version: int, which: str) -> dd.DataFrame:
    """Raw feature rows of one split (train, validation or test) of a feature table version."""
    frame = read_features(ws, feature_set, version=version)
    return frame[frame[SPLIT] == which]


def _encoded(frame: dd.DataFrame, info: dict, task: str) -> dd.DataFrame:
    def encode(df: pd.DataFrame) -> pd.DataFrame:
        out = encode_features(df, info["features"], info["categories"])
        if task == "classification":
            out[LABEL] = pd.to_numeric(df[info["label"]], errors="coerce").fillna(0).astype("int64")
        else:
            out[LABEL] = pd.to_numeric(df[info["label"]], errors="coerce").astype("float64")
            out = out[out[LABEL].notna()]
        return out

    return frame.map_partitions(encode, meta=encode(frame._meta))


def fit_data(catalog: Catalog, ws: Workspace, name: str, feature_version: int) -> FitData:
    spec = model_spec(catalog, name)
    info = feature_info(ws, spec.feature_set, feature_version)
    rows = {
        s: split_rows(ws, spec.feature_set, feature_version, s) for s in ("train", "validation")
    }
    return FitData(
        _encoded(rows["train"], info, spec.task),
        _encoded(rows["validation"], info, spec.task),
        list(info["features"]),
        info["categories"],
        spec.task,
        spec.seed,
    )


def fit_key(spec: Model, params: dict, feature_version: int) -> str:
    text = json.dumps([spec.estimator, spec.sklearn_class, params, feature_version], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def score_rows(frame: dd.DataFrame, predictor: Predictor, label: str) -> pd.DataFrame:
    """Labels and scores of ``frame``'s rows, computed per partition."""

    meta = pd.DataFrame({"y": pd.Series([], dtype="float64"), "p": pd.Series([], dtype="float64")})
    scored = frame.map_partitions(_label_and_score, share(predictor), label, meta=meta)
    return scored.compute()


def _label_and_score(df: pd.DataFrame, predictor: Predictor, label: str) -> pd.DataFrame:
    y = pd.to_numeric(df[label], errors="coerce").astype("float64")
    p = predictor.predict(df, threads=1)
    return pd.DataFrame({"y": y.to_numpy(), "p": p}, index=df.index)


def evaluate(
    predictor: Predictor, scored: pd.DataFrame, train_mean: float | None = None
) -> tuple[dict[str, float], list[dict]]:
    """Test metrics with their baselines, and the calibration table of a classifier."""
    if predictor.task == "classification":
        y = scored["y"].fillna(0).astype("int64").to_numpy()
        p = scored["p"].to_numpy()
        return classification_metrics(y, p), calibration_table(y, p)
    known = scored[scored["y"].notna()]
    mean = float(known["y"].mean()) if train_mean is None else train_mean
    return regression_metrics(known["y"].to_numpy(), known["p"].to_numpy(), mean), []


def evaluation_curves(predictor: Predictor, scored: pd.DataFrame) -> dict[str, dict]:
    """ROC and precision/recall points of a classifier's test rows, kept in the registry so the
    dashboards draw them without scoring again; empty for a regressor."""
    if predictor.task != "classification":
        return {}
    return classification_curves(scored["y"].fillna(0).astype("int64"), scored["p"].to_numpy())


def train_model(
    catalog: Catalog,
    ws: Workspace,
    name: str,
    *,
    params: dict[str, Any] | None = None,
    promote: bool = True,
    reason: str = "trained",
    extra: dict[str, Any] | None = None,
) -> TrainedModel:
    """Fit on the training rows, evaluate on the test rows, register, mark as candidate and
    (unless ``promote=False``) promote it when it beats production by the catalog's margin.
    ``params`` override the catalog's; ``extra`` is added to the version's metadata.

    Examples
    --------
    >>> trained = train_model(catalog, ws, "departure_delay")  # doctest: +SKIP
    >>> trained.metrics["roc_auc"], trained.registered.version  # doctest: +SKIP
    """
    started = time.perf_counter()
    spec = model_spec(catalog, name)
    build = build_features(catalog, ws, spec.feature_set)
    info = feature_info(ws, spec.feature_set, build.version)
    estimator = get_estimator(spec.estimator, spec.sklearn_class, spec.task)
    full_params = estimator.params({**spec.params, **(params or {})}, spec.seed)
    data = fit_data(catalog, ws, name, build.version)
    checkpoint = Checkpoint(
        ws.path("models", name, ".checkpoints", fit_key(spec, full_params, build.version)),
        spec.checkpoint_every,
        signing.current_key(create=True),
    )
    predictor = estimator.fit(data, full_params, checkpoint)
    fit_seconds = time.perf_counter() - started
    test = split_rows(ws, spec.feature_set, build.version, "test")
    scored = score_rows(test, predictor, info["label"])
    train_raw = split_rows(ws, spec.feature_set, build.version, "train")
    train_mean = None
    if spec.task == "regression":
        train_mean = float(pd.to_numeric(train_raw[info["label"]]).mean().compute())
    metrics, calibration = evaluate(predictor, scored, train_mean)
    metrics |= {"train_rows": info["rows"]["train"], "test_rows": len(scored)}
    profile = reference_profile(
        train_raw, info["features"], info["categorical"], spec.monitor.bins, scored["p"].to_numpy()
    )
    registered = register_model(
        ws,
        name,
        predictor,
        metadata={
            "estimator": spec.sklearn_class or spec.estimator,
            "params": full_params,
            "label": info["label"],
            "metrics": metrics,
            "promotion_metric": spec.promotion_metric,
            "calibration": calibration,
            "curves": evaluation_curves(predictor, scored),
            "feature_importance": predictor.importance(),
            "reference": profile,
            "reason": reason,
            "fit": predictor.fit_info | {"seconds": round(fit_seconds, 2)},
            "data": {
                "feature_set": spec.feature_set,
                "feature_version": build.version,
                "source": info["source"],
                "source_version": info["source_version"],
                "rows": info["rows"],
            },
        }
        | (extra or {}),
    )
    checkpoint.clear()
    set_alias(ws, name, "candidate", registered.version, reason)
    promotion = None
    if promote:
        from workbench.ml.promotion import promote_model

        promotion = promote_model(catalog, ws, name, registered.version)
    return TrainedModel(registered, metrics, time.perf_counter() - started, promotion)
