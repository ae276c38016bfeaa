"""Batch scoring into versioned predictions, and one-record predictions."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.ml.features import read_features
from workbench.ml.registry import aliases, load_predictor
from workbench.ml.score import predict_one, read_predictions, score_batch

NAME = "departure_delay"
KEYS = ["flight_date", "carrier", "flight", "origin", "tailnum"]


def test_batch_scores_equal_the_model_on_pandas_and_are_versioned(demo):
    catalog, ws, _ = demo
    first = score_batch(catalog, ws, NAME)
    preds = read_predictions(ws, NAME).compute()
    features = read_features(ws, "flight_features").compute()
    assert len(preds) == first.rows == len(features)
    assert (preds.model == NAME).all()
    assert (preds.model_version == aliases(ws, NAME)["production"]).all()
    assert (preds.predicted == (preds.score >= 0.5)).all()
    expected = load_predictor(ws, NAME).predict(features)
    np.testing.assert_allclose(np.sort(preds.score.to_numpy()), np.sort(expected), rtol=1e-9)
    unique = features.drop_duplicates(KEYS, keep=False).assign(expected=None)
    unique["expected"] = load_predictor(ws, NAME).predict(unique)
    merged = unique.merge(preds.drop_duplicates(KEYS, keep=False), on=KEYS)
    assert len(merged) > 0.99 * len(unique)
    np.testing.assert_allclose(merged.score, merged.expected.astype(float), rtol=1e-9)

    second = score_batch(catalog, ws, NAME, input_dataset="flights_enriched")
    assert second.predictions_version == first.predictions_version + 1
    again = read_predictions(ws, NAME).compute()
    assert len(again) == len(preds)
    assert again.score.sum() == pytest.approx(preds.score.sum(), rel=1e-9)
    old = read_predictions(ws, NAME, version=first.predictions_version).compute()
    assert len(old) == len(preds)  # the previous version stays readable


def test_predict_one_is_the_batch_score_of_that_row(demo):
    _, ws, _ = demo
    rows = read_features(ws, "flight_features").head(20)
    batch = load_predictor(ws, NAME).predict(rows)
    for i in (0, 7):
        one = predict_one(ws, NAME, rows.iloc[i].to_dict())
        assert one["score"] == pytest.approx(batch[i], rel=1e-12)
        assert one["version"] == aliases(ws, NAME)["production"]
    # A what-if: the same flight, with the plane's previous departure two hours late, scores
    # as the batch scores that row changed in the frame. (Whether the score goes up is the
    # model's business: LightGBM trained across workers differs with where the rows were.)
    base = rows.iloc[0].to_dict()
    changed = rows.iloc[[0, 0]].reset_index(drop=True)
    changed.loc[0, "plane_prev_delay"], changed.loc[1, "plane_prev_delay"] = 120.0, 0.0
    want = load_predictor(ws, NAME).predict(changed)
    for i, delay in enumerate((120.0, 0.0)):
        got = predict_one(ws, NAME, base | {"plane_prev_delay": delay})["score"]
        assert got == pytest.approx(want[i], rel=1e-12)
    partial = predict_one(ws, NAME, {"carrier": "UA", "origin": "EWR", "hour": 17})
    assert 0 < partial["score"] < 1


def test_scoring_an_unknown_model_names_the_choices(demo):
    catalog, ws, _ = demo
    with pytest.raises(wb.DatasetNotFound, match="departure_delay"):
        score_batch(catalog, ws, "nope")


def test_prediction_provenance_and_columns_are_public(demo_monitored):
    from workbench.ml import prediction_columns, prediction_provenance, predictions_version

    _, ws, step = demo_monitored
    version = predictions_version(ws, "departure_delay")
    assert version is not None and predictions_version(ws, "nope") is None
    made = prediction_provenance(ws, "departure_delay", version)
    assert made["model_version"] == step.details["model_version"]
    assert {"score", "predicted"} <= set(prediction_columns(ws, "departure_delay", version))
    with pytest.raises(wb.WorkspaceError, match="no version 999"):
        prediction_provenance(ws, "departure_delay", 999)
