"""The dense build's pieces against pandas: codes, per-task grids and their merges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.catalog.models import Cube
from workbench.cubes.dense import code_frame, dense_partition, merge_partials

CUBE = Cube.model_validate(
    {
        "source": "sales",
        "dimensions": {
            "when": {"column": "ts", "levels": ["year", "month"]},
            "city": {"column": "city", "parents": ["country"]},
        },
        "measures": {
            "n": {"agg": "count"},
            "amount": {"agg": "sum", "column": "amount"},
            "big": {"agg": "count", "where": "amount > 50"},
            "top": {"agg": "max", "column": "amount"},
        },
    }
)
COUNTRY = {"Lyon": "FR", "Paris": "FR", "Oslo": "NO", "Bergen": "NO", None: None}


def _frame(rng: np.random.Generator, n: int, cities: list, categorical: bool) -> pd.DataFrame:
    city = rng.choice(np.array(cities, dtype=object), n)
    df = pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "city": city,
            "country": [COUNTRY[c] for c in city],
            "amount": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 30, n)),
        }
    )
    if categorical:
        df["city"] = df["city"].astype("category")
    return df


def _expected(frames: list[pd.DataFrame]) -> pd.DataFrame:
    df = pd.concat(frames, ignore_index=True)
    df = df.assign(
        month=df.ts.dt.to_period("M").dt.start_time,
        city=df.city.astype(object).fillna("(missing)"),
        big=(df.amount > 50).astype(int),
    )
    return df.groupby(["month", "city"]).agg(
        n=("ts", "size"), amount=("amount", "sum"), big=("big", "sum"), top=("amount", "max")
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partial_grids_merged_in_any_order_equal_a_pandas_group_by(seed):
    rng = np.random.default_rng(seed)
    frames = [
        _frame(rng, 5000, ["Lyon", "Paris", "Oslo"], categorical=True),
        _frame(rng, 3000, ["Bergen", "Oslo", None], categorical=False),
        _frame(rng, 0, ["Lyon"], categorical=False),  # an empty file
        _frame(rng, 4000, ["Paris", "Bergen"], categorical=True),
    ]
    one = dense_partition([code_frame(f, CUBE) for f in frames[:2]], CUBE)
    two = dense_partition([code_frame(f, CUBE) for f in frames[2:]], CUBE)
    merged = merge_partials(CUBE, two, one)
    want = _expected(frames)
    assert all(members.is_monotonic_increasing for members in merged.index.values())
    cells = pd.MultiIndex.from_product(list(merged.index.values()))
    got = pd.DataFrame({k: v.ravel() for k, v in merged.arrays.items()}, index=cells)
    got = got[got["__rows"] > 0]
    assert len(got) == len(want)
    got = got.loc[want.index]
    np.testing.assert_array_equal(got["n"], want["n"])
    np.testing.assert_array_equal(got["big"], want["big"])
    np.testing.assert_allclose(got["amount"], want["amount"], rtol=1e-12)
    np.testing.assert_allclose(got["top"], want["top"], rtol=1e-12)
    pairs = merged.pairs["city"].set_index("city")["country"].to_dict()
    assert pairs == {
        "Lyon": "FR",
        "Paris": "FR",
        "Oslo": "NO",
        "Bergen": "NO",
        "(missing)": "(missing)",
    }


def _view(tmp_path, name: str):
    from workbench.catalog.models import Join
    from workbench.zones.joins import CuratedView, RightSide

    right = tmp_path / f"{name}.parquet"
    pd.DataFrame({"k": [0, 1, 2], "label": ["a", "b", "c"]}).to_parquet(right)
    join = Join(dataset=name, keys=["k"], columns=["label"])
    side = RightSide(join, [str(right)], [("k", "__key0"), ("label", "label")])
    return CuratedView(name, {name: 0}, ["k"], [side], {})


def test_two_concurrent_builds_keep_their_prepared_views(tmp_path):
    """Each build holds its view until it releases it: another build's view, or its release,
    never evicts it mid-build (each eviction would read the right-hand tables again)."""
    import threading

    from workbench.zones.joins import prepared_view, release_prepared_views

    views = {"a": _view(tmp_path, "a"), "b": _view(tmp_path, "b")}
    first, again = {}, {}
    turn = threading.Barrier(2)

    def build(name: str) -> None:
        first[name] = prepared_view(views[name], build=name)
        turn.wait()  # both views prepared before either build goes on
        again[name] = prepared_view(views[name], build=name)
        turn.wait()
        if name == "a":
            release_prepared_views("a")  # build a ends while b still runs
        turn.wait()
        if name == "b":
            again["b after a"] = prepared_view(views["b"], build="b")
            release_prepared_views("b")

    threads = [threading.Thread(target=build, args=(n,)) for n in views]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for name in views:
        assert again[name] is first[name], name  # not prepared a second time
        left = pd.DataFrame({"k": [2, 0]})
        assert first[name].apply(left)["label"].astype(str).tolist() == ["c", "a"]
    assert again["b after a"] is first["b"]
    assert prepared_view(views["a"], build="c") is not first["a"]  # released: prepared afresh
    release_prepared_views("c")
