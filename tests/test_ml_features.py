"""Feature sets: the materialised table against pandas, versions, lags and splits."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.catalog.models import FeatureSet
from workbench.io.delta import open_table
from workbench.ml.feature_build import build_features
from workbench.ml.features import SPLIT, feature_info, make_features, read_features


@pytest.fixture(scope="module")
def curated(demo):
    catalog, ws, _ = demo
    return wb.read_dataset(catalog, ws, "flights_enriched").compute()


@pytest.fixture(scope="module")
def features(demo):
    _, ws, _ = demo
    return read_features(ws, "flight_features").compute()


def test_feature_table_records_its_source_and_rows(demo, curated, features):
    catalog, ws, _ = demo
    info = feature_info(ws, "flight_features")
    assert info["source"] == "flights_enriched"
    assert info["source_version"] == open_table(ws.path("curated", "flights_enriched")).version()
    kept = curated[~curated.cancelled.astype(bool)]
    assert len(features) == len(kept) == sum(info["rows"].values())
    when = pd.to_datetime(kept.flight_date)
    assert info["rows"]["test"] == int((when >= "2013-11-01").sum())
    assert info["rows"]["validation"] == int(((when >= "2013-09-01") & (when < "2013-11-01")).sum())
    train = features[features[SPLIT] == "train"]
    assert info["categories"]["carrier"] == sorted(train.carrier.dropna().unique())
    assert features.temp.sum() == pytest.approx(kept.temp.sum(), rel=1e-12)
    assert set(catalog.features["flight_features"].features) <= set(features.columns)


def test_date_parts_and_lags_equal_pandas(curated, features):
    kept = curated[~curated.cancelled.astype(bool)].copy()
    assert (
        features.flight_date_dayofweek.sum()
        == pd.to_datetime(kept.flight_date).dt.day_of_week.sum()
    )
    # The plane's previous departure delay, computed independently. Planes with two departures
    # in one scheduled hour have no defined order: leave them out of the comparison.
    ties = kept.dropna(subset=["tailnum"]).duplicated(["tailnum", "time_hour"], keep=False)
    tied = set(kept.dropna(subset=["tailnum"])[ties].tailnum)
    ordered = kept.sort_values(["tailnum", "time_hour"], kind="stable")
    ordered["expected"] = ordered.groupby("tailnum")["dep_delay"].shift(1)
    keys = ["flight_date", "carrier", "flight", "origin", "tailnum"]
    ok = ordered[ordered.tailnum.notna() & ~ordered.tailnum.isin(tied)]
    ok = ok.drop_duplicates(keys, keep=False)
    got = features.drop_duplicates(keys, keep=False)
    got = got.assign(flight_date=pd.to_datetime(got.flight_date))
    ok = ok.assign(flight_date=pd.to_datetime(ok.flight_date))
    merged = ok.merge(got[[*keys, "plane_prev_delay"]], on=keys, how="inner")
    assert len(merged) > 0.9 * len(ok)
    np.testing.assert_array_equal(merged.expected.to_numpy(), merged.plane_prev_delay.to_numpy())
    assert features.loc[features.tailnum.isna(), "plane_prev_delay"].isna().all()


def test_rolling_lag_and_random_split_do_not_depend_on_partitions():
    rng = np.random.default_rng(0)
    n = 3_000
    pdf = pd.DataFrame(
        {
            "key": rng.integers(0, 30, n).astype(str),
            "t": pd.date_range("2024-01-01", periods=n, freq="min"),
            "x": rng.normal(size=n),
            "id": np.arange(n),
            "y": rng.integers(0, 2, n),
        }
    )
    spec = FeatureSet.model_validate(
        {
            "source": "s",
            "label": "y",
            "columns": ["x"],
            "keys": ["id"],
            "lags": {"x_mean3": {"column": "x", "by": "key", "order_by": "t", "window": 3}},
            "split": {"kind": "random", "test_fraction": 0.2, "validation_fraction": 0.1},
        }
    )
    results = [
        make_features(dd.from_pandas(pdf, npartitions=p), spec).compute().sort_values("id")
        for p in (1, 7)
    ]
    assert results[0][SPLIT].tolist() == results[1][SPLIT].tolist()
    share = results[0][SPLIT].value_counts(normalize=True)
    assert share["test"] == pytest.approx(0.2, abs=0.03)
    assert share["validation"] == pytest.approx(0.1, abs=0.03)
    expected = (
        pdf.sort_values("t")
        .groupby("key")["x"]
        .transform(lambda s: s.shift(1).rolling(3, min_periods=1).mean())
    )
    np.testing.assert_allclose(results[1]["x_mean3"].to_numpy(), expected.sort_index().to_numpy())


def test_unchanged_rebuild_keeps_the_version(demo):
    catalog, ws, _ = demo
    before = feature_info(ws, "flight_features")["version"]
    again = build_features(catalog, ws, "flight_features")
    assert again.reused and again.version == before


def test_feature_set_with_unknown_column_names_the_line(tmp_path):
    from .ml_helpers import catalog_with

    path = catalog_with(tmp_path, replace={"columns: [month, day,": "columns: [mnth, day,"})
    with pytest.raises(
        wb.CatalogError, match=r"catalog.yaml:\d+: features.flight_features.columns"
    ):
        wb.load_catalog(path)
