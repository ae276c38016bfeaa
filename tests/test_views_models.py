"""The models views without a browser: the registry as stored, what-if probabilities equal to
LightGBM scoring the same row read back from the model file on its own, curves equal to
scikit-learn's on the test rows, predictions aggregates equal to pandas on the stored predictions,
and drift over time equal to the saved monitoring reports."""

from __future__ import annotations

import datetime as dt
import json

import lightgbm
import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from .conftest import DEMO_CATALOG
from .ml_helpers import copy_workspace

NAME = "departure_delay"


@pytest.fixture
def store(demo):
    from workbench.views import ModelStore

    _, ws, _ = demo
    return ModelStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))


@pytest.fixture
def model_on_disk(demo):
    """The newest version's metadata and booster, read without the workbench."""
    _, ws, _ = demo
    root = ws.path("models", "departure_delay")
    newest = max((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    meta = json.loads((newest / "metadata.json").read_text())
    return meta, lightgbm.Booster(model_file=str(newest / "model.txt"))


def test_registry_and_importance_are_what_was_stored(store, model_on_disk):
    meta, booster = model_on_disk
    registry = store.registry("departure_delay")
    top = registry.iloc[0]
    assert top.version == meta["version"]
    assert top.roc_auc == meta["metrics"]["roc_auc"] > 0.6
    assert top.test_rows == meta["metrics"]["test_rows"]
    assert top.sha256 == meta["sha256"][:12]
    importance = store.feature_importance(store.current("departure_delay")[1])
    gains = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    for row in importance.itertuples():
        assert row.gain == pytest.approx(gains[row.feature], abs=0.01)
    assert importance.gain.is_monotonic_decreasing


def _independent_probability(booster, meta, values: dict) -> float:
    row = {}
    for feature in meta["features"]:
        if feature in meta["categories"]:
            row[feature] = pd.Categorical([values[feature]], categories=meta["categories"][feature])
        else:
            row[feature] = [float(values[feature])]
    return float(booster.predict(pd.DataFrame(row))[0])


def test_whatif_form_scores_like_lightgbm(store, model_on_disk, demo):
    from workbench.views import ModelsDashboard

    catalog, ws, _ = demo
    meta, booster = model_on_disk
    view = ModelsDashboard(store)
    values = view.whatif_values()
    assert list(values) == meta["features"]
    # The form starts at the medians of the feature table version the model was trained on
    # (read independently with deltalake).
    from deltalake import DeltaTable

    table = DeltaTable(
        str(ws.path("features", "flight_features")), version=meta["data"]["feature_version"]
    )
    medians = table.to_pandas(columns=["distance", "temp"]).median()
    assert values["distance"] == pytest.approx(medians["distance"], abs=0.01)
    assert values["temp"] == pytest.approx(medians["temp"], abs=0.01)

    p = view.whatif_probability()
    assert p == pytest.approx(_independent_probability(booster, meta, values), abs=1e-12)
    assert f"{p:.1%}" in view.result.object

    widgets = {w.label: w for w in view.inputs.objects}
    widgets["origin"].value = "JFK"
    widgets["sched_dep_time"].value = 1900
    widgets["hour"].value = 19
    changed = view.whatif_values()
    q = view.whatif_probability()
    assert q == pytest.approx(_independent_probability(booster, meta, changed), abs=1e-12)
    assert q != p
    assert f"{q:.1%}" in view.result.object


def _booster_scores(booster, meta: dict, frame: pd.DataFrame) -> np.ndarray:
    """LightGBM on its own: categorical features with the levels recorded at training."""
    columns = {}
    for feature in meta["features"]:
        if feature in meta["categories"]:
            columns[feature] = pd.Categorical(
                frame[feature].astype("object"), categories=meta["categories"][feature]
            )
        else:
            columns[feature] = pd.to_numeric(frame[feature], errors="coerce").astype("float64")
    return booster.predict(pd.DataFrame(columns))


def _points_on(stored: pd.DataFrame, x: np.ndarray, y: np.ndarray, xs: str, ys: str) -> bool:
    """Every stored point is one of scikit-learn's (stored values are rounded to 6 digits)."""
    near_x = np.abs(stored[xs].to_numpy()[:, None] - x[None, :]) < 1e-6
    near_y = np.abs(stored[ys].to_numpy()[:, None] - y[None, :]) < 1e-6
    return bool((near_x & near_y).any(axis=1).all())


def test_curves_are_scikit_learns_on_the_test_rows(store, model_on_disk, demo):
    from workbench.views import ModelsDashboard

    _, ws, _ = demo
    meta, booster = model_on_disk
    table = DeltaTable(
        str(ws.path("features", "flight_features")), version=meta["data"]["feature_version"]
    ).to_pandas()
    test = table[table["_split"] == "test"]
    y = pd.to_numeric(test[meta["label"]], errors="coerce").fillna(0).astype(int).to_numpy()
    p = _booster_scores(booster, meta, test)

    view = ModelsDashboard(store)
    assert view.version == meta["version"]  # the production version, picked by default
    curves = view.curves_data()
    roc, pr = curves["roc"], curves["pr"]
    assert 100 < len(roc) <= 202 and 100 < len(pr) <= 202  # compact, not one point per row
    fpr, tpr, _ = roc_curve(y, p)
    assert _points_on(roc, fpr, tpr, "fpr", "tpr")
    precision, recall, _ = precision_recall_curve(y, p)
    assert _points_on(pr, recall, precision, "recall", "precision")
    # The thinned curve keeps the area: its trapezoids against scikit-learn's AUC.
    auc = roc_auc_score(y, p)
    assert np.trapezoid(roc.tpr, roc.fpr) == pytest.approx(auc, abs=2e-3)
    assert meta["metrics"]["roc_auc"] == pytest.approx(auc, abs=1e-9)
    assert roc.fpr.is_monotonic_increasing and pr.recall.is_monotonic_decreasing
    note = view.curves_view()[0].object
    assert f"On the {len(test):,} test rows ({y.sum():,} positive)" in note


def test_a_version_without_curves_or_reports_says_so(demo, tmp_path):
    from workbench.ml.registry import resign_version
    from workbench.views import ModelsDashboard, ModelStore

    _, ws, _ = demo
    copy = copy_workspace(ws, tmp_path / "ws")
    version = max(int(p.name) for p in copy.path("models", NAME).iterdir() if p.name.isdigit())
    path = copy.path("models", NAME, str(version), "metadata.json")
    meta = json.loads(path.read_text())
    del meta["curves"]  # as versions registered before curves were kept
    path.write_text(json.dumps(meta))
    # Such a version is signed again after an upgrade (docs/signing.md), else it is refused.
    (path.parent / "signature.json").unlink()
    resign_version(copy, NAME, version, trust_unsigned=True)

    view = ModelsDashboard(ModelStore(catalog_path=str(DEMO_CATALOG), workspace=str(copy.root)))
    assert view.curves_data() is None
    assert "not recorded for version" in view.curves_view().object
    assert view.drift_data().empty
    assert "No drift reports" in view.drift_view().object
    explorer = view.predictions
    assert explorer.version is None and explorer.message.visible
    assert f"workbench model score {NAME}" in explorer.message.object


@pytest.fixture
def predictions(demo_monitored):
    """The stored predictions, read with the public reader and nothing of the views."""
    from workbench.ml import read_predictions

    _, ws, _ = demo_monitored
    frame = read_predictions(ws, NAME).compute()
    frame["flight_date"] = pd.to_datetime(frame["flight_date"])
    return frame


@pytest.fixture
def explorer(demo_monitored):
    from workbench.views import PredictionsExplorer, PredictionStore

    _, ws, _ = demo_monitored
    store = PredictionStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))
    return PredictionsExplorer(store, model=NAME)


