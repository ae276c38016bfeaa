"""Training: the delay model against a plain pandas LightGBM fit, and every registry estimator."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import workbench as wb
from workbench.ml.estimators import design_matrix
from workbench.ml.features import SPLIT, encode_features, feature_info, read_features
from workbench.ml.registry import load_predictor, model_metadata
from workbench.ml.train import train_model

from .ml_helpers import catalog_with, copy_workspace


@pytest.fixture(scope="module")
def frames(demo):
    _, ws, _ = demo
    info = feature_info(ws, "flight_features")
    table = read_features(ws, "flight_features").compute()
    out = {}
    for split in ("train", "validation", "test"):
        rows = table[table[SPLIT] == split]
        out[split] = (
            encode_features(rows, info["features"], info["categories"]),
            rows["dep_delayed"].astype("int64").to_numpy(),
        )
    return info, out


def test_delay_model_beats_the_baseline_on_later_months(demo):
    _, ws, result = demo
    step = next(s for s in result.steps if s.step == "train:departure_delay")
    meta = model_metadata(ws, "departure_delay", alias="production")
    m = meta["metrics"]
    assert m == step.details["metrics"]
    assert m["roc_auc"] > 0.68 and m["roc_auc"] - m["baseline_roc_auc"] > 0.15
    assert m["log_loss"] < m["baseline_log_loss"] - 0.03
    assert m["brier"] < m["baseline_brier"]
    assert meta["data"]["feature_version"] == feature_info(ws, "flight_features")["version"]
    assert set(meta["feature_importance"]) == set(meta["features"])
    assert max(meta["feature_importance"], key=meta["feature_importance"].get) in (
        "plane_prev_delay",
        "hour",
        "sched_dep_time",
        "month",
        "day",
    )
    assert sum(row["rows"] for row in meta["calibration"]) == m["test_rows"]


def test_plain_lightgbm_on_the_same_split_gives_the_same_auc(demo, frames):
    _, ws, _ = demo
    info, data = frames
    meta = model_metadata(ws, "departure_delay", alias="production")
    local = lightgbm.LGBMClassifier(**meta["params"]).fit(*data["train"])
    X_test, y_test = data["test"]
    plain = roc_auc_score(y_test, local.predict_proba(X_test)[:, 1])
    assert abs(plain - meta["metrics"]["roc_auc"]) < 0.01
    predictor = load_predictor(ws, "departure_delay")
    assert (
        predictor.kind == "lightgbm"
        and predictor.model.num_trees() == meta["params"]["n_estimators"]
    )


OTHER_MODELS = """\
  delay_logistic:
    feature_set: flight_small
    estimator: logistic_regression
  delay_sgd:
    feature_set: flight_small
    estimator: sgd_classifier
    params: {epochs: 3}
  delay_hgb:
    feature_set: flight_small
    estimator: sklearn
    sklearn_class: sklearn.ensemble.HistGradientBoostingClassifier
    params: {max_iter: 50}
  delay_minutes:
    feature_set: flight_minutes
    estimator: lightgbm_regressor
    params: {n_estimators: 60}
  delay_minutes_linear:
    feature_set: flight_minutes
    estimator: linear_regression
"""

# The estimator tests use the first eight days of each month, to keep them quick.
MINUTES_FEATURES = """features:
  flight_small:
    source: flights_enriched
    where: "not cancelled and day <= 8"
    keys: [flight_date, carrier, flight, origin, tailnum]
    columns: [month, hour, sched_dep_time, distance, carrier, origin, temp, dewp, humid,
              wind_speed, precip, visib, plane_year]
    categorical: [carrier, origin]
    label: dep_delayed
    split: {column: flight_date, validation_from: 2013-09-01, test_from: 2013-11-01}
  flight_minutes:
    source: flights_enriched
    where: "not cancelled and dep_delay < 300 and day <= 8"
    columns: [hour, sched_dep_time, distance, carrier, origin, temp, visib, wind_speed]
    categorical: [carrier, origin]
    label: dep_delay
    keys: [flight_date, carrier, flight, origin]
    split: {kind: random, test_fraction: 0.2, validation_fraction: 0.1, seed: 3}
