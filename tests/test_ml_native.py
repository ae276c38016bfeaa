"""LightGBM models compiled to native code (workbench.ml.native): same scores, kept safely."""

from __future__ import annotations

import dataclasses
import pickle

import dask
import lightgbm
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import workbench as wb
from workbench.cli import app
from workbench.errors import WorkbenchError
from workbench.ml import native
from workbench.ml.estimators import Predictor
from workbench.ml.features import encode_features, feature_matrix, read_features
from workbench.ml.registry import load_predictor
from workbench.ml.score import read_predictions, score_batch

from .ml_helpers import catalog_with, copy_workspace

SMALL = "delay_small"
SMALL_MODEL = f"""  {SMALL}:
    feature_set: flight_features
    estimator: lightgbm_classifier
    params: {{n_estimators: 25, learning_rate: 0.1, num_leaves: 31, min_child_samples: 50}}
"""


def _real_rows(ws: wb.Workspace) -> tuple[pd.DataFrame, list[str], dict[str, list[str]]]:
    """The demo's feature rows, plus rows a model never saw: an unknown carrier, all missing."""
    rows = read_features(ws, "flight_features").compute().reset_index(drop=True)
    predictor = load_predictor(ws, "departure_delay")
    odd = rows.head(3).copy()
    odd.loc[0, "carrier"] = "ZZ"
    odd.loc[1, predictor.features] = None
    odd.loc[2, "origin"] = None
    return pd.concat([rows, odd], ignore_index=True), predictor.features, predictor.categories


