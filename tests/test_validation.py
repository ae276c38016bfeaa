"""Rules and casting on small frames, against expectations computed by hand-free pandas."""

from __future__ import annotations

import numpy as np
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


def test_report_page_escapes_the_text_of_sample_rows():
    from workbench.validation.report import render_html

    body = {
        "dataset": "orders",
        "batch_id": "b1",
        "checked_at": "2024-01-01T00:00:00",
        "committed": True,
        "lake_version": 0,
        "error": None,
        "rows_landed": 1,
        "rows_read": 1,
        "promoted": 0,
        "quarantined": 1,
        "warned": 0,
        "reconciled": True,
        "findings": [],
        "reasons": {"dtype:n": {"severity": "error", "rows": 1}},
        "samples": [{"reason": "dtype:n", "n": "<script>alert(1)</script>"}],
    }
    html = render_html(body, [body])
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_each_column_reads_its_own_missing_value_texts():
    dataset = Dataset.model_validate(
        {
            "zone": "lake",
            "source": {"path": "x.csv"},
            "schema": {**SCHEMA, "x": {"type": "float", "na_values": ["-"]}},
        }
    )
    assert dataset.na_values()["x"] == ("-",) and "N/A" in dataset.na_values()["k"]
    raw = _raw([("N/A", "1", "-", "2024-01-01"), ("a", "N/A", "N/A", "2024-01-01")])
    typed = check_partition(raw, CheckPlan(dataset, RuleContext()))
    assert typed["k"].isna().tolist() == [True, False]
    assert typed["x"].isna().all()  # "-" is missing; "N/A" does not parse as a number
    assert typed["_errors"].tolist() == ["", "dtype:x"]


@pytest.mark.parametrize("seed", range(5))
def test_integer_key_bitmap_finds_exactly_the_keys(seed):
    """The references bitmap holds one bit per key: every key, both ends of the range, values
    outside it and missing values answer as a plain set lookup does."""
    rng = np.random.default_rng(seed)
    low = int(rng.integers(-50, 1_000))
    keys = np.unique(rng.integers(low, low + 5_000, size=3_000))
    key_set = KeySet.of(keys)
    assert key_set.bitmap is not None and key_set.bitmap.dtype == np.uint8
    probes = np.concatenate([keys, [keys.min() - 1, keys.max() + 1, keys.max() + 10**6]])
    probes = np.concatenate([probes, rng.integers(low - 100, low + 5_100, size=5_000)])
    values = pd.Series(pd.array(probes, dtype="Int64"))
    values[::97] = pd.NA
    expected = values.isin(keys).to_numpy(dtype=bool) & values.notna().to_numpy()
    np.testing.assert_array_equal(key_set.contains(values), expected)
    # The same keys asked for as floats take the set path: the bitmap unpacks to them.
    floats = values.astype("Float64")
    np.testing.assert_array_equal(key_set.contains(floats), expected)
