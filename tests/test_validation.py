"""Rules and casting on small frames, against expectations computed by hand-free pandas."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.catalog.models import Dataset
from workbench.validation import CheckPlan, RuleContext, cast_columns, check_partition
from workbench.validation.rules import KeySet

SCHEMA = {"k": "string", "n": "int", "x": "float", "t": "datetime"}


def _dataset(rules: list[dict]) -> Dataset:
    return Dataset.model_validate(
        {"zone": "lake", "source": {"path": "x.csv"}, "schema": SCHEMA, "rules": rules}
    )


def _raw(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(SCHEMA), dtype="str")
    df["_line"] = range(2, len(df) + 2)
    df["_parse_error"] = pd.Series(pd.NA, index=df.index, dtype="str")
    df["_file"] = "x.csv"
    return df


RAW = _raw(
    [
        ("a", "1", "0.5", "2013-01-01T10:00:00Z"),
        ("b", "x", "1e3", "2013-01-01T11:00:00Z"),  # n does not parse
        (None, "3", "-2", "not a time"),  # k null, t does not parse
        ("a", "2.5", None, "2013-01-02T00:00:00Z"),  # n not integral
    ]
)


def test_cast_flags_values_that_do_not_parse():
    typed, failed = cast_columns(RAW, SCHEMA)
    assert typed["n"].tolist()[0] == 1 and typed["n"].isna().tolist() == [False, True, False, True]
    assert failed["dtype:n"].tolist() == [False, True, False, True]
    assert failed["dtype:t"].tolist() == [False, False, True, False]
    assert failed["dtype:x"].tolist() == [False] * 4  # a missing value is not a cast failure
    assert str(typed["t"].dt.tz) == "UTC"


def test_every_failing_reason_is_kept_per_row():
    ds = _dataset(
        [
            {"rule": "not_null", "columns": ["k"]},
            {"rule": "between", "column": "x", "min": 0},
            {"rule": "in_set", "column": "k", "values": ["a"], "severity": "warn"},
            {"rule": "unique", "columns": ["k"]},
        ]
    )
    ctx = RuleContext(duplicate_keys={("k",): pd.Index(["a"])})
    out = check_partition(RAW, CheckPlan(ds, ctx))
    assert out["_errors"].tolist() == [
        "unique:k",
        "dtype:n",
        "dtype:t;not_null:k;between:x",
        "dtype:n;unique:k",
    ]
    assert out["_warnings"].tolist() == ["", "in_set:k", "", ""]
    assert out["_line"].tolist() == [2, 3, 4, 5]


def test_references_and_expression_rules():
    ds = _dataset(
        [
            {"rule": "references", "column": "k", "dataset": "other", "key": "id"},
            {"rule": "expression", "expr": "x.isna() | (x < 100)", "name": "x_small"},
            {"rule": "regex", "column": "k", "pattern": "[a-z]"},
        ]
    )
    ctx = RuleContext(reference_keys={("other", "id"): KeySet.of(pd.Index(["b"]).to_numpy())})
    out = check_partition(RAW, CheckPlan(ds, ctx))
    assert out["_fail:references:k"].tolist() == [True, False, False, True]
    assert out["_fail:x_small"].tolist() == [False, True, False, False]
    assert not out["_fail:regex:k"].any()


def test_bad_expression_is_a_catalog_error():
    import workbench as wb

    ds = _dataset([{"rule": "expression", "expr": "nope > 1"}])
    with pytest.raises(wb.CatalogError, match="nope > 1"):
        check_partition(RAW, CheckPlan(ds, RuleContext()))


def test_a_row_that_did_not_parse_fails_for_that_reason_only():
    raw = RAW.copy()
    raw.loc[1, ["k", "n", "x", "t"]] = pd.NA
    raw.loc[1, "_parse_error"] = "parse:field_count"
    ds = _dataset([{"rule": "not_null", "columns": ["k", "n"]}])
    out = check_partition(raw, CheckPlan(ds, RuleContext()))
    assert out.loc[1, "_errors"] == "parse:field_count"
    assert out.loc[2, "_errors"] == "dtype:t;not_null:k"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"rule": "min", "column": "x", "value": 0}, [False, False, True, False]),
        ({"rule": "max", "column": "x", "value": 1}, [False, True, False, False]),
        ({"rule": "length", "column": "k", "max": 0}, [True, True, False, True]),
        ({"rule": "castable", "column": "k", "to": "float"}, [True, True, False, True]),
        ({"rule": "not_in_future", "column": "t"}, [False, False, False, False]),
    ],
)
def test_more_row_rules(rule, expected):
    out = check_partition(RAW, CheckPlan(_dataset([rule]), RuleContext()))
    flag = next(
        c
        for c in out.columns
        if c.startswith("_fail:")
        and not c.startswith(("_fail:dtype", "_fail:parse", "_fail:schema"))
    )
    assert out[flag].tolist() == expected


def test_a_date_in_the_future_is_caught():
    raw = _raw([("a", "1", "1", "2999-01-01T00:00:00Z"), ("b", "1", "1", "2001-01-01T00:00:00Z")])
    out = check_partition(
        raw, CheckPlan(_dataset([{"rule": "not_in_future", "column": "t"}]), RuleContext())
    )
    assert out["_fail:not_in_future:t"].tolist() == [True, False]
