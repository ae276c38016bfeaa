"""Drift monitoring: a shifted window is flagged, a training-like one is not; CLI exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from workbench.cli import app
from workbench.ml.drift import drift_reports, psi
from workbench.ml.features import SPLIT, read_features
from workbench.ml.monitor import monitor_model
from workbench.ml.registry import load_predictor

from .conftest import DEMO_CATALOG

NAME = "departure_delay"


@pytest.fixture(scope="module")
def windows(demo):
    _, ws, _ = demo
    frame = read_features(ws, "flight_features")
    sample = frame[frame[SPLIT] == "train"].sample(frac=0.1, random_state=1)
    return sample, sample.assign(temp=sample.temp + 15)


def test_temperature_plus_15F_is_flagged_and_a_training_sample_is_not(demo, windows):
    catalog, ws, _ = demo
    sample, hot = windows
    calm = monitor_model(catalog, ws, NAME, window=sample, label="training sample")
    assert not calm["alert"] and calm["drifted"] == []
    assert not calm["prediction"]["drifted"]
    shifted = monitor_model(catalog, ws, NAME, window=hot, label="temp + 15F")
    assert shifted["alert"] and shifted["drifted"] == ["temp"]
    temp = next(f for f in shifted["features"] if f["feature"] == "temp")
    assert temp["psi"] > 0.5 and temp["ks"] > 0.2 and temp["ks_pvalue"] < 1e-6

    # The same PSI and KS from the raw values with numpy and scipy.
    edges = np.asarray(load_predictor(ws, NAME).fit_info["reference"]["features"]["temp"]["edges"])
    table = read_features(ws, "flight_features").compute()
    train_temp = table.loc[table[SPLIT] == "train", "temp"].dropna().to_numpy()
    hot_temp = hot.temp.dropna().compute().to_numpy()

    def counts(x):
        return np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)

    a, b = counts(train_temp), counts(hot_temp)
    missing = [
        table.loc[table[SPLIT] == "train", "temp"].isna().sum(),
        hot.temp.isna().sum().compute(),
    ]
    assert temp["psi"] == pytest.approx(psi(np.append(a, missing[0]), np.append(b, missing[1])))
    exact_ks = stats.ks_2samp(train_temp, hot_temp).statistic
    assert temp["ks"] <= exact_ks + 1e-9 and temp["ks"] > exact_ks - 0.06


def test_window_performance_equals_sklearn_auc(demo, windows):
    catalog, ws, _ = demo
    sample, _ = windows
    report = monitor_model(catalog, ws, NAME, window=sample, write=False)
    rows = sample.compute()
    expected = roc_auc_score(rows.dep_delayed.astype(int), load_predictor(ws, NAME).predict(rows))
    assert report["performance"]["window"] == pytest.approx(expected, abs=2e-3)
    assert not report["performance"]["decayed"]


def test_report_files_are_self_contained(demo, windows):
    catalog, ws, _ = demo
    report = monitor_model(catalog, ws, NAME, window=windows[1], label="hot")
    html = Path(report["html"]).read_text(encoding="utf-8")
    assert "temp" in html and "Alert" in html and "<script src=" not in html
    saved = json.loads(Path(report["json"]).read_text(encoding="utf-8"))
    assert saved["drifted"] == ["temp"]
    assert drift_reports(ws, NAME)[-1]["checked_at"] == saved["checked_at"]


def test_monitor_cli_exits_1_past_a_threshold(demo, client):
    _, ws, _ = demo
    args = ["--catalog", str(DEMO_CATALOG), "--workspace", str(ws.root)]
    args += ["--cluster", client.scheduler.address, "--json"]
    winter = CliRunner().invoke(app, ["model", "monitor", NAME, "--from", "2013-12-01", *args])
    assert winter.exit_code == 1, winter.output
    report = json.loads(winter.stdout)
    assert report["alert"] and "temp" in report["drifted"]
    summer = CliRunner().invoke(
        app, ["model", "monitor", NAME, "--from", "2013-03-01", "--to", "2013-09-01", *args]
    )
    report = json.loads(summer.stdout)
    assert summer.exit_code == (1 if report["alert"] else 0)


def test_monitor_every_month_writes_one_report_per_window(demo, client):
    _, ws, _ = demo
    args = ["--catalog", str(DEMO_CATALOG), "--workspace", str(ws.root)]
    args += ["--cluster", client.scheduler.address, "--json"]
    monthly = ["model", "monitor", NAME, "--from", "2013-11-15", "--to", "2014-01-01"]
    done = CliRunner().invoke(app, [*monthly, "--every", "month", *args])
    reports = json.loads(done.stdout)
    assert [(r["start"], r["end"]) for r in reports] == [
        ("2013-11-15", "2013-12-01"),
        ("2013-12-01", "2014-01-01"),
    ]
    assert done.exit_code == (1 if any(r["alert"] for r in reports) else 0)
    dates = read_features(ws, "flight_features", columns=["flight_date"]).compute().flight_date
    for r in reports:
        assert r["window_rows"] == ((dates >= r["start"]) & (dates < r["end"])).sum()
    saved = drift_reports(ws, NAME)[-2:]
    assert [s["checked_at"] for s in saved] == [r["checked_at"] for r in reports]

    no_end = CliRunner().invoke(app, [*monthly[:-2], "--every", "month", *args])
    assert no_end.exit_code == 2 and "--to" in no_end.output
    unknown = CliRunner().invoke(app, [*monthly, "--every", "fortnight", *args])
    assert unknown.exit_code == 2 and "day, week, month, quarter" in unknown.output