"""


@pytest.fixture(scope="module")
def other_models(demo, tmp_path_factory):
    _, ws, _ = demo
    tmp = tmp_path_factory.mktemp("estimators")
    path = catalog_with(tmp, OTHER_MODELS, replace={"\nfeatures:\n": "\n" + MINUTES_FEATURES})
    catalog = wb.load_catalog(path)
    copy = copy_workspace(ws, tmp / "ws")
    trained = {
        name: train_model(catalog, copy, name)
        for name in catalog.models
        if name != "departure_delay"
    }
    return catalog, copy, trained


def test_every_estimator_trains_registers_and_reloads(other_models):
    catalog, ws, trained = other_models
    for name, t in trained.items():
        meta = t.registered.metadata
        predictor = load_predictor(
            ws, name, alias="candidate"
        )  # verified and read back from skops or text
        assert predictor.fit_info["sha256"] == meta["sha256"]
        if name != "delay_hgb":  # histogram boosting exposes no importances or coefficients
            assert set(meta["feature_importance"]) == set(meta["features"]), name
        if catalog.models[name].task == "classification":
            assert t.metrics["roc_auc"] > 0.6, name
            assert meta["file"] == "model.skops" or name == "departure_delay"
        else:
            assert t.metrics["rmse"] < t.metrics["baseline_rmse"], name
            assert t.metrics["r2"] > 0.0, name
    assert trained["delay_logistic"].registered.metadata["params"]["solver"] == "lbfgs"


def test_dask_logistic_regression_matches_scikit_learn(other_models):
    _, ws, trained = other_models
    info = feature_info(ws, "flight_small")
    table = read_features(ws, "flight_small").compute()
    data = {}
    for split in ("train", "test"):
        rows = table[table[SPLIT] == split]
        data[split] = (
            encode_features(rows, info["features"], info["categories"]),
            rows["dep_delayed"].astype("int64").to_numpy(),
        )
    matrix = {s: design_matrix(X).to_numpy() for s, (X, _) in data.items()}
    mean = np.nanmean(matrix["train"], axis=0)
    std = np.nanstd(matrix["train"], axis=0)
    std[std == 0] = 1

    def scaled(m):
        return np.nan_to_num((m - mean) / std)

    reference = LogisticRegression(max_iter=500).fit(scaled(matrix["train"]), data["train"][1])
    auc = roc_auc_score(data["test"][1], reference.predict_proba(scaled(matrix["test"]))[:, 1])
    assert abs(trained["delay_logistic"].metrics["roc_auc"] - auc) < 0.01
    sgd = trained["delay_sgd"].metrics["roc_auc"]
    assert abs(sgd - auc) < 0.03


def test_predictor_scores_raw_rows_like_the_batch_path(other_models, demo):
    _, ws, _ = other_models
    rows = read_features(ws, "flight_small").head(50)
    for name in ("delay_logistic", "delay_hgb"):
        predictor = load_predictor(ws, name, alias="candidate")
        p = predictor.predict(rows)
        assert p.shape == (len(rows),) and ((p >= 0) & (p <= 1)).all()
        one = wb.predict_one(ws, name, rows.iloc[3].to_dict(), alias="candidate")
        assert one["score"] == pytest.approx(p[3])


def test_unknown_estimator_lists_the_known_ones(tmp_path):
    path = catalog_with(tmp_path, replace={"estimator: lightgbm_classifier": "estimator: xgboost"})
    with pytest.raises(wb.CatalogError, match="lightgbm_classifier.*sgd_classifier"):
        wb.load_catalog(path)


def test_one_estimator_registry_declares_each_task():
    from workbench.catalog.learning import ESTIMATOR_TASKS
    from workbench.ml.estimators import ESTIMATORS, get_estimator

    assert set(ESTIMATORS) | {"sklearn"} == set(ESTIMATOR_TASKS)
    for name, task in ESTIMATOR_TASKS.items():
        model = wb.catalog.Model(
            feature_set="f",
            estimator=name,
            sklearn_class=("sklearn.linear_model.Ridge" if name == "sklearn" else None),
            sklearn_task="regression",
        )
        assert model.task == (task or "regression")
        assert get_estimator(name, model.sklearn_class, model.task).task == model.task


@pytest.mark.parametrize(
    ("class_path", "task", "says"),
    [
        ("sklearn.utils.Bunch", "regression", "is not a scikit-learn regression estimator"),
        ("sklearn.datasets.fetch_openml", "classification", "is not a scikit-learn"),
        ("sklearn.linear_model.Ridge", "classification", "is not a scikit-learn classification"),
        ("sklearn.utils._testing.TempMemmap", "regression", "is private"),
        ("sklearn.no_such_module.Thing", "regression", "cannot be imported"),
    ],
)
def test_sklearn_class_must_be_a_public_estimator_of_the_task(class_path, task, says):
    """The catalog names a class; anything else under sklearn.* (a function, a helper class,
    a private module) is refused before it is called with the catalog's params."""
    from workbench.ml.estimators import get_estimator

    estimator = get_estimator("sklearn", class_path, task)
    with pytest.raises(wb.CatalogError, match=says):
        estimator.estimator_class()


def test_sklearn_class_accepts_an_estimator_of_the_task():
    from workbench.ml.estimators import get_estimator

    estimator = get_estimator("sklearn", "sklearn.linear_model.Ridge", "regression")
    assert estimator.estimator_class().__name__ == "Ridge"
