"""The cube explorer's views without a browser: what they show equals the cube query API's answer
(and, for one drill path, a pandas group-by over the curated table)."""

from __future__ import annotations

import io

import pandas as pd
import pytest

import workbench as wb

from .conftest import DEMO_CATALOG


@pytest.fixture
def store(demo):
    from workbench.views import CubeStore

    _, ws, _ = demo
    return CubeStore(catalog_path=str(DEMO_CATALOG), workspace=str(ws.root))


@pytest.fixture
def cube(demo):
    catalog, ws, _ = demo
    return wb.open_cube(catalog, ws, "flight_delays")


@pytest.fixture
def view(store):
    from workbench.views import CubeExplorer

    return CubeExplorer(store)


def _values(frame: pd.DataFrame, column: str) -> list:
    return frame[column].tolist()


def test_first_view_is_measure_by_carrier_with_airline_names(view, cube, raw_tables):
    shown = view.shown
    expected = cube.query(["carrier"], measures=["flights"])
    assert view.selection.rows == "carrier"
    assert _values(shown, "carrier") == expected.index.tolist()
    assert _values(shown, "flights") == expected["flights"].tolist()
    airlines = raw_tables["airlines"].set_index("carrier")["name"]
    assert shown.set_index("carrier")["name"].to_dict() == airlines.loc[shown.carrier].to_dict()
    # The browser gets the same numbers under fixed fields, headed by the real names.
    assert view.table.value["member"].tolist() == expected.index.tolist()
    assert view.table.value["value"].tolist() == expected["flights"].tolist()
    assert view.table.titles == {"member": "carrier", "value": "flights"}
    # The chart's data source (what Bokeh draws) and its axis hold the same bars.
    assert view.chart.kind == "bar"
    assert list(view.chart.source.data["member"]) == expected.index.tolist()
    assert list(view.chart.source.data["value"]) == expected["flights"].tolist()
    assert view.chart.figure.x_range.factors == expected.index.tolist()


def test_changing_the_measure_and_columns_asks_the_cube(view, cube):
    view.selection.measure = "mean_dep_delay"
    expected = cube.query(["carrier"], measures=["mean_dep_delay"])["mean_dep_delay"]
    assert view.shown["mean_dep_delay"].tolist() == expected.tolist()

    view.selection.columns = "origin"
    pivot = cube.pivot("carrier", "origin", "mean_dep_delay")
    shown = view.shown.set_index("carrier")[["EWR", "JFK", "LGA"]]
    pd.testing.assert_frame_equal(shown, pivot, check_names=False, check_index_type=False)
    assert view.chart.kind == "heatmap"
    cells = pd.DataFrame(view.chart.source.data).set_index(["member", "column"])["value"]
    pd.testing.assert_frame_equal(
        cells.unstack("column")[["EWR", "JFK", "LGA"]], pivot, check_names=False
    )
    assert view.table.titles == {"member": "carrier"}  # the origins head their own columns
    assert view.explain.object.startswith("answered by by_month_carrier_origin")


def test_drill_down_the_time_hierarchy_and_roll_back_up(view, cube):
    sel = view.selection
    sel.rows = "year"
    assert view.chart.kind == "line"  # over time
    assert sel.drill("2013")
    assert sel.rows == "quarter"
    quarters = cube.query(["quarter"], where={"year": "2013-01-01"}, measures=["flights"])
    assert _values(view.shown, "flights") == quarters["flights"].tolist()
    assert _values(view.shown, "quarter") == ["2013-Q1", "2013-Q2", "2013-Q3", "2013-Q4"]

    assert sel.drill("2013-Q3")
    months = cube.query(["month"], where={"quarter": "2013-07-01"}, measures=["flights"])
    assert _values(view.shown, "month") == ["2013-07", "2013-08", "2013-09"]
    assert _values(view.shown, "flights") == months["flights"].tolist()
    assert sel.breadcrumb() == ["All", "year 2013", "quarter 2013-Q3"]

    sel.roll_up(1)
    assert sel.rows == "quarter" and sel.breadcrumb() == ["All", "year 2013"]
    sel.roll_up(0)
    assert sel.rows == "year" and sel.path == []


def test_drill_at_the_finest_level_opens_the_next_dimension(view, demo):
    catalog, ws, _ = demo
    sel = view.selection
    sel.rows, sel.filters = "carrier", {"month": ["2013-07", "2013-08"]}
    assert sel.drill("UA")
    assert sel.rows == "origin" and sel.breadcrumb() == ["All", "carrier UA"]
    # Independent: the curated flights grouped by pandas.
    flights = wb.read_dataset(
        catalog, ws, "flights_enriched", columns=["carrier", "origin", "flight_date"]
    ).compute()
    months = pd.to_datetime(flights.flight_date).dt.month
    ua = flights[(flights.carrier == "UA") & months.isin([7, 8])]
    expected = ua.groupby("origin").size()
    shown = view.shown.set_index("origin")["flights"]
    assert shown.to_dict() == expected.to_dict()
    assert not sel.drill("XX"), "a member the level does not have is refused"


def test_filters_keep_chosen_members(view, cube):
    sel = view.selection
    sel.param.update(rows="origin", filters={"carrier": ["UA", "AA"], "dest": ["LAX"]})
    where = {"carrier": ["UA", "AA"], "dest": ["LAX"]}
    expected = cube.query(["origin"], where=where, measures=["flights"], having="flights > 0")
    assert _values(view.shown, "origin") == expected.index.tolist() == ["EWR", "JFK"]
    assert _values(view.shown, "flights") == expected["flights"].tolist()
    sel.non_empty = False  # members without flights come back, with 0
    assert _values(view.shown, "origin") == ["EWR", "JFK", "LGA"]
    assert view.shown.set_index("origin").loc["LGA", "flights"] == 0
    assert set(sel.filter_levels().values()) == {"month", "carrier", "origin", "dest"}


def test_downloads_hold_the_table_shown(view):
    view.selection.columns = "origin"
    shown = view.shown
    csv = pd.read_csv(io.StringIO(view._csv().getvalue()))
    assert csv["carrier"].tolist() == shown["carrier"].tolist()
    pd.testing.assert_series_equal(csv["JFK"], shown["JFK"], check_dtype=False)
    assert shown["JFK"].isna().any(), "carriers without JFK flights show an empty cell"
    excel = pd.read_excel(view._excel())
    pd.testing.assert_series_equal(excel["EWR"], shown["EWR"], check_dtype=False)
    assert view.csv.filename == "flight_delays_flights_by_carrier.csv"


def test_a_link_with_an_unknown_member_says_so_and_keeps_the_view(view):
    before = view.shown.copy()
    view.selection.path = [["carrier", "ZZ", "carrier"]]
    assert view.message.visible and "no member" in view.message.object
    pd.testing.assert_frame_equal(view.shown, before)


def test_a_click_on_a_categorical_axis_names_the_factor_under_it():
    from bokeh.models import FactorRange

    from workbench.views.cube_chart import _factor_at

    axis = FactorRange(factors=["AA", "B6", "UA"])  # factor i spans [i, i + 1)
    assert [_factor_at(axis, x) for x in (0.0, 1.4, 2.99)] == ["AA", "B6", "UA"]
    assert _factor_at(axis, -0.1) is None and _factor_at(axis, 3.0) is None
    assert _factor_at(None, 1.0) is None
