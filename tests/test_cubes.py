"""Every cube query type against DuckDB asking the same question of the curated table."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.cubes import Query
from workbench.io.delta import open_table


@pytest.fixture(scope="module")
def cube(demo):
    catalog, ws, _ = demo
    return wb.open_cube(catalog, ws, "flight_delays")


@pytest.fixture(scope="module")
def sql(demo):
    _, ws, _ = demo
    files = open_table(ws.path("curated", "flights_enriched")).file_uris()
    con = duckdb.connect()
    con.execute(f"CREATE VIEW f AS SELECT * FROM read_parquet({files})")

    def ask(query: str) -> pd.DataFrame:
        return con.execute(query).df()

    return ask


MEASURES = """count(*) AS flights, sum(dep_delay) AS dep_delay_sum,
              avg(dep_delay) AS mean_dep_delay, max(dep_delay) AS dep_delay_max,
              min(dep_delay) AS dep_delay_min,
              count(*) FILTER (WHERE dep_delay > 120) AS long_delays"""
NAMES = [
    "flights",
    "dep_delay_sum",
    "mean_dep_delay",
    "dep_delay_max",
    "dep_delay_min",
    "long_delays",
]


def same(got: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Equal counts and sums exactly (sums to float rounding), means to 1e-9."""
    got = got[got.flights > 0].reset_index()
    for key in keys:
        if pd.api.types.is_datetime64_any_dtype(got[key]):
            expected[key] = pd.to_datetime(expected[key]).astype(got[key].dtype)
    merged = got.merge(expected, on=keys, suffixes=("", "_sql"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    for name in [c for c in NAMES if c in got.columns]:
        ours, theirs = merged[name].to_numpy(float), merged[f"{name}_sql"].to_numpy(float)
        if name in ("flights", "long_delays"):
            np.testing.assert_array_equal(ours, theirs)
        else:
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, equal_nan=True)


def test_slice(cube, sql):
    got = cube.run(Query(("carrier",), measures=tuple(NAMES)).slice(origin="JFK"))
    same(
        got,
        sql(f"SELECT carrier, {MEASURES} FROM f WHERE origin = 'JFK' GROUP BY carrier"),
        ["carrier"],
    )


def test_dice_with_members_and_a_time_range(cube, sql):
    q = Query(("quarter", "carrier"), measures=tuple(NAMES)).dice(
        dest=["LAX", "SFO"], month=slice("2013-03-01", "2013-08-01")
    )
    expected = sql(f"""SELECT date_trunc('quarter', flight_date) AS quarter, carrier, {MEASURES}
        FROM f WHERE dest IN ('LAX', 'SFO') AND date_trunc('month', flight_date)
        BETWEEN DATE '2013-03-01' AND DATE '2013-08-01' GROUP BY ALL""")
    same(cube.run(q), expected, ["quarter", "carrier"])


def test_roll_up_to_a_coarser_level_and_away(cube, sql):
    q = Query(("month", "origin"), measures=tuple(NAMES))
    same(
        cube.run(q.roll_up("month", "year")),
        sql(
            f"SELECT date_trunc('year', flight_date) AS year, origin, {MEASURES} "
            "FROM f GROUP BY ALL"
        ),
        ["year", "origin"],
    )
    same(
        cube.run(q.roll_up("month")),
        sql(f"SELECT origin, {MEASURES} FROM f GROUP BY ALL"),
        ["origin"],
    )


def test_drill_down_within_a_member(cube, sql):
    q = Query(("month",), measures=tuple(NAMES)).drill_down("month", "day", member="2013-07-01")
    expected = sql(f"""SELECT flight_date AS day, {MEASURES} FROM f
        WHERE date_trunc('month', flight_date) = DATE '2013-07-01' GROUP BY ALL""")
    got = cube.run(q)
    assert len(got) == 31
    same(got, expected, ["day"])


def test_parent_level_of_a_categorical_hierarchy(cube, sql):
    got = cube.run(Query(("dest_tzone", "month"), measures=tuple(NAMES)))
    expected = sql(f"""SELECT coalesce(dest_tzone, '(missing)') AS dest_tzone,
        date_trunc('month', flight_date) AS month, {MEASURES} FROM f GROUP BY ALL""")
    same(got, expected, ["dest_tzone", "month"])


def test_pivot_top_n_and_filter(cube, sql):
    pivot = cube.pivot("origin", "quarter", "flights")
    expected = sql("""SELECT origin, date_trunc('quarter', flight_date) AS quarter,
        count(*) AS n FROM f GROUP BY ALL""")
    for row in expected.itertuples():
        assert pivot.loc[row.origin, pd.Timestamp(row.quarter)] == row.n
    top = cube.top_n(5, "dest", "flights")
    sql_top = sql("SELECT dest, count(*) AS n FROM f GROUP BY dest ORDER BY n DESC LIMIT 5")
    assert top.index.tolist() == sql_top.dest.tolist()
    assert top.flights.tolist() == sql_top.n.tolist()
    busy = cube.run(Query(("carrier",), measures=("flights",)).filter("flights > 20000"))
    sql_busy = sql("SELECT carrier FROM f GROUP BY carrier HAVING count(*) > 20000")
    assert sorted(busy.index) == sorted(sql_busy.carrier)


def test_routing_picks_the_smallest_cuboid_that_can_answer(cube):
    plan = cube.explain(Query(("carrier", "month")))
    assert plan.chosen == "by_month_carrier_origin"
    assert "lacks level(s) ['carrier']" in plan.reasons["by_day_origin"]
    assert cube.explain(Query(("day", "dest"))).chosen == "base"
    assert cube.explain(Query(("dest_tzone",))).chosen == "by_month_dest_tzone"
    with pytest.raises(wb.WorkbenchError, match="no level"):
        cube.explain(Query(("week",)))


def test_answers_as_xarray(cube):
    ds = cube.query(["month", "origin"], measures=["flights"], as_xarray=True)
    assert ds.flights.sizes == {"month": 12, "origin": 3}
    assert int(ds.flights.sum()) == 329_174
