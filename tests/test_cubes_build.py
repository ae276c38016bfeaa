"""Cube builds: incremental refresh equals a full rebuild; hierarchies must nest."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import workbench as wb
from workbench.cubes.build import current_version, refresh_cube
from workbench.errors import CubeError
from workbench.io.delta import open_table, read_table, write_table

from .conftest import DEMO_CATALOG


def _workspace_with(demo, tmp_path, transform):
    """A workspace whose curated flights are the demo's, passed through ``transform``."""
    catalog, ws, _ = demo
    other = wb.Workspace(tmp_path)
    write_table(read_table(ws.path("lake", "airlines")), other.path("lake", "airlines"))
    flights = read_table(ws.path("curated", "flights_enriched"))
    write_table(transform(flights), other.path("curated", "flights_enriched"))
    return catalog, other


def _cuboids(ws, name="flight_delays"):
    _, folder = current_version(ws, name)
    return {p.stem: xr.open_zarr(p, consolidated=True).load() for p in folder.glob("*.zarr")}


def test_refresh_of_a_time_range_equals_a_full_rebuild(demo, tmp_path):
    catalog, ws, _ = demo
    july = np.datetime64("2013-07-01")

    def wrong_delays(df):  # the second half-year first arrives with wrong delays
        late = df.flight_date >= july
        return df.assign(dep_delay=df.dep_delay.where(~late, df.dep_delay + 7))

    _, stale = _workspace_with(demo, tmp_path / "a", wrong_delays)
    wb.build_cube(catalog, stale, "flight_delays")
    write_table(
        read_table(ws.path("curated", "flights_enriched")),
        stale.path("curated", "flights_enriched"),
    )
    refreshed = refresh_cube(catalog, stale, "flight_delays", "2013-07-01")
    assert refreshed.mode.startswith("refresh")
    _, fresh = _workspace_with(demo, tmp_path / "b", lambda df: df)
    wb.build_cube(catalog, fresh, "flight_delays")
    got, want = _cuboids(stale), _cuboids(fresh)
    assert set(got) == set(want)
    for name in want:
        xr.testing.assert_allclose(
            got[name].reset_coords(drop=True), want[name].reset_coords(drop=True), rtol=1e-12
        )


def test_refresh_appends_new_periods(demo, tmp_path):
    catalog, ws, _ = demo
    december = np.datetime64("2013-12-01")
    _, grown = _workspace_with(demo, tmp_path / "a", lambda df: df[df.flight_date < december])
    wb.build_cube(catalog, grown, "flight_delays")
    write_table(
        read_table(ws.path("curated", "flights_enriched")),
        grown.path("curated", "flights_enriched"),
    )
    refreshed = refresh_cube(catalog, grown, "flight_delays", "2013-12-01")
    cube = wb.open_cube(catalog, grown, "flight_delays")
    assert refreshed.shape["day"] == 365 and cube.dataset.sizes["day"] == 365
    full = wb.open_cube(catalog, ws, "flight_delays")
    by_month = cube.query(["month"], measures=["flights", "dep_delay_sum"])
    np.testing.assert_array_equal(
        by_month.flights, full.query(["month"], measures=["flights"]).flights
    )
    np.testing.assert_allclose(
        by_month.dep_delay_sum, full.query(["month"], measures=["dep_delay_sum"]).dep_delay_sum
    )


def test_a_level_that_does_not_nest_is_reported_with_examples(demo, tmp_path):
    _, ws, _ = demo
    text = DEMO_CATALOG.read_text()
    routes = (
        "cubes:\n  routes:\n    source: flights_enriched\n    dimensions:\n"
        "      dest: {column: dest, parents: [origin]}\n"
        "    measures:\n      flights: {agg: count}\n\n"
    )
    path = tmp_path / "catalog.yaml"
    rest = text[text.index("\nfeatures:\n") + 1 :]  # feature sets and models
    path.write_text(text[: text.index("cubes:\n")] + routes + rest)
    catalog = wb.load_catalog(path)
    with pytest.raises(CubeError, match=r"dest '\w+' has parents (EWR|JFK|LGA), "):
        wb.build_cube(catalog, ws, "routes")


def test_versions_are_kept_and_switched(demo, tmp_path):
    catalog, ws = _workspace_with(demo, tmp_path, lambda df: df)
    first = wb.build_cube(catalog, ws, "flight_delays")
    second = wb.build_cube(catalog, ws, "flight_delays")
    assert second.version == first.version + 1
    assert current_version(ws, "flight_delays")[0] == second.version
    assert first.path.exists()  # the previous version stays until keep_versions is exceeded


