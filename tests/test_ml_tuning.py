"""Tuning from the catalog's search space, end to end on the real cluster."""

from __future__ import annotations

import json

import lightgbm
import pytest
from sklearn.metrics import roc_auc_score

import workbench as wb
from workbench.ml.features import SPLIT, encode_features, feature_info, read_features
from workbench.ml.registry import model_metadata
from workbench.ml.tuning import tune_model

from .ml_helpers import catalog_with, copy_workspace

NAME = "departure_delay"
PARAMS = "params: {n_estimators: 300, learning_rate: 0.05, num_leaves: 63, min_child_samples: 50}"


def test_random_search_picks_a_configuration_no_worse_than_the_default(demo, tmp_path, client):
    _, ws, _ = demo
    copy = copy_workspace(ws, tmp_path / "ws")
    path = catalog_with(
        tmp_path,
        replace={PARAMS: PARAMS.replace("300", "80"), "n_iter: 6": "n_iter: 2"},
    )
    catalog = wb.load_catalog(path)
    result = tune_model(catalog, copy, NAME)
    scored = [t for t in result.trials if "score" in t]
    assert result.method == "random" and len(scored) == 3 and scored[0]["params"] == {}
    assert result.best_score == max(t["score"] for t in scored) >= result.default_score
    meta = model_metadata(copy, NAME, result.version)
    assert meta["tuning"]["trials"] == json.loads(json.dumps(result.trials))
    assert {k: meta["params"][k] for k in result.best_params} == result.best_params
    with open(result.trials_path, encoding="utf-8") as f:
        assert json.load(f)["best_params"] == result.best_params

    # The default's validation AUC again, with plain LightGBM on pandas.
    info = feature_info(copy, "flight_features")
    table = read_features(copy, "flight_features").compute()

    def part(split):
        rows = table[table[SPLIT] == split]
        X = encode_features(rows, info["features"], info["categories"])
        return X, rows.dep_delayed.astype(int)

    params = {**model_metadata(copy, NAME, 1)["params"], "n_estimators": 80}
    default = lightgbm.LGBMClassifier(**params).fit(*part("train"))
    X_val, y_val = part("validation")
    plain = roc_auc_score(y_val, default.predict_proba(X_val)[:, 1])
    assert result.default_score == pytest.approx(plain, abs=0.01)
    X_test, y_test = part("test")
    default_test = roc_auc_score(y_test, default.predict_proba(X_test)[:, 1])
    assert meta["metrics"]["roc_auc"] >= default_test - 0.005


SGD_MODEL = """\
  delay_sgd:
    feature_set: flight_features
    estimator: sgd_classifier
    params: {epochs: 2}
    tune:
      method: auto
      max_iter: 9
      space:
        alpha: {low: 0.00001, high: 0.01, log: true}
        penalty: [l2, l1]
"""


def test_hyperband_tunes_an_incremental_model(demo, tmp_path, client):
    _, ws, _ = demo
    copy = copy_workspace(ws, tmp_path / "ws")
    catalog = wb.load_catalog(catalog_with(tmp_path, SGD_MODEL))
    result = tune_model(catalog, copy, "delay_sgd")
    assert result.method == "hyperband"
    searched = [t for t in result.trials if "holdout_score" in t]
    assert len(searched) >= 4 and all(t["epochs"] >= 1 for t in searched)
    assert result.best_score >= result.default_score > 0.6
    meta = model_metadata(copy, "delay_sgd", result.version)
    assert meta["reason"] == "tuned (hyperband)" and meta["file"] == "model.skops"