@pytest.mark.parametrize("objective", ["binary", "regression", "poisson"])
def test_compiled_forest_gives_lightgbm_scores(demo, objective):
    _, ws, _ = demo
    rows, features, categories = _real_rows(ws)
    encoded = encode_features(rows, features, categories)
    target = rows["dep_delayed"].astype("float64") if objective == "binary" else rows["distance"]
    train = lightgbm.Dataset(encoded, label=target.fillna(0))
    params = {"objective": objective, "num_leaves": 31, "verbosity": -1, "seed": 1}
    booster = lightgbm.train(params, train, num_boost_round=30)
    expected = booster.predict(encoded)

    forest = native.compile_forest(booster.model_to_string(), len(features))
    matrix = feature_matrix(rows, features, categories)
    np.testing.assert_allclose(forest.predict(matrix), expected, rtol=0, atol=1e-12)
    # Threads split the rows; a pickled copy (what Dask workers get) loads the same code.
    twin = pickle.loads(pickle.dumps(forest))
    np.testing.assert_array_equal(twin.predict(matrix, threads=2), forest.predict(matrix))
    assert native.check(forest, expected, matrix) <= 1e-12
    with pytest.raises(WorkbenchError, match="differs from LightGBM"):
        native.check(forest, expected + 1e-6, matrix)
    with pytest.raises(ValueError, match="matrix"):
        forest.predict(matrix[:, :-1])

    # A predictor scores through the forest on the CPU it was compiled for, and falls back to
    # LightGBM elsewhere (a compute node of another kind, say), with the same numbers.
    task = "classification" if objective == "binary" else "regression"
    plain = Predictor("lightgbm", booster, task, features, categories)
    here = dataclasses.replace(plain, native=forest)
    elsewhere = dataclasses.replace(
        plain,
        native=native.NativeForest(forest.code, len(features), forest.objective, "other-cpu"),
    )
    assert here._native_here() and not elsewhere._native_here()
    np.testing.assert_allclose(here.predict(rows), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(elsewhere.predict(rows), expected, rtol=0, atol=1e-12)


def test_compile_command_keeps_a_checked_forest_that_scoring_uses(demo, tmp_path):
    _, demo_ws, _ = demo
    ws = copy_workspace(demo_ws, tmp_path / "ws")
    path = catalog_with(tmp_path, SMALL_MODEL)
    catalog = wb.load_catalog(path)
    wb.run_pipeline(catalog, ws, [f"train:{SMALL}"], upstream=False)

    with dask.config.set({"workbench.ml-scoring-engine": "lightgbm"}):
        reference = score_batch(catalog, ws, SMALL)
    assert reference.engine == "lightgbm"
    assert not list(ws.path("models", SMALL).rglob("*.o"))

    args = ["--catalog", str(path), "--workspace", str(ws.root)]
    done = CliRunner().invoke(app, ["model", "compile", SMALL, *args, "--json"])
    assert done.exit_code == 0, done.output
    kept = list(ws.path("models", SMALL).rglob("native/*.o"))
    assert len(kept) == 1 and kept[0].with_suffix(".json").exists()

    compiled = score_batch(catalog, ws, SMALL)  # engine "auto" takes the kept forest
    assert compiled.engine == "native" and compiled.rows == reference.rows
    keys = ["flight_date", "carrier", "flight", "origin", "tailnum", "__split"]
    old = read_predictions(ws, SMALL, version=reference.predictions_version).compute()
    new = read_predictions(ws, SMALL, version=compiled.predictions_version).compute()
    joined = old.merge(new, on=[k for k in keys if k in old.columns], suffixes=("", "_native"))
    joined = joined.drop_duplicates(subset=[k for k in keys if k in old.columns], keep=False)
    assert len(joined) > 0.99 * len(old)
    np.testing.assert_allclose(joined["score_native"], joined["score"], rtol=0, atol=1e-12)

    # A changed object file is refused, naming it and what to do.
    code = bytearray(kept[0].read_bytes())
    code[len(code) // 2] ^= 0xFF
    kept[0].write_bytes(bytes(code))
    with pytest.raises(WorkbenchError, match=r"native/.*\.o does not match.*model compile"):
        score_batch(catalog, ws, SMALL)
    wrong = dask.config.set({"workbench.ml-scoring-engine": "fast"})
    with wrong, pytest.raises(WorkbenchError, match="ml-scoring-engine is 'fast'"):
        score_batch(catalog, ws, SMALL)


def test_compiling_a_model_that_is_not_lightgbm_says_so(demo, tmp_path):
    _, demo_ws, _ = demo
    ws = copy_workspace(demo_ws, tmp_path / "ws")
    extra = """  delay_glm:
    feature_set: flight_features
    estimator: logistic_regression
"""
    path = catalog_with(tmp_path, extra)
    wb.run_pipeline(wb.load_catalog(path), ws, ["train:delay_glm"], upstream=False)
    args = ["--catalog", str(path), "--workspace", str(ws.root)]
    done = CliRunner().invoke(app, ["model", "compile", "delay_glm", *args])
    assert done.exit_code != 0
    assert "only LightGBM models compile" in done.output


@pytest.mark.parametrize("text", ["string[pyarrow]", "category", "object"])
def test_feature_matrix_matches_a_column_by_column_build(text):
    """The block-wise matrix equals one built column by column with plain pandas,
    whatever the text's dtype, with numbers of several dtypes between the categories."""
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "carrier": pd.Series(rng.choice(["AA", "UA", "ZZ", None], size=n), dtype=text),
            "b": pd.array(rng.integers(0, 9, size=n), dtype="Int64"),
            "c": rng.normal(size=n).astype("float32"),
            "origin": pd.Series(rng.choice(["JFK", "EWR", None], size=n), dtype=text),
            "d": rng.normal(size=n),
        }
    )
    frame.loc[::7, "b"] = pd.NA
    frame.loc[::5, "a"] = np.nan
    features = ["a", "carrier", "b", "c", "origin", "d"]
    categories = {"carrier": ["AA", "DL", "UA"], "origin": ["EWR", "JFK", "LGA"]}
    expected = np.column_stack(
        [
            frame[c].astype(object).map({v: i for i, v in enumerate(categories[c])})
            if c in categories
            else frame[c].astype("float64")
            for c in features
        ]
    ).astype("float64")
    got = feature_matrix(frame, features, categories)
    assert got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, expected)
    # Unknown ("ZZ") and missing carriers are missing; known ones are their level's position.
    assert np.isnan(got[(frame["carrier"] == "ZZ").fillna(False).to_numpy(bool), 1]).all()
    assert set(np.unique(got[:, 1][~np.isnan(got[:, 1])])) == {0.0, 2.0}
