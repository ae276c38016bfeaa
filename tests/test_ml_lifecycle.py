"""Long fits resume after a kill; the retraining policy decides what `workbench run` trains."""

from __future__ import annotations

import json
import subprocess
import sys

import workbench as wb
from workbench.ml.policy import retrain_reasons
from workbench.ml.registry import aliases, list_versions, load_predictor

from .conftest import cli_process, kill_when
from .ml_helpers import catalog_with, copy_workspace

NAME = "departure_delay"
PARAMS = "params: {n_estimators: 300, learning_rate: 0.05, num_leaves: 63, min_child_samples: 50}"


def test_killed_fit_resumes_from_its_checkpoint(demo, tmp_path):
    _, ws, _ = demo
    copy = copy_workspace(ws, tmp_path / "ws")
    before = [v["version"] for v in list_versions(copy, NAME)]
    path = catalog_with(
        tmp_path,
        replace={
            PARAMS: PARAMS.replace("300", "400"),
            "checkpoint_every: 50": "checkpoint_every: 20",
        },
    )
    args = ["model", "train", NAME, "--catalog", str(path), "--workspace", str(copy.root)]
    args.append("--no-promote")
    checkpoints = copy.path("models", NAME, ".checkpoints")
    proc = cli_process(*args)
    assert kill_when(proc, lambda: list(checkpoints.glob("*/step-*.txt")), timeout=600)
    saved = int(next(checkpoints.glob("*/step-*.txt")).name[5:11])
    assert saved >= 20
    assert [v["version"] for v in list_versions(copy, NAME)] == before  # nothing registered

    done = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import app; app()", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["fit"]["resumed_from"] >= saved
    predictor = load_predictor(copy, NAME, out["version"])
    assert predictor.model.num_trees() == 400
    assert out["metrics"]["roc_auc"] > 0.68
    assert not list(checkpoints.glob("*/step-*"))  # cleared once registered


def test_retraining_policy_fires_on_drift_and_promotes_only_a_winner(demo, tmp_path, client):
    catalog, ws, _ = demo
    copy = copy_workspace(ws, tmp_path / "ws")
    assert retrain_reasons(catalog, copy, NAME) == []
    quiet = wb.run_pipeline(catalog, copy, [f"train:{NAME}"], upstream=False)
    assert quiet.steps[0].status == "reused"

    path = catalog_with(
        tmp_path,
        replace={"retrain: {when: [new_data, performance]}": "retrain: {when: [drift]}"},
    )
    drifting = wb.load_catalog(path)
    reasons = retrain_reasons(drifting, copy, NAME)
    assert len(reasons) == 1 and reasons[0].startswith("drift:") and "temp" in reasons[0]
    production = aliases(copy, NAME)["production"]
    run = wb.run_pipeline(drifting, copy, [f"train:{NAME}"], upstream=False)
    step = run.steps[0]
    assert step.status == "succeeded" and step.details["reasons"] == reasons
    # Same data and seed: the new version ties with production, so it stays a candidate.
    assert step.details["promotion"]["promoted"] is False
    assert aliases(copy, NAME) == {"production": production, "candidate": step.outputs["version"]}
