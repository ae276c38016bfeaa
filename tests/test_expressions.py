"""The catalog's expression language: attacks refused with the key path, nothing executed;
allowed forms equal the same computation written in pandas."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes
from typer.testing import CliRunner

from workbench.catalog.expressions import (
    MAX_LENGTH,
    ExpressionError,
    evaluate,
    expression_columns,
)
from workbench.cli import app
from workbench.cubes.query import CubeReader, Cuboid

CATALOG = """\
version: 1
workspace: {workspace}
datasets:
  orders:
    zone: lake
    source: {{path: orders.csv}}
    schema: {{order_id: int, amount: float, status: string, placed: datetime}}
    rules:
      - {{rule: not_null, columns: [order_id]}}
      - {{rule: expression, expr: {rule}, name: checked}}
  sales:
    zone: curated
    from: orders
    derived:
      big: {derived}
cubes:
  revenue:
    source: sales
    dimensions:
      status: {{column: status}}
    measures:
      orders: {{agg: count}}
      amount: {{agg: sum, column: amount, where: {where}}}
    derived_measures:
      mean_amount: {measure}
features:
  order_features:
    source: sales
    where: {feature}
    columns: [amount]
    label: big
    split: {{column: placed, test_from: 2024-06-01}}
"""
SAFE = {
    "rule": "amount.isna() | (amount >= 0)",
    "derived": "amount > 100",
    "where": "status != 'void'",
    "measure": "amount / orders",
    "feature": "not big",
}
# Where each expression sits, as the error must name it.
KEY_PATHS = {
    "rule": "datasets.orders.rules[1].expr",
    "derived": "datasets.sales.derived.big",
    "where": "cubes.revenue.measures.amount.where",
    "measure": "cubes.revenue.derived_measures.mean_amount",
    "feature": "features.order_features.where",
}


def _attacks(marker) -> list[str]:
    touch = f"touch {marker}"
    return [
        f"__import__('os').system('{touch}')",
        "@os.system",
        "amount.__class__.__mro__",
        "amount.__class__.__base__.__subclasses__()",
        f"amount.to_pickle('{marker}')",
        f"(lambda: __import__('os').system('{touch}'))()",
        "[c for c in amount]",
        "amount.__getitem__(0)",
        "amount[0]",
        "amount[amount > 0]",
        f"eval(\"__import__('os').system('{touch}')\")",
        "amount if big else 0",
        "amount.pipe(print)",
        "amount.dt.tz_localize('UTC')",
        "amount.str.replace('a', 'b')",
        "status.str.contains('(a+)+$', True)",
        "amount > 1 " + "& amount > 1 " * 300,  # too long
        "amount > 1 " + "& amount > 1 " * 140,  # short enough, too many parts
        "-" * 100 + "amount",
        "(" * 250 + "amount" + ")" * 250,  # past the parser's nesting limit
    ]


def _write(tmp_path, **exprs) -> str:
    quoted = {k: json.dumps(v) for k, v in {**SAFE, **exprs}.items()}  # JSON strings are YAML
    text = CATALOG.format(workspace=tmp_path / "ws", **quoted)
    path = tmp_path / "catalog.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def _check(path: str):
    return CliRunner().invoke(app, ["catalog", "check", "--catalog", path])


def test_the_safe_catalog_checks(tmp_path):
    result = _check(_write(tmp_path))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("where", list(KEY_PATHS))
@pytest.mark.parametrize("attack", range(len(_attacks("m"))))
def test_catalog_check_refuses_each_attack_naming_the_key(tmp_path, where, attack):
    marker = tmp_path / "ran"
    expr = _attacks(marker)[attack]
    result = _check(_write(tmp_path, **{where: expr}))
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())  # rich wraps long lines
    assert KEY_PATHS[where] in flat
    assert any(why in flat for why in ("not allowed", "not valid", "more than", "longer than"))
    assert not marker.exists()


@pytest.mark.parametrize("attack", range(len(_attacks("m"))))
def test_evaluating_an_attack_directly_runs_nothing(tmp_path, attack):
    marker = tmp_path / "ran"
    frame = pd.DataFrame({"amount": [1.0, -2.0], "big": [True, False], "status": ["a", "b"]})
    before = frame.copy()
    with pytest.raises(ExpressionError):
        evaluate(_attacks(marker)[attack], frame)
    assert not marker.exists()
    pd.testing.assert_frame_equal(frame, before)


def test_messages_name_the_construct_and_the_choices(tmp_path):
    result = _check(_write(tmp_path, rule="amount.to_pickle('x')"))
    flat = " ".join(result.output.split())
    assert "method 'to_pickle' is not allowed" in flat and ".isna()" in flat
    with pytest.raises(ExpressionError, match="`@` local variables are not allowed"):
        evaluate("@os", pd.DataFrame())
    with pytest.raises(ExpressionError, match=f"longer than the {MAX_LENGTH}"):
        evaluate("a + " * MAX_LENGTH + "a", pd.DataFrame({"a": [1]}))


@pytest.mark.parametrize(
    ("where", "expr", "path"),
    [
        ("rule", "amont > 0", "datasets.orders.rules[1].expr"),
        ("derived", "amount > limit", "datasets.sales.derived.big"),
        ("where", "amount.isna() | stat == 'x'", "cubes.revenue.measures.amount.where"),
        ("feature", "not huge", "features.order_features.where"),
    ],
)
def test_unknown_columns_are_catalog_errors(tmp_path, where, expr, path):
    result = _check(_write(tmp_path, **{where: expr}))
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    unknown = next(n for n in expression_columns(expr) if n not in ("amount", "status", "big"))
    assert path in flat and f"'{unknown}' is not a column" in flat


def test_a_derived_measure_must_combine_stored_measures(tmp_path):
    result = _check(_write(tmp_path, measure="amount / order_id"))
    assert result.exit_code == 2 and "are not stored measures" in result.output


def test_a_cube_stored_with_a_malicious_derived_measure_is_refused_at_query(tmp_path):
    # The workspace is data: cube metadata written by anyone with write access to it must not
    # run on the dashboard server.
    marker = tmp_path / "ran"
    ds = xr.Dataset(
        {"orders": ("status", np.array([2.0, 3.0])), "amount": ("status", np.array([5.0, 9.0]))},
        coords={"status": ["a", "b"]},
    )
    for var in ds.data_vars.values():
        var.attrs["agg"] = "sum"
    ds.attrs["derived_measures"] = {
        "mean_amount": "amount / orders",
        "evil": f"__import__('os').system('touch {marker}')",
    }
    cube = CubeReader("c", 1, (Cuboid("base", ds),), {"status": ("status", "grain")})
    good = cube.query(["status"], measures=["mean_amount"], having="orders > 2")
    assert good["mean_amount"].tolist() == [3.0]
    with pytest.raises(ExpressionError, match="method 'system' is not allowed"):
        cube.query(["status"], measures=["evil"])
    with pytest.raises(ExpressionError, match="attribute '__class__'"):
        cube.query(["status"], measures=["orders"], having="orders.__class__")
    assert not marker.exists()


# --- allowed forms against pandas ----------------------------------------------------------

FLOATS = st.floats(-1e6, 1e6) | st.just(float("nan"))
FRAMES = data_frames(
    [
        column("a", dtype=float, elements=FLOATS),
        column("b", dtype=float, elements=FLOATS),
        column("n", dtype=int, elements=st.integers(-1000, 1000)),
        column("s", elements=st.sampled_from(["JFK", "EWR", "=x", "", "LGA"])),
        column("k", dtype=bool, elements=st.booleans()),
    ],
    index=range_indexes(min_size=0, max_size=30),
)


def _by_hand(df: pd.DataFrame) -> dict[str, pd.Series]:
    """The same computations written in pandas, one per expression form."""
    a, b, n, s, k = df.a, df.b, df.n, df.s, df.k
    return {
        "a + b * 2 - n / 4": a + b * 2 - n / 4,
        "(a - b) ** 2 % 7 // 1": (a - b) ** 2 % 7 // 1,
        "-a + +b": -a + b,
        "a > 1 & b < 2": (a > 1) & (b < 2),
        "a > 1 | b.isna()": (a > 1) | b.isna(),
        "a > 0 and not k or n == 3": ((a > 0) & ~k) | (n == 3),
        "~k": ~k,
        "-5 < n <= 5": (n > -5) & (n <= 5),
        "s in ['JFK', 'LGA']": s.isin(["JFK", "LGA"]),
        "s not in ('JFK',)": ~s.isin(["JFK"]),
        "s == 'EWR'": s == "EWR",
        "a.notna() | n.isnull()": a.notna() | n.isna(),
        "isna(a) & notna(b)": a.isna() & b.notna(),
        "abs(a) + a.abs()": a.abs() * 2,
        "round(a, 2)": a.round(2),
        "a.round()": a.round(),
        "clip(n, -10, 10)": n.clip(-10, 10),
        "n.clip(0, b)": n.clip(0, b),
        "n.between(-3, 3)": n.between(-3, 3),
        "n.isin([1, 2, -3])": n.isin([1, 2, -3]),
        "a.fillna(0) + 1": a.fillna(0) + 1,
        "where(k, a, 0)": pd.Series(np.where(k, a, 0), index=df.index),
        "s.str.len() > 2": s.str.len() > 2,
        "s.str.startswith('J') | s.str.endswith('R')": s.str.startswith("J") | s.str.endswith("R"),
        "s.str.contains('=')": s.str.contains("=", regex=False),
        "s.str.lower() == 'jfk'": s.str.lower() == "jfk",
        "sqrt(abs(a)) + floor(b) - ceil(b)": np.sqrt(a.abs()) + np.floor(b) - np.ceil(b),
        "n * 2 ** 3": n * 8,
        "k & True": k & True,
    }


@settings(max_examples=40, deadline=None)
@given(FRAMES)
def test_allowed_forms_equal_pandas_written_by_hand(df):
    for expr, want in _by_hand(df).items():
        got = evaluate(expr, df)
        assert len(got) == len(df), expr
        pd.testing.assert_series_equal(
            got.reset_index(drop=True),
            pd.Series(want).reset_index(drop=True),
            check_names=False,
            check_dtype=False,
            obj=expr,
        )


def test_dates_and_durations():
    placed = pd.to_datetime(["2024-01-31 10:00", "2024-05-04 23:30", None])
    shipped = placed + pd.to_timedelta([1, 40, 2], unit="D")
    df = pd.DataFrame({"placed": placed, "shipped": shipped})
    assert evaluate("placed.dt.year", df).tolist()[:2] == [2024, 2024]
    assert evaluate("placed.dt.quarter * 100 + placed.dt.month", df).tolist()[:2] == [101, 205]
    assert evaluate("(shipped - placed).dt.days", df).tolist()[:2] == [1, 40]
    got = evaluate("(shipped - placed).dt.total_seconds() / 3600", df)
    assert got.tolist()[:2] == [24.0, 960.0]
    assert evaluate("placed >= '2024-03-01'", df).tolist() == [False, True, False]


def test_the_demo_expressions_equal_pandas_eval(raw_tables):
    flights = raw_tables["flights"]
    flights = flights.assign(cancelled=flights.dep_time.isna(), plane_year=flights.year - 10)
    for expr in [
        "arr_delay.notna() | dep_time.isna()",
        "dep_delay > 15",
        "year - plane_year",
        "dep_delay > 120",
        "not cancelled",
        "not cancelled and dep_delay < 300 and day <= 8",
    ]:
        pd.testing.assert_series_equal(
            evaluate(expr, flights), flights.eval(expr), check_names=False, obj=expr
        )


def test_scalar_results_fill_every_row_and_big_powers_stay_bounded():
    df = pd.DataFrame({"a": [1, 2, 3]})
    assert evaluate("2 ** 3", df).tolist() == [8, 8, 8]
    assert np.isinf(evaluate("9 ** 9 ** 9", df)).all()  # Python ints would take minutes
    with pytest.raises(ExpressionError, match="arithmetic on text"):
        evaluate("s * 1000000000", pd.DataFrame({"s": ["x"]}))
