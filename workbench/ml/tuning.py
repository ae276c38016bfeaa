"""Hyperparameter tuning from the catalog's ``tune:`` search space.

Random and grid search fit each configuration on the training rows and score it on the
validation rows (the catalog's configuration is always trial 0, so the winner is never worse on
validation than the default). Incremental (SGD) estimators use dask-ml's ``HyperbandSearchCV``,
which stops poor configurations early; it runs on the pinned Dask thanks to
:func:`workbench.ml.compat.patch_dask_ml_searches`. Every trial is written to
``reports/tuning/<model>/<time>.json`` and into the metadata of the model trained with the winner.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from workbench.catalog.models import Catalog, SearchRange, Tuning
from workbench.errors import CatalogError
from workbench.io.workspace import Workspace, write_json_atomic
from workbench.ml.estimators import _arrays, _scaling, get_estimator
from workbench.ml.feature_build import build_features
from workbench.ml.features import feature_info
from workbench.ml.metrics import LOWER_IS_BETTER
from workbench.ml.train import evaluate, fit_data, model_spec, score_rows, split_rows, train_model


@dataclass(frozen=True)
class TuningResult:
    name: str
    method: str
    metric: str
    trials: list[dict[str, Any]]
    best_params: dict[str, Any]
    best_score: float
    default_score: float
    version: int
    trials_path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _distribution(value: list[Any] | SearchRange):
    if isinstance(value, list):
        return value
    if value.integer:
        return stats.randint(int(value.low), int(value.high) + 1)
    if value.log:
        return stats.loguniform(value.low, value.high)
    return stats.uniform(value.low, value.high - value.low)


def _grid_values(value: list[Any] | SearchRange) -> list[Any]:
    if isinstance(value, list):
        return value
    points = (np.geomspace if value.log else np.linspace)(value.low, value.high, 3)
    return [int(round(p)) for p in points] if value.integer else points.tolist()


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


def candidate_params(tune: Tuning, seed: int) -> list[dict[str, Any]]:
    """The configurations a random or grid search tries, after the catalog's own (``{}``)."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if tune.method == "grid":
        grid = ParameterGrid({k: _grid_values(v) for k, v in tune.space.items()})
        return [{}, *map(_plain, grid)]
    space = {k: _distribution(v) for k, v in tune.space.items()}
    return [{}, *map(_plain, ParameterSampler(space, tune.n_iter, random_state=seed))]


def _validation_trial(
    catalog: Catalog, ws: Workspace, name: str, version: int, params: dict, trial: int
) -> dict[str, Any]:
    """Fit ``params`` (over the catalog's) on the training rows, score the validation rows."""
    spec = model_spec(catalog, name)
    metric = spec.tune.metric or spec.promotion_metric
    estimator = get_estimator(spec.estimator, spec.sklearn_class, spec.task)
    data = fit_data(catalog, ws, name, version)
    predictor = estimator.fit(data, estimator.params({**spec.params, **params}, spec.seed), None)
    validation = split_rows(ws, spec.feature_set, version, "validation")
    label = feature_info(ws, spec.feature_set, version)["label"]
    metrics, _ = evaluate(predictor, score_rows(validation, predictor, label))
    return {"trial": trial, "params": params, "score": metrics[metric], "metrics": metrics}


def _hyperband(catalog: Catalog, ws: Workspace, name: str, version: int, metric: str):
    from dask_ml.model_selection import HyperbandSearchCV
    from sklearn.pipeline import Pipeline

    from workbench.ml.compat import patch_dask_ml_searches

    spec = model_spec(catalog, name)
    estimator = get_estimator(spec.estimator, spec.sklearn_class, spec.task)
    if not estimator.incremental:
        raise CatalogError(
            f"models.{name}.tune: Hyperband needs an incremental estimator (sgd_classifier, "
            f"sgd_regressor), not {spec.estimator}; use method: random or grid."
        )
    if not patch_dask_ml_searches():
        raise CatalogError("Hyperband cannot run on this dask-ml; use method: random.")
    data = fit_data(catalog, ws, name, version)
    X, y = _arrays(data.train, data.features)
    Xs = Pipeline(_scaling()).fit(X).transform(X).persist()
    base = estimator.params(spec.params, spec.seed)
    base.pop("epochs")
    space = {k: _distribution(v) for k, v in spec.tune.space.items()}
    scoring = "roc_auc" if metric == "roc_auc" else "neg_root_mean_squared_error"
    search = HyperbandSearchCV(
        estimator.make(base),
        space,
        max_iter=spec.tune.max_iter,
        random_state=spec.seed,
        scoring=scoring,
        test_size=0.2,
    )
    kwargs = {"classes": [0, 1]} if spec.task == "classification" else {}
    search.fit(Xs, y.persist(), **kwargs)
    sign = -1 if scoring.startswith("neg_") else 1
    results = search.cv_results_
    trials = [
        {
            "trial": f"hyperband-{i}",
            "params": _plain(p),
            "holdout_score": sign * float(s),
            "epochs": int(results["partial_fit_calls"][i]),
        }
        for i, (p, s) in enumerate(zip(results["params"], results["test_score"], strict=True))
    ]
    return trials, _plain(search.best_params_)


def tune_model(catalog: Catalog, ws: Workspace, name: str) -> TuningResult:
    """Search the model's ``tune:`` space, record every trial, and train the winner as the
    candidate (promoted only if it beats production).

    Examples
    --------
    >>> result = tune_model(catalog, ws, "departure_delay")  # doctest: +SKIP
    >>> result.best_params, result.best_score >= result.default_score  # doctest: +SKIP
    """
    spec = model_spec(catalog, name)
    if spec.tune is None:
        raise CatalogError(f"models.{name} has no `tune:` search space; add one to the catalog.")
    metric = spec.tune.metric or spec.promotion_metric
    lower = metric in LOWER_IS_BETTER
    version = build_features(catalog, ws, spec.feature_set).version
    method = spec.tune.method
    if method == "auto":
        incremental = get_estimator(spec.estimator, spec.sklearn_class, spec.task).incremental
        method = "hyperband" if incremental else "random"
    if method == "hyperband":
        # Hyperband ranks configurations on a holdout of the training rows; the default and
        # Hyperband's winner are then scored on the validation rows like any other trial.
        searched, winner = _hyperband(catalog, ws, name, version, metric)
        configs = [{}, winner]
    else:
        searched, configs = [], candidate_params(spec.tune, spec.seed)
    scored = [
        _validation_trial(catalog, ws, name, version, params, i) for i, params in enumerate(configs)
    ]
    trials = [*scored, *searched]
    chosen = (min if lower else max)(scored, key=lambda t: t["score"])
    best, best_score, default_score = chosen["params"], chosen["score"], scored[0]["score"]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = ws.path("reports", "tuning", name, f"{stamp}.json")
    record = {
        "model": name,
        "method": method,
        "metric": metric,
        "feature_version": version,
        "trials": trials,
        "best_params": best,
    }
    write_json_atomic(path, record)
    trained = train_model(
        catalog,
        ws,
        name,
        params=best,
        reason=f"tuned ({method})",
        extra={"tuning": record | {"file": str(path)}},
    )
    return TuningResult(
        name,
        method,
        metric,
        trials,
        best,
        best_score,
        default_score,
        trained.registered.version,
        str(path),
    )
