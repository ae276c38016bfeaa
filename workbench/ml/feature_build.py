"""Materialising a feature set: a new version of ``features/<name>``, built whole or appended.

The features themselves are computed by :mod:`workbench.ml.features`; this module writes them,
fingerprints their content, records how they were made in the Delta commit, and decides when
the rows a source gained can be appended instead of everything being built again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from workbench.catalog.base import digest as catalog_digest
from workbench.catalog.load import columns_of
from workbench.catalog.models import Catalog, FeatureSet, Lag
from workbench.errors import WorkspaceError
from workbench.io.delta import (
    commit_table,
    growth_since,
    open_table,
    read_files,
    stage_table,
)
from workbench.io.workspace import Workspace
from workbench.ml.features import (
    INFO_KEY,
    SPLIT,
    feature_info_at,
    feature_path,
    make_features,
    where_rows,
)
from workbench.zones.tables import read_dataset, table_path

_PRIME = 2**61 - 1


@dataclass(frozen=True)
class FeatureBuild:
    """One materialisation of a feature set (``reused`` when nothing had changed)."""

    name: str
    version: int
    rows: dict[str, int]
    source_version: int
    reused: bool
    appended: int | None = None  # rows added to the previous version; None for a full build


def spec_hash(spec: FeatureSet) -> str:
    return catalog_digest(spec)


def build_features(
    catalog: Catalog, ws: Workspace, name: str, *, force: bool = False, incremental: bool = False
) -> FeatureBuild:
    """Materialise feature set ``name`` as a new version of ``features/<name>``.

    Skipped (``reused``) when the latest version came from the same spec and source version,
    or when the rows come out identical (same content fingerprint) to the latest version's.
    With ``incremental``, rows the source only gained since are turned into features and
    appended, when that provably equals a rebuild (:func:`append_features`).

    Examples
    --------
    >>> build = build_features(catalog, ws, "flight_features")  # doctest: +SKIP
    >>> build.version, build.rows["train"]  # doctest: +SKIP
    """
    spec = catalog.feature_set(name)
    source_version = open_table(table_path(catalog, ws, spec.source)).version()
    digest = spec_hash(spec)
    path = feature_path(ws, name)
    last = None if force else _latest_info(path)
    if last and last["spec_hash"] == digest and last["source_version"] == source_version:
        return FeatureBuild(name, last["version"], last["rows"], source_version, True)
    if incremental and last and last["spec_hash"] == digest and "content" in last:
        appended = append_features(catalog, ws, spec, last)
        if appended is not None:
            return appended
    known = set(columns_of(catalog, spec.source))
    frame = read_dataset(
        catalog, ws, spec.source, columns=spec.source_columns(known), version=source_version
    )
    staged, actions, counts, partial, found = _stage(make_features(frame, spec), spec, path)
    rows = {k: int(counts.get(k, 0)) for k in ("train", "validation", "test")}
    content = f"{partial % _PRIME:x}"
    if last and last.get("content") == content:
        # The source got a new version with the same rows: keep the current features version.
        for file in actions["path"]:
            (path / file).unlink(missing_ok=True)
        return FeatureBuild(name, last["version"], last["rows"], last["source_version"], True)
    info = {
        "feature_set": name,
        "source": spec.source,
        "source_version": source_version,
        "spec_hash": digest,
        "content": content,
        "rows": rows,
        "categories": {
            c: sorted(map(str, v)) for c, v in zip(spec.categorical, found, strict=True)
        },
        "features": spec.features,
        "categorical": spec.categorical,
        "label": spec.label,
        "keys": spec.keys,
    }
    version = commit_table(
        staged, actions, operation=f"features {name}", info={INFO_KEY: json.dumps(info)}
    )
    return FeatureBuild(name, version, rows, source_version, False)


def _stage(table: dd.DataFrame, spec: FeatureSet, path) -> tuple:
    """Write ``table``'s files (uncommitted) and, in the same pass, count its rows per split,
    fingerprint its content and find the categorical levels of its training rows."""
    staged = stage_table(table, path)
    train = table[table[SPLIT] == "train"]
    levels = [train[c].dropna().unique(split_out=1) for c in spec.categorical]
    hashes = table.map_partitions(_content_hash, meta=pd.Series([], dtype="int64"))
    actions, counts, partial, *found = dask.compute(
        staged.actions, table[SPLIT].value_counts(), hashes, *levels
    )
    return staged, actions, counts, int(partial.sum()), found


_NEW = "_new_row"  # marks the appended rows among the earlier rows their lags look back on


def append_features(
    catalog: Catalog, ws: Workspace, spec: FeatureSet, last: dict[str, Any]
) -> FeatureBuild | None:
    """Features of the rows the source gained since the latest version, appended to it.

    Every feature but a lag is computed from its own row. A lag looks back on earlier rows of
    its key: those are read from the source too, and the append is refused (None: rebuild)
    when a new row would come before an earlier one of its key, or a time is missing, since
    then rows already written would change.
    """
    source = table_path(catalog, ws, spec.source)
    growth = growth_since(source, last["source_version"])
    if growth is None:
        return None
    columns = spec.source_columns(set(columns_of(catalog, spec.source)))
    new = read_files(growth.files, source, columns=columns).assign(**{_NEW: True})
    if spec.lags:
        new = new.persist()  # read by the key lookup, the order checks and the features
        earlier = _earlier_rows(catalog, ws, spec, new, last["source_version"], columns)
        if earlier is None:
            return None
        parts = new.npartitions
        new = dd.concat([earlier.assign(**{_NEW: False}), new])
        if _one_row_lags(spec):
            # The earlier rows are few (a key's latest ones): with the new rows of one
            # partition they make one, and the lag needs no shuffle.
            new = new.repartition(npartitions=parts)
    table = make_features(new, spec, keep=_NEW)
    table = table[table[_NEW]].drop(columns=[_NEW])
    path = feature_path(ws, last["feature_set"])
    staged, actions, counts, partial, found = _stage(table, spec, path)
    rows = {k: last["rows"].get(k, 0) + int(counts.get(k, 0)) for k in last["rows"]}
    # The fingerprint is a sum of row hashes: the new rows' sum added gives the rebuild's.
    content = f"{(int(last['content'], 16) + partial) % _PRIME:x}"
    categories = {
        c: sorted(set(last["categories"].get(c, [])) | set(map(str, v)))
        for c, v in zip(spec.categorical, found, strict=True)
    }
    info = {k: v for k, v in last.items() if k != "version"}
    info |= {"source_version": growth.version, "content": content, "rows": rows}
    info |= {"categories": categories, "appended": int(counts.sum())}
    version = commit_table(
        staged,
        actions,
        mode="append",
        operation=f"features {info['feature_set']} (append)",
        info={INFO_KEY: json.dumps(info)},
    )
    return FeatureBuild(
        info["feature_set"], version, rows, growth.version, False, int(counts.sum())
    )


def _earlier_rows(
    catalog: Catalog,
    ws: Workspace,
    spec: FeatureSet,
    new: dd.DataFrame,
    version: int,
    columns: list[str],
) -> dd.DataFrame | None:
    """The source rows of ``version`` a lag of a new row may look back on, or None when a new
    row does not come strictly after every earlier row of its key (or a time is missing).

    Those are the rows the ``where`` filter keeps that share a lag key with a new row; when
    every lag looks back one row, only each key's latest such row."""
    old = read_dataset(catalog, ws, spec.source, columns=columns, version=version)
    keys = sorted({k for lag in spec.lags.values() for k in lag.by})
    wanted = new[keys].drop_duplicates().compute()
    earlier = old.merge(wanted, on=keys, how="inner")
    if spec.where:  # a lag runs over the rows the filter keeps: the others never count
        earlier = earlier.map_partitions(where_rows, spec, meta=earlier._meta)
    earlier = earlier.persist()  # read once for the checks and the rows kept below
    lags = list(spec.lags.values())
    checks = []
    for lag in lags:
        order = lag.order_by
        checks += [earlier[order].isna().sum(), new[order].isna().sum()]
        checks += [earlier.groupby(lag.by)[order].max(), new.groupby(lag.by)[order].min()]
    found = dask.compute(*checks)
    latest = found[2::4]
    for missing_old, missing_new, last, first in zip(*[iter(found)] * 4, strict=True):
        if missing_old or missing_new:
            return None
        both = last.to_frame("latest").join(first.to_frame("first"), how="inner")
        if (both["first"] <= both["latest"]).any():
            return None
    if _one_row_lags(spec):
        earlier = _latest_rows(earlier, lags, latest)
    return earlier


