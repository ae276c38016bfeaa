"""Train a catalog model on the Dask cluster and register it in ``models/<name>/<version>/``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import dask
import lightgbm
import numpy as np
import pandas as pd
from lightgbm.dask import DaskLGBMClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace
from workbench.ml.features import training_data
from workbench.ml.registry import RegisteredModel, register_model


@dataclass(frozen=True)
class TrainedModel:
    registered: RegisteredModel
    metrics: dict[str, float]
    seconds: float


def train_model(catalog: Catalog, ws: Workspace, name: str) -> TrainedModel:
    """Fit on the rows before ``split.test_from``, score the later ones, register the model."""
    started = time.perf_counter()
    spec = catalog.models[name]
    data = training_data(catalog, ws, name)
    train = data.train.persist()
    features = list(spec.features)
    params = {"random_state": spec.seed, "verbose": -1, **spec.params}
    model = DaskLGBMClassifier(**params)
    model.fit(train[features], train["__label"])
    booster = model.to_local().booster_
    # Score with the trained booster per partition: a DataFrame-only graph. (dask 2026.8 returns
    # the results of one dask.compute over mixed DataFrame and Array collections out of order.)
    scored = data.test.map_partitions(
        predict_partition, booster, features, meta={"__label": "int64", "score": "float64"}
    )
    test, n_train = dask.compute(scored, train.shape[0])
    del train
    metrics = classification_metrics(test["__label"].to_numpy(), test["score"].to_numpy())
    metrics |= {"train_rows": int(n_train), "test_rows": len(test)}
    importance = dict(
        zip(
            booster.feature_name(),
            booster.feature_importance("gain").round(2).tolist(),
            strict=True,
        )
    )
    registered = register_model(
        ws,
        name,
        booster.model_to_string(),
        metadata={
            "estimator": spec.estimator,
            "params": params,
            "features": features,
            "categories": data.categories,
            "label": spec.label,
            "metrics": metrics,
            "feature_importance": importance,
            "data": {
                "source": spec.source,
                "source_version": data.source_version,
                "split": spec.split.model_dump(mode="json"),
            },
        },
    )
    return TrainedModel(registered, metrics, time.perf_counter() - started)


def predict_partition(
    df: pd.DataFrame, booster: lightgbm.Booster, features: list[str]
) -> pd.DataFrame:
    """Probabilities of the positive class for one partition of encoded features."""
    return pd.DataFrame(
        {"__label": df["__label"].to_numpy(), "score": booster.predict(df[features])},
        index=df.index,
    )


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Test-set scores, with the majority-class baseline beside them so a useless model shows."""
    base_rate = float(y.mean())
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "positive_rate": base_rate,
        "baseline_accuracy": max(base_rate, 1 - base_rate),
        "baseline_log_loss": float(log_loss(y, np.full(len(y), base_rate), labels=[0, 1])),
    }
