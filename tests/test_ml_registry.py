"""The model registry: aliases, promotion by margin, rollback, checksums, safe loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.ml.estimators import Predictor
from workbench.ml.features import SPLIT, read_features
from workbench.ml.promotion import promote_model
from workbench.ml.registry import (
    alias_history,
    aliases,
    list_versions,
    load_predictor,
    register_model,
    rollback,
)
from workbench.ml.train import train_model

from .conftest import DEMO_CATALOG
from .ml_helpers import copy_workspace

runner = CliRunner()
NAME = "departure_delay"


@pytest.fixture(scope="module")
def registry_ws(demo, tmp_path_factory):
    catalog, ws, _ = demo
    return catalog, copy_workspace(ws, tmp_path_factory.mktemp("registry") / "ws")


def _cli(ws, *args):
    return runner.invoke(
        app, ["model", *args, "--catalog", str(DEMO_CATALOG), "--workspace", str(ws.root)]
    )


def test_losing_promotion_is_refused_then_forced_and_rolled_back(registry_ws):
    catalog, ws = registry_ws
    first = aliases(ws, NAME)["production"]
    weak = train_model(catalog, ws, NAME, params={"n_estimators": 5, "num_leaves": 4})
    version = weak.registered.version
    assert not weak.promotion.promoted and weak.promotion.reason.startswith("refused")
    assert aliases(ws, NAME) == {"production": first, "candidate": version}
    # The scores compared are both models on the candidate's test rows, recomputed here.
    table = read_features(ws, "flight_features").compute()
    test = table[table[SPLIT] == "test"]
    y = test["dep_delayed"].astype(int)
    for v, score in (
        (version, weak.promotion.candidate_score),
        (first, weak.promotion.production_score),
    ):
        assert roc_auc_score(y, load_predictor(ws, NAME, v).predict(test)) == pytest.approx(score)
    assert weak.promotion.candidate_score < weak.promotion.production_score

    refused = _cli(ws, "promote", NAME)
    assert refused.exit_code == 1 and "refused" in refused.output
    assert aliases(ws, NAME)["production"] == first

    assert promote_model(catalog, ws, NAME, force=True).promoted
    assert aliases(ws, NAME)["production"] == version
    assert load_predictor(ws, NAME).fit_info["version"] == version  # production is the default
    listed = {v["version"]: v["aliases"] for v in list_versions(ws, NAME)}
    assert set(listed[version]) == {"production", "candidate"}

    done = _cli(ws, "rollback", NAME)
    assert done.exit_code == 0, done.output
    assert aliases(ws, NAME)["production"] == first
    assert [e["reason"] for e in alias_history(ws, NAME)][-2:] == ["forced", "rollback"]
    with pytest.raises(wb.WorkbenchError, match="no earlier version"):
        rollback(ws, NAME)


def test_registered_files_are_read_only_and_a_tampered_file_is_refused(demo, registry_ws):
    _, demo_ws, _ = demo
    folder = next(p for p in demo_ws.path("models", NAME).iterdir() if p.name.isdigit())
    assert all((f.stat().st_mode & 0o222) == 0 for f in folder.iterdir())
    _, ws = registry_ws
    model_file = ws.path("models", NAME, "1", "model.txt")
    model_file.write_text(model_file.read_text().replace("tree", "tree ", 1))
    with pytest.raises(wb.WorkbenchError, match="sha256"):
        load_predictor(ws, NAME, 1)
    result = _cli(ws, "show", NAME, "--version", "1", "--json")
    assert result.exit_code == 0  # metadata stays readable; only loading the model is refused
    assert json.loads(result.output)["version"] == 1


class Untrusted:
    """Not a scikit-learn type: the registry must refuse to load it."""

    def predict(self, X):
        return np.zeros(len(X))


def test_skops_file_with_foreign_types_is_refused(tmp_path):
    ws = wb.Workspace(tmp_path)
    predictor = Predictor("sklearn", Untrusted(), "classification", ["x"], {})
    register_model(ws, "odd", predictor, {"estimator": "custom"})
    with pytest.raises(wb.WorkbenchError, match="Untrusted"):
        load_predictor(ws, "odd")


def test_model_list_and_show_cli(demo):
    _, ws, _ = demo
    listed = _cli(ws, "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert any(r["model"] == NAME and "production" in r["aliases"] for r in rows)
    shown = _cli(ws, "show", NAME)
    assert shown.exit_code == 0 and "Feature importance" in shown.output
    missing = _cli(ws, "show", "no_such_model")
    assert missing.exit_code == 2 and "no model 'no_such_model'" in missing.output
