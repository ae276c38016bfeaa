"""The models views without a browser: the registry as stored, and what-if probabilities equal to
LightGBM scoring the same row read back from the model file on its own."""

from __future__ import annotations

import json

import lightgbm
import pandas as pd
import pytest

from .conftest import DEMO_CATALOG


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
