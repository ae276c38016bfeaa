"""Feature sets: declared in the catalog, materialised as versioned ``features/<name>`` tables.

A feature table holds the row keys, every feature (numeric ones as float64, categorical ones as
text), the label, and ``_split`` (train / validation / test). Each Delta version carries, in its
commit, the source dataset and version it was built from, the spec hash and the category levels
seen in training rows, so a model always knows exactly which data trained it.
"""

from __future__ import annotations

import json
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.catalog.expressions import evaluate
from workbench.catalog.models import FeatureSet, Lag
from workbench.errors import WorkspaceError
from workbench.io.delta import (
    history,
    open_table,
    read_table,
)
from workbench.io.workspace import Workspace

SPLIT = "_split"
INFO_KEY = "workbench.features"  # where a version's commit keeps its feature info
_DATE_PARTS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}  # pandas 3 names


def feature_path(ws: Workspace, name: str):
    return ws.path("features", name)


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


def where_rows(df: pd.DataFrame, spec: FeatureSet) -> pd.DataFrame:
    """The rows the feature set's ``where`` keeps (all without one)."""
    return df[evaluate(spec.where, df).fillna(False).astype(bool)] if spec.where else df


def _row_features(df: pd.DataFrame, spec: FeatureSet) -> pd.DataFrame:
    df = where_rows(df, spec).reset_index(drop=True)
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


def feature_info_at(path, version: int | None) -> dict[str, Any]:
    """What the commit of ``version`` (latest when None) of a feature table recorded."""
    table = open_table(path, version)
    wanted = table.version()
    for entry in history(path):
        if entry.get("version") == wanted and INFO_KEY in entry:
            return json.loads(entry[INFO_KEY]) | {"version": wanted}
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