def _compare(frame: pd.DataFrame, by) -> pd.DataFrame:
    grouped = frame.groupby(by)
    return pd.DataFrame(
        {
            "rows": grouped.size(),
            "predicted": grouped["score"].mean(),
            "observed": grouped["actual"].mean(),
        }
    )


def test_predictions_explorer_equals_pandas_on_the_stored_predictions(explorer, predictions):
    assert len(explorer.table.value) == len(predictions)  # no filter: every row, paged
    assert explorer.table.pagination == "remote" and explorer.table.page_size == 20
    # The known outcome is the label of the feature rows that were scored.
    assert predictions.actual.notna().all()
    assert set(predictions.actual.unique()) == {0.0, 1.0}

    explorer.param.update(
        dates=(dt.date(2013, 11, 1), dt.date(2013, 12, 31)),
        members={"carrier": ["UA", "DL"], "origin": ["JFK", "LGA"]},
        group_by="carrier",
    )
    expected = predictions[
        (predictions.flight_date >= "2013-11-01")
        & (predictions.flight_date < "2014-01-01")
        & predictions.carrier.isin(["UA", "DL"])
        & predictions.origin.isin(["JFK", "LGA"])
    ]
    assert 1000 < len(expected) < len(predictions)
    shown = explorer.table.value
    assert len(shown) == len(expected)
    assert shown.score.sum() == pytest.approx(expected.score.sum(), rel=1e-12)
    assert set(shown.carrier) == {"UA", "DL"}

    text = explorer.numbers.object
    assert f"**{len(expected):,}** predictions" in text
    assert f"mean predicted **{expected.score.mean():.1%}**" in text
    assert f"observed **{expected.actual.mean():.1%}**" in text
    auc = roc_auc_score(expected.actual.astype(int), expected.score)
    assert f"ROC AUC **{auc:.3f}**" in text

    days = explorer.period_data().set_index("flight_date")
    want = _compare(expected, expected.flight_date.dt.normalize())
    assert days.index.tolist() == want.index.tolist()
    assert days.rows.tolist() == want.rows.tolist()
    np.testing.assert_allclose(days.predicted, want.predicted, rtol=1e-12)
    np.testing.assert_allclose(days.observed, want.observed, rtol=1e-12)

    explorer.period = "month"
    months = explorer.period_data()
    assert months.flight_date.tolist() == [pd.Timestamp("2013-11-01"), pd.Timestamp("2013-12-01")]
    assert months.rows.sum() == len(expected)

    carriers = explorer.group_data().set_index("carrier").sort_index()
    want = _compare(expected, "carrier").sort_index()
    assert carriers.rows.tolist() == want.rows.tolist()
    np.testing.assert_allclose(carriers.observed, want.observed, rtol=1e-12)

    bins = explorer.calibration_data()
    which = np.minimum((expected.score * 10).astype(int), 9)
    want = _compare(expected, which)
    assert bins.rows.tolist() == want.rows.tolist()
    np.testing.assert_allclose(bins.predicted, want.predicted, rtol=1e-12)
    np.testing.assert_allclose(bins.observed, want.observed, rtol=1e-12)