def _one_row_lags(spec: FeatureSet) -> bool:
    """Whether every lag looks back one row (the previous value of its key)."""
    return all(lag.window is None and lag.periods == 1 for lag in spec.lags.values())


def _latest_rows(earlier: dd.DataFrame, lags: list[Lag], latest: list[pd.Series]) -> dd.DataFrame:
    """The rows holding a key's latest order time for some lag (ties kept): all a one-row
    lag of a later row reads."""
    names = [f"_latest_{i}" for i in range(len(lags))]
    for name, lag, last in zip(names, lags, latest, strict=True):
        earlier = earlier.merge(last.rename(name).reset_index(), on=lag.by, how="left")
    hit = None
    for name, lag in zip(names, lags, strict=True):
        at_latest = earlier[lag.order_by] == earlier[name]
        hit = at_latest if hit is None else hit | at_latest
    return earlier[hit.fillna(False)].drop(columns=names)


def _content_hash(df: pd.DataFrame) -> pd.Series:
    """An order-independent fingerprint of a partition's rows (sum of row hashes mod a prime)."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy() % _PRIME
    return pd.Series([int(hashed.sum(dtype="object") % _PRIME)], dtype="int64")


def _latest_info(path) -> dict[str, Any] | None:
    try:
        return feature_info_at(path, None)
    except WorkspaceError:
        return None
