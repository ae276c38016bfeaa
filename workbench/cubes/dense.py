"""The base cuboid without a group-by: integer member codes and ``numpy.bincount``.

Pass one finds every level's members; pass two gives each task a group of Parquet files and the
member lists, turns members into codes (text dimensions are read dictionary-encoded, so only the
dictionary is looked up) and sums each measure into a dense array. A pairwise tree combines the
partial arrays, so only a few leave each worker. No shuffle, no hashing of millions of strings.
"""

from __future__ import annotations

import math

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from workbench import config
from workbench.catalog.models import Catalog, Cube
from workbench.cluster import share
from workbench.cubes.cells import (
    ROWS,
    _grains,
    _members_frame,
    attach_level_coords,
    check_nesting,
    measure_values,
    needed_columns,
)
from workbench.cubes.spec import MISSING_MEMBER, category_members, truncate
from workbench.io.delta import open_table
from workbench.io.workspace import Workspace
from workbench.zones.tables import table_path


def member_codes(values: pd.Series, index: pd.Index, level: str | None) -> np.ndarray:
    """Positions of each row's member in ``index``; dictionary-encoded text maps only its
    dictionary (a few entries) and then takes by the integer codes."""
    if isinstance(values.dtype, pd.CategoricalDtype) and level is None:
        lookup = index.get_indexer(category_members(pd.Series(values.cat.categories)))
        codes = values.cat.codes.to_numpy()
        missing = index.get_indexer([MISSING_MEMBER])[0]
        return np.where(codes >= 0, lookup[np.maximum(codes, 0)], missing)
    members = truncate(values, level) if level else category_members(values)
    return index.get_indexer(members)


def dense_partition(df: pd.DataFrame, cube: Cube, index: dict[str, pd.Index]) -> dict:
    """One frame reduced straight into dense arrays over the whole cell grid."""
    shape = tuple(len(i) for i in index.values())
    size = math.prod(shape)
    codes = []
    for key, dim in cube.dimensions.items():
        grain = dim.grain(key)
        codes.append(member_codes(df[dim.column], index[grain], grain if dim.levels else None))
    linear = np.ravel_multi_index(codes, shape) if len(df) else np.zeros(0, dtype=np.int64)
    out = {}
    for name, values in measure_values(df, cube).items():
        agg = cube.measures[name].agg if name in cube.measures else "count"
        if agg in ("sum", "count"):
            out[name] = np.bincount(linear, weights=np.nan_to_num(values), minlength=size)
        else:
            dense = np.full(size, np.nan)
            present = ~np.isnan(values)
            if present.any():
                reduced = getattr(pd.Series(values[present]).groupby(linear[present]), agg)()
                dense[reduced.index.to_numpy()] = reduced.to_numpy()
            out[name] = dense
    return out


def members_files(files: list[str], columns: list[str], text: list[str], cube: Cube) -> dict:
    """Distinct members of every level (and parent pairs) in a group of Parquet files."""
    frames = [
        _members_frame(pq.read_table(p, columns=columns, read_dictionary=text).to_pandas(), cube)
        for p in files
    ]
    members = pd.concat(frames, ignore_index=True)
    out = {
        dim.grain(key): pd.unique(members[dim.grain(key)]) for key, dim in cube.dimensions.items()
    }
    for key, dim in cube.dimensions.items():
        if dim.parents:
            out[f"pairs:{key}"] = members[[dim.grain(key), *dim.parents]].drop_duplicates()
    return out


def dense_files(
    files: list[str], columns: list[str], text: list[str], cube: Cube, index: dict[str, pd.Index]
) -> dict:
    """Several Parquet files read and reduced in one task: one partial leaves the worker."""
    total = None
    for path in files:
        frame = pq.read_table(path, columns=columns, read_dictionary=text).to_pandas()
        part = dense_partition(frame, cube, index)
        total = part if total is None else _combine(cube, total, part)
    return total


def _workers() -> dict:
    try:
        from distributed import get_client

        return get_client().scheduler_info()["workers"]
    except ValueError:
        return {}


def _text_columns(catalog: Catalog, ws: Workspace, cube: Cube) -> set[str]:
    """Categorical dimension columns stored as text: read them dictionary-encoded."""
    schema = pa.schema(open_table(table_path(catalog, ws, cube.source)).schema().to_arrow())
    wanted = {c for d in cube.dimensions.values() if not d.levels for c in [d.column, *d.parents]}
    return {
        f.name
        for f in schema
        if f.name in wanted and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    }


def _combine(cube: Cube, a: dict, b: dict) -> dict:
    out = {}
    for name, values in a.items():
        agg = cube.measures[name].agg if name in cube.measures else "count"
        out[name] = (
            values + b[name]
            if agg in ("sum", "count")
            else (np.fmin if agg == "min" else np.fmax)(values, b[name])
        )
    return out


def compute_dense(
    catalog: Catalog, ws: Workspace, cube: Cube
) -> tuple[xr.Dataset, dict[str, pd.DataFrame]] | None:
    """The base cuboid by bincount over integer codes, or None when it would be too large.

    Pass one reads only the dimension columns and finds every level's members; pass two gives
    each partition the member lists, turns members into codes and sums each measure into a
    dense array with ``numpy.bincount``; arrays are combined pairwise in a tree. No shuffle,
    no group-by on text.
    """
    columns = needed_columns(catalog, cube)
    dim_cols = list(
        dict.fromkeys(c for d in cube.dimensions.values() for c in [d.column, *d.parents])
    )
    files = open_table(table_path(catalog, ws, cube.source)).file_uris()
    workers = max(1, len(_workers()))
    groups = [files[i :: 2 * workers] for i in range(min(len(files), 2 * workers))]
    text = [c for c in columns if c in _text_columns(catalog, ws, cube)]
    found = dask.compute(
        *[dask.delayed(members_files, pure=True)(g, dim_cols, text, cube) for g in groups]
    )
    grains = _grains(cube)
    index = {
        g: pd.Index(pd.unique(np.concatenate([f[g] for f in found]))).sort_values()
        for g in grains.values()
    }
    size = math.prod(len(i) for i in index.values())
    if size * (len(cube.measures) + 1) * 8 > config.get("cube-dense-mb") * 2**20:
        return None
    pairs = {
        key: pd.concat([f[f"pairs:{key}"] for f in found]).drop_duplicates()
        for key, dim in cube.dimensions.items()
        if dim.parents
    }
    parents = check_nesting(cube, pairs)
    shared = share(index)
    parts = [dask.delayed(dense_files, pure=True)(g, columns, text, cube, shared) for g in groups]
    while len(parts) > 1:  # pairwise tree: memory stays at a few dense grids per worker
        parts = [
            dask.delayed(_combine, pure=True)(cube, *parts[i : i + 2])
            if i + 1 < len(parts)
            else parts[i]
            for i in range(0, len(parts), 2)
        ]
    arrays = parts[0].compute()
    shape = tuple(len(i) for i in index.values())
    data = {}
    for name, m in cube.measures.items():
        values = arrays[name].reshape(shape)
        if m.agg == "count":
            values = np.rint(values).astype("int64")
        data[name] = (
            list(index),
            values,
            {"agg": m.agg, "column": m.column or "", "where": m.where or ""},
        )
    data[ROWS] = (
        list(index),
        np.rint(arrays[ROWS].reshape(shape)).astype("int64"),
        {"agg": "count"},
    )
    dataset = xr.Dataset(data, coords=dict(index))
    return attach_level_coords(dataset, cube, parents), parents