def test_predictions_of_the_test_months_only(explorer, predictions):
    explorer.members = {"_split": ["test"]}
    test = predictions[predictions["_split"] == "test"]
    assert len(explorer.rows()) == len(test)
    assert explorer.rows().flight_date.min() >= pd.Timestamp("2013-11-01")
    explorer.members = {"carrier": ["no such carrier"]}
    assert explorer.table.value.empty
    assert "No predictions match" in explorer.numbers.object


def test_drift_over_time_is_what_monitoring_recorded(store, demo_monitored):
    from workbench.ml import drift_reports
    from workbench.views import ModelsDashboard

    catalog, ws, _ = demo_monitored
    monitor = catalog.models[NAME].monitor
    view = ModelsDashboard(store)
    months = {"2013-09-01": "2013-09", "2013-10-01": "2013-10", "2013-11-01": "2013-11"}
    months["2013-12-01"] = "2013-12"
    reports = {
        r["start"]: r
        for r in drift_reports(ws, NAME)  # oldest first: the latest check of a month wins
        if r["version"] == view.version and r.get("start") in months and r.get("end")
    }
    assert sorted(reports) == list(months)

    history = view.drift_data()
    dated = history[history.window.isin(months.values())]
    assert list(dict.fromkeys(dated.window)) == list(months.values())  # in time order
    for start, report in reports.items():
        shown = dated[dated.window == months[start]].set_index("feature")
        assert len(shown) == len(report["features"])
        for f in report["features"]:
            assert shown.loc[f["feature"], "psi"] == f["psi"]
            assert shown.loc[f["feature"], "drifted"] == f["drifted"]
            assert shown.loc[f["feature"], "rows"] == report["window_rows"]
    assert (history.threshold == monitor.psi).all()
    # Winter temperatures differ from the training months'; calendar features never alert.
    assert "temp" in view.drift_features and "month" not in view.drift_features
    assert not history[history.feature == "month"].drifted.any()

    perf = view.performance_data().set_index("window")
    for start, report in reports.items():
        row = perf.loc[months[start]]
        assert row.value == report["performance"]["window"]
        assert row.reference == view.metadata()["metrics"]["roc_auc"]
        assert row.alert_at == pytest.approx(row.reference - monitor.performance_drop)

    # The chart draws the chosen features and the alert threshold of each window.
    lines, _, alert = view.drift_view()[1].object.values()
    assert sorted(lines.keys()) == sorted(view.drift_features)
    temp = lines["temp"].data
    assert temp.psi.tolist() == history[history.feature == "temp"].psi.tolist()
    assert alert.label == "alert threshold"
    assert (alert.data["threshold"] == monitor.psi).all()
    assert alert.data["window"].tolist() == list(dict.fromkeys(history.window))
