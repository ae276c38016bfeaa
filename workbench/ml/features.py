"""Feature sets: declared in the catalog, materialised as versioned ``features/<name>`` tables.

A feature table holds the row keys, every feature (numeric ones as float64, categorical ones as
text), the label, and ``_split`` (train / validation / test). Each Delta version carries, in its
commit, the source dataset and version it was built from, the spec hash and the category levels
seen in training rows, so a model always knows exactly which data trained it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.catalog.base import digest as catalog_digest
from workbench.catalog.expressions import evaluate
from workbench.catalog.load import columns_of
from workbench.catalog.models import Catalog, FeatureSet, Lag
from workbench.errors import WorkspaceError
from workbench.io.delta import (
    commit_table,
    growth_since,
    history,
    open_table,
    read_files,
    read_table,
    stage_table,
)
from workbench.io.workspace import Workspace
from workbench.zones.tables import read_dataset, table_path

SPLIT = "_split"
_INFO_KEY = "workbench.features"
_PRIME = 2**61 - 1
_DATE_PARTS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # pandas 3 names


@dataclass(frozen=True)
class FeatureBuild:
    """One materialisation of a feature set (``reused`` when nothing had changed)."""

    name: str
    version: int
    rows: dict[str, int]
    source_version: int
    reused: bool
    appended: int | None = None  # rows added to the previous version; None for a full build


def feature_path(ws: Workspace, name: str):
    return ws.path("features", name)


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
        staged, actions, operation=f"features {name}", info={_INFO_KEY: json.dumps(info)}
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
        info={_INFO_KEY: json.dumps(info)},
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
        earlier = earlier.map_partitions(_where_rows, spec, meta=earlier._meta)
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


def make_features(
    frame: dd.DataFrame, spec: FeatureSet, *, keep: str | None = None
) -> dd.DataFrame:
    """The lazy feature table for a source frame: filter, derive, lag, split, select (and
    ``keep``, a marker column carried through)."""
    out = frame.map_partitions(_row_features, spec, meta=_row_features(frame._meta, spec))
    for lag_name, lag in spec.lags.items():
        # All rows of one key in one partition, then a sort and a grouped shift per partition.
        # A one-partition table already has them together: a shuffle would only add its fixed
        # cost (about 0.5 s of the flight features' 1.6 s build).
        grouped = out if out.npartitions == 1 else out.shuffle(on=lag.by)
        out = grouped.map_partitions(
            _add_lag, lag_name, lag, meta=_add_lag(out._meta, lag_name, lag)
        )
    time_column = [spec.split.column] if spec.split.column else []
    columns = [
        *spec.keys,
        *time_column,
        *spec.features,
        spec.label,
        SPLIT,
        *([keep] if keep else []),
    ]
    columns = list(dict.fromkeys(columns))
    return out.map_partitions(_finish, spec, columns, meta=_finish(out._meta, spec, columns))


def _content_hash(df: pd.DataFrame) -> pd.Series:
    """An order-independent fingerprint of a partition's rows (sum of row hashes mod a prime)."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy() % _PRIME
    return pd.Series([int(hashed.sum(dtype="object") % _PRIME)], dtype="int64")


def _where_rows(df: pd.DataFrame, spec: FeatureSet) -> pd.DataFrame:
    """The rows the feature set's ``where`` keeps (all without one)."""
    return df[evaluate(spec.where, df).fillna(False).astype(bool)] if spec.where else df


def _row_features(df: pd.DataFrame, spec: FeatureSet) -> pd.DataFrame:
    df = _where_rows(df, spec).reset_index(drop=True)
    for col, expr in spec.derived.items():
        df[col] = evaluate(expr, df)
    for col, parts in spec.date_parts.items():
        when = pd.to_datetime(df[col])
        for part in parts:
            if part == "weekend":
                value = when.dt.day_of_week >= 5
            else:
                value = getattr(when.dt, _DATE_PARTS.get(part, part))
            df[f"{col}_{part}"] = value.astype("float64")
    df[SPLIT] = assign_split(df, spec)
    return df


def assign_split(df: pd.DataFrame, spec: FeatureSet) -> np.ndarray:
    """``train`` / ``validation`` / ``test`` for each row, from the spec's split."""
    split = spec.split
    if split.kind == "time":
        when = pd.to_datetime(df[split.column])
        tz = getattr(when.dt, "tz", None)
        test = when >= pd.Timestamp(split.test_from, tz=tz)
        valid = pd.Series(False, index=df.index)
        if split.validation_from is not None:
            valid = ~test & (when >= pd.Timestamp(split.validation_from, tz=tz))
    else:
        key = f"{split.seed:016d}"[-16:]
        hashed = pd.util.hash_pandas_object(df[spec.keys], index=False, hash_key=key)
        u = (hashed.to_numpy() % 1_000_003) / 1_000_003
        test = pd.Series(u < split.test_fraction, index=df.index)
        valid = pd.Series(
            (u >= split.test_fraction) & (u < split.test_fraction + split.validation_fraction),
            index=df.index,
        )
    return np.where(test, "test", np.where(valid, "validation", "train"))