def test_cube_over_a_current_curated_table_joins_on_the_fly_and_equals_reading_it(demo):
    """The fused build (lake tables joined inside the build tasks) gives the very cells the
    materialised curated table gives; it is taken only while that table is current."""
    import dask

    from workbench.cubes.dense import source_files
    from workbench.zones.curated import is_current

    catalog, ws, _ = demo
    cube = catalog.cubes["flight_delays"]
    assert is_current(catalog, ws, "flights_enriched")
    fused = source_files(catalog, ws, cube)
    assert fused.view is not None and fused.view.source == "flights"
    wb.build_cube(catalog, ws, "flight_delays")
    got = _cuboids(ws)
    with dask.config.set({"workbench.cube-fuse-joins": False}):
        assert source_files(catalog, ws, cube).view is None
        wb.build_cube(catalog, ws, "flight_delays")
    want = _cuboids(ws)
    assert set(got) == set(want)
    for name in want:
        xr.testing.assert_identical(got[name], want[name])


def test_a_curated_table_older_than_its_sources_is_read_not_recomputed(demo, tmp_path):
    catalog, ws, _ = demo
    from workbench.cubes.dense import source_files
    from workbench.zones.curated import is_current

    _, other = _workspace_with(demo, tmp_path, lambda df: df)  # written by hand: no sources
    assert not is_current(catalog, other, "flights_enriched")
    assert source_files(catalog, other, catalog.cubes["flight_delays"]).view is None
    for name in ("flights", "airports", "planes", "weather"):
        write_table(read_table(ws.path("lake", name)), other.path("lake", name))
    wb.build_curated(catalog, other, "flights_enriched")
    assert is_current(catalog, other, "flights_enriched")
    airlines = read_table(other.path("lake", "airlines"))
    write_table(airlines, other.path("lake", "airlines"))  # a new version of one source
    assert not is_current(catalog, other, "flights_enriched")


def test_a_joined_table_with_repeated_keys_is_refused_by_name(demo, tmp_path):
    """Workers read the right-hand tables of a fused build themselves; repeated keys there
    would duplicate rows, so indexing them fails with the dataset, keys and the fix."""
    import dask.dataframe as dd
    import pandas as pd

    from workbench.errors import WorkbenchError
    from workbench.zones.curated import _right_plan
    from workbench.zones.joins import DirectLookup

    catalog, ws, _ = demo
    airlines = read_table(ws.path("lake", "airlines")).compute()
    other = wb.Workspace(tmp_path)
    twice = pd.concat([airlines, airlines.head(2)], ignore_index=True)
    write_table(dd.from_pandas(twice, npartitions=1), other.path("lake", "airlines"))
    join = next(j for j in catalog.datasets["flights_enriched"].joins if j.dataset == "airlines")
    files = open_table(other.path("lake", "airlines"), 0).file_uris()
    side = _right_plan(catalog, join, files, {"airline_name"})
    assert len(side.read()) == len(twice)
    with pytest.raises(WorkbenchError, match=r"airlines on \['carrier'\]: keys are not unique"):
        side.step()
    # Integer keys take the direct lookup, which also refuses repeats (then the check names them).
    keys = pd.DataFrame({"__key0": [3, 1, 3], "v": [1.0, 2.0, 3.0]})
    assert DirectLookup.build(keys, ["__key0"]) is None
    assert DirectLookup.build(keys.drop_duplicates("__key0"), ["__key0"]) is not None


def test_direct_lookup_matches_only_whole_keys():
    """The direct lookup joins integer and float keys alike; a missing, negative, fractional or
    too large key finds no row (rather than the row of its truncation), and rows that all match
    keep the right side's values and dtypes."""
    import pandas as pd

    from workbench.catalog.models import Join
    from workbench.zones.joins import DirectLookup

    right = pd.DataFrame({"__key0": [0, 1, 2, 3], "name": pd.Categorical(["a", "b", "c", "d"])})
    lookup = DirectLookup.build(right, ["__key0"])
    assert lookup is not None
    join = Join(dataset="r", left_on="k", right_on="id", how="left")
    floats = pd.DataFrame({"k": [1.0, 2.5, float("nan"), -1.0, 9.0, 3.0]})
    got = lookup.join(floats, join)["name"]
    assert got.tolist()[0] == "b" and got.tolist()[5] == "d"
    assert got.iloc[1:5].isna().all()
    ints = pd.DataFrame({"k": pd.array([3, 0, 2], dtype="Int64")})
    got = lookup.join(ints, join)["name"]
    assert got.tolist() == ["d", "a", "c"] and isinstance(got.dtype, pd.CategoricalDtype)
    assert lookup.join(ints.assign(k=pd.array([3, None, 2], dtype="Int64")), join)[
        "name"
    ].isna().tolist() == [False, True, False]
