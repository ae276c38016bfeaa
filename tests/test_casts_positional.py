"""Casts and rules place values by position, whatever a partition's index looks like.

The lake once held another row's date: ``pd.Series(series, index=...)`` in the date cast aligned
by label, and the second partition of a big file had labels starting at 200040 (issue 14, item 1).
Every cast and rule here runs on frames whose index starts anywhere, repeats or is shuffled, and
is compared with a plain per-value parse that knows nothing of indexes.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.validation.rules import CASTS, cast_columns

DATE_TEXTS = ["1996-07-05", "1993-12-24", "2024-02-29", "2023-02-29", "20240101", "", None, "x"]
INT_TEXTS = [
    "0",
    "-12",
    " 7 ",
    "12.0",
    "1e3",
    "3.5",
    "abc",
    None,
    "99999999999999999999",
    "9007199254740993",  # 2**53 + 1: float64 would make it ...992
    "-9223372036854775808",
    "9223372036854775807",
    "12345678901234567.0",  # past 2**53 written as a decimal: not an int rather than altered
]
FLOAT_TEXTS = ["1.5", "-0.25", ".5", "1e-3", "abc", None, " 2 ", "inf"]


def _by_hand_date(text: str | None) -> object:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _by_hand_int(text: str | None) -> object:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not np.isfinite(value) or value % 1:
        return None
    exact = int(text) if text.strip().lstrip("+-").isdigit() else int(value)
    if "." in text or "e" in text.lower():
        return exact if abs(value) < 2**53 else None
    return exact if -(2**63) <= exact < 2**63 else None


def _by_hand_float(text: str | None) -> object:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _index(draw_kind: str, n: int, start: int, rng: np.random.Generator) -> pd.Index:
    if draw_kind == "offset":
        return pd.RangeIndex(start, start + n)
    if draw_kind == "repeated":
        return pd.Index(rng.integers(0, max(1, n // 3), n))
    return pd.Index(rng.permutation(np.arange(start, start + n)))


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.integers(0, 7), min_size=1, max_size=40),
    start=st.integers(0, 500_000),
    kind=st.sampled_from(["offset", "repeated", "shuffled"]),
    seed=st.integers(0, 2**16),
)
def test_date_cast_is_positional(picks, start, kind, seed):
    texts = [DATE_TEXTS[i] for i in picks]
    index = _index(kind, len(texts), start, np.random.default_rng(seed))
    got = CASTS["date"](pd.Series(texts, index=index, dtype="str"))
    assert list(got.index) == list(index)
    for value, text in zip(got.to_numpy(), texts, strict=True):
        want = _by_hand_date(text)
        if want is None and text not in (None, "", "x", "2023-02-29"):
            continue  # other ISO forms (20240101) are a pandas fallback: only placement matters
        if want is None:
            assert pd.isna(value), (text, value)
        else:
            assert pd.Timestamp(value).date() == want, (text, value)


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.integers(0, 12), min_size=1, max_size=40),
    start=st.integers(0, 500_000),
    kind=st.sampled_from(["offset", "repeated", "shuffled"]),
    seed=st.integers(0, 2**16),
)
def test_number_casts_are_positional(picks, start, kind, seed):
    rng = np.random.default_rng(seed)
    for cast, texts_all, by_hand in (
        ("int", INT_TEXTS, _by_hand_int),
        ("float", FLOAT_TEXTS, _by_hand_float),
    ):
        texts = [texts_all[i % len(texts_all)] for i in picks]
        index = _index(kind, len(texts), start, rng)
        got = CASTS[cast](pd.Series(texts, index=index, dtype="str"))
        assert list(got.index) == list(index)
        for value, text in zip(got.to_numpy(dtype=object), texts, strict=True):
            want = by_hand(text)
            if want is None:
                assert pd.isna(value), (cast, text, value)
            else:
                assert value == want, (cast, text, value)


def test_second_partition_of_a_big_file_keeps_its_own_dates():
    """The reproduction of the lake's wrong date: a partition labelled from 200040 with 200041
    rows; the row labelled 200040 took the date of label 400080."""
    n, start = 200_041, 200_040
    days = pd.date_range("1992-01-01", periods=2500, freq="D")
    rng = np.random.default_rng(7)
    truth = days[rng.integers(0, len(days), n)]
    text = pd.Series(truth.strftime("%Y-%m-%d"), index=pd.RangeIndex(start, start + n), dtype="str")
    got = CASTS["date"](text)
    assert (got.to_numpy() == truth.to_numpy().astype("datetime64[us]")).all()


def test_one_int_past_int64_does_not_round_its_neighbours():
    """One out-of-range value once sent a whole partition through float64 (2**53 + 1 read as
    2**53)."""
    got = CASTS["int"](pd.Series(["9007199254740993", "99999999999999999999", "7"], dtype="str"))
    assert got.tolist()[0] == 9007199254740993 and pd.isna(got.iloc[1]) and got.iloc[2] == 7


def test_cast_columns_on_a_shuffled_index_with_repeats():
    raw = pd.DataFrame(
        {"d": ["2020-01-02", "bad", "2021-03-04"], "n": ["1", "x", "3"]},
        index=[5, 5, 2],
        dtype="str",
    )
    typed, failed = cast_columns(raw, {"d": "date", "n": "int"})
    assert list(typed["d"].dt.strftime("%Y-%m-%d").fillna("-")) == ["2020-01-02", "-", "2021-03-04"]
    assert list(typed["n"].astype("Float64").fillna(-1)) == [1, -1, 3]
    assert list(np.asarray(failed["dtype:d"])) == [False, True, False]