def _add_lag(df: pd.DataFrame, name: str, lag: Lag) -> pd.DataFrame:
    df = df.reset_index(drop=True)
    ordered = df.sort_values([*lag.by, lag.order_by], kind="stable")
    keys = [ordered[b] for b in lag.by]
    grouped = ordered.groupby(keys, dropna=False, sort=False)[lag.column]
    if lag.window is None:
        values = grouped.shift(lag.periods)
    else:
        before = grouped.shift(1)
        rolled = before.groupby(keys, dropna=False, sort=False).rolling(lag.window, min_periods=1)
        values = getattr(rolled, lag.agg)().reset_index(level=list(range(len(keys))), drop=True)
    values = pd.to_numeric(values, errors="coerce").astype("float64")
    df[name] = values.reindex(df.index)
    df.loc[df[lag.by].isna().any(axis=1), name] = np.nan  # a missing key is not one group
    return df


def _finish(df: pd.DataFrame, spec: FeatureSet, columns: list[str]) -> pd.DataFrame:
    out = df[[c for c in columns if c in df.columns]].copy()  # new rows may lack the label
    for col in spec.features:
        if col in spec.categorical:
            out[col] = out[col].astype("str").where(out[col].notna(), None)
        else:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out


def _latest_info(path) -> dict[str, Any] | None:
    try:
        return feature_info_at(path, None)
    except WorkspaceError:
        return None


def feature_info_at(path, version: int | None) -> dict[str, Any]:
    """What the commit of ``version`` (latest when None) of a feature table recorded."""
    table = open_table(path, version)
    wanted = table.version()
    for entry in history(path):
        if entry.get("version") == wanted and _INFO_KEY in entry:
            return json.loads(entry[_INFO_KEY]) | {"version": wanted}
    raise WorkspaceError(
        f"{path} version {wanted} has no feature metadata; rebuild it with "
        "`workbench run features:<name>`."
    )


def feature_info(ws: Workspace, name: str, version: int | None = None) -> dict[str, Any]:
    """Source, source version, categories and row counts recorded for a feature table version.

    Examples
    --------
    >>> feature_info(ws, "flight_features")["source_version"]  # doctest: +SKIP
    """
    return feature_info_at(feature_path(ws, name), version)


def read_features(
    ws: Workspace, name: str, *, version: int | None = None, columns: list[str] | None = None
) -> dd.DataFrame:
    """A lazy frame over one version of ``features/<name>``."""
    return read_table(feature_path(ws, name), columns=columns, version=version)


def encode_features(
    df: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Numeric features as float64, categorical ones as pandas categories with fixed levels
    (values never seen in training become missing)."""
    out = {}
    for col in features:
        if col in categories:
            out[col] = _categorical(df[col], categories[col])
        else:
            out[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=df.index)


def _categorical(values: pd.Series, levels: list[str]) -> pd.Categorical:
    """``values`` on fixed levels; values never seen in training become missing."""
    return pd.Categorical.from_codes(_level_codes(values, levels), categories=levels)


def _level_codes(values: pd.Series, levels: list[str]) -> np.ndarray:
    """Each value's position in ``levels``; -1 for missing values and for ones never seen in
    training. Arrow-backed text is looked up in Arrow (a tenth of the time of a pandas lookup),
    categories through their few distinct values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        remap = np.append(pd.Index(levels).get_indexer(values.cat.categories.astype("str")), -1)
        return remap[values.cat.codes.to_numpy()]  # code -1 (missing) picks the appended -1
    if pd.api.types.is_string_dtype(values.dtype) and hasattr(values.array, "__arrow_array__"):
        found = pc.index_in(values.array.__arrow_array__(), value_set=pa.array(levels))
        return pc.fill_null(found, -1).to_numpy().astype("int64", copy=False)
    if not pd.api.types.is_string_dtype(values.dtype):
        # numbers or mixed objects: compare as the text the levels were stored as
        values = values.astype("str").where(values.notna())
    return pd.Index(levels).get_indexer(values)


def feature_matrix(
    df: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> np.ndarray:
    """Raw or encoded rows as LightGBM's trees see them: a C-ordered float64 matrix with
    category codes for categorical features and NaN for anything missing.

    The numeric columns are converted as one block and copied in runs of neighbouring
    columns: a copy per column writes the row-major matrix with a stride of a whole row, eight
    times slower on a 320k-row partition.
    """
    out = np.empty((len(df), len(features)), dtype="float64")
    numeric = [c for c in features if c not in categories]
    if numeric:
        frame = df[numeric]
        if any(dtype != "float64" for dtype in frame.dtypes):
            frame = frame.apply(lambda s: pd.to_numeric(s, errors="coerce"))
        block = frame.to_numpy(dtype="float64", na_value=np.nan)
        done = 0
        for start, stop in _runs([features.index(c) for c in numeric]):
            out[:, start:stop] = block[:, done : done + stop - start]
            done += stop - start
    for col in categories:
        if col in features:
            codes = _level_codes(df[col], categories[col])
            out[:, features.index(col)] = np.where(codes >= 0, codes, np.nan)
    return out


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Sorted positions as [start, stop) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for pos in positions:
        if runs and runs[-1][1] == pos:
            runs[-1] = (runs[-1][0], pos + 1)
        else:
            runs.append((pos, pos + 1))
    return runs
