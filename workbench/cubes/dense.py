"""The base cuboid without a group-by: integer member codes and ``numpy.bincount``, one pass.

Each task reads a group of Parquet files and, per file, turns every dimension into integer codes
over the members it sees (a factorize of the raw values, then the level's truncation applied to
the few distinct values only; text is read dictionary-encoded, so only its dictionary is
looked at). It sums each measure into a dense array over its own members' grid with
``numpy.bincount``. A pairwise tree merges the partial grids, aligning their members, so only a
few small arrays leave each worker. No shuffle and no hashing of millions of strings.

When the cube's source is a curated dataset whose joins can all be broadcast, the tasks read
the curated dataset's ``from`` table and apply the joins themselves (``CuratedView``), so the
build does not wait for, nor read back, the materialised join.
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from workbench import config
from workbench.catalog.models import Catalog, Cube
from workbench.cubes.cells import ROWS, attach_level_coords, check_nesting, measure_values
from workbench.cubes.cells import needed_columns as cube_columns
from workbench.cubes.spec import category_members, truncate
from workbench.io.delta import open_table
from workbench.io.workspace import Workspace
from workbench.zones.curated import curated_view
from workbench.zones.joins import CuratedView, prepared_view, release_prepared_views
from workbench.zones.tables import table_path


def level_codes(values: pd.Series, level: str | None) -> tuple[np.ndarray, pd.Index]:
    """Each row's position among the members present, and those members, sorted.

    The raw values are factorised first (cheap on dictionary-encoded text and on integers);
    the level's truncation or the missing-member label then applies to the distinct values
    only, and a second factorize merges raw values that land on the same member.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        raw, distinct = _present_categories(values)
    else:
        raw, uniques = pd.factorize(values, use_na_sentinel=False)
        distinct = pd.Series(uniques)
    members = truncate(distinct, level) if level else category_members(distinct)
    merged, final = pd.factorize(members, use_na_sentinel=False)
    ordered, order = pd.Index(final).sort_values(return_indexer=True)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[merged][raw], ordered


def _present_categories(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """What ``pd.factorize`` gives for a categorical column (each row's position among the
    values present, missing included), from its integer codes: a count per category instead
    of hashing every row."""
    categories = values.cat.categories
    slots = values.cat.codes.to_numpy().astype(np.intp) + 1  # slot 0: missing
    counts = np.bincount(slots, minlength=len(categories) + 1)
    present = np.flatnonzero(counts[1:])
    lookup = np.full(len(categories) + 1, -1, dtype=np.intp)
    lookup[present + 1] = np.arange(len(present))
    distinct = pd.Series(categories.take(present))
    if counts[0]:
        lookup[0] = len(present)
        # integer categories cannot hold a missing value: they become floats, as factorize does
        kind = getattr(distinct.dtype, "kind", "O")
        missing = pd.Series([np.nan]) if kind in "iub" else pd.Series([None], dtype=distinct.dtype)
        distinct = pd.concat([distinct, missing], ignore_index=True)
    return lookup[slots], distinct


@dataclass
class Partial:
    """A dense grid over the members one task saw: ``arrays`` are shaped by ``index``."""

    index: dict[str, pd.Index]
    arrays: dict[str, np.ndarray]
    pairs: dict[str, pd.DataFrame]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(i) for i in self.index.values())


def _agg(cube: Cube, name: str) -> str:
    return cube.measures[name].agg if name in cube.measures else "count"


def _too_big(cube: Cube, shape: tuple[int, ...]) -> bool:
    cells = math.prod(shape)
    return cells * (len(cube.measures) + 1) * 8 > config.get("cube-dense-mb") * 2**20


@dataclass
class Coded:
    """One frame as integer codes per dimension over the members it holds, plus the measures."""

    codes: list[np.ndarray]
    index: dict[str, pd.Index]
    values: dict[str, np.ndarray]
    pairs: dict[str, pd.DataFrame]


def code_frame(df: pd.DataFrame, cube: Cube) -> Coded:
    codes, index, pairs = [], {}, {}
    for key, dim in cube.dimensions.items():
        grain = dim.grain(key)
        dim_codes, members = level_codes(df[dim.column], grain if dim.levels else None)
        codes.append(dim_codes)
        index[grain] = members
        if dim.parents:
            pairs[key] = _pairs(df, dim.parents, grain, dim_codes, members)
    return Coded(codes, index, measure_values(df, cube), pairs)


def dense_partition(frames: list[Coded], cube: Cube) -> Partial | None:
    """Coded frames reduced into one dense grid over the members they hold (None if the grid
    would be too big): codes are moved onto the union of members, then one ``bincount`` per
    measure covers all the frames."""
    # Empty frames hold no members (and untyped ones): leave them out unless all are empty.
    frames = [f for f in frames if f.codes and len(f.codes[0])] or frames[:1]
    index = {grain: _union([f.index[grain] for f in frames]) for grain in frames[0].index}
    shape = tuple(len(i) for i in index.values())
    if _too_big(cube, shape):
        return None
    size = math.prod(shape)
    linear = []
    for frame in frames:
        codes = [
            union.get_indexer(members)[codes]
            for codes, members, union in zip(
                frame.codes, frame.index.values(), index.values(), strict=True
            )
        ]
        n = len(codes[0]) if codes else 0
        linear.append(np.ravel_multi_index(codes, shape) if n else np.zeros(0, dtype=np.int64))
    linear = np.concatenate(linear)
    arrays = {}
    for name in frames[0].values:
        values = np.concatenate([f.values[name] for f in frames])
        agg = _agg(cube, name)
        if agg in ("sum", "count"):
            values[np.isnan(values)] = 0.0  # a fresh array (concatenated): changed in place
            arrays[name] = np.bincount(linear, weights=values, minlength=size)
        else:
            dense = np.full(size, np.nan)
            present = ~np.isnan(values)
            if present.any():
                reduced = getattr(pd.Series(values[present]).groupby(linear[present]), agg)()
                dense[reduced.index.to_numpy()] = reduced.to_numpy()
            arrays[name] = dense
    pairs = {
        key: pd.concat([f.pairs[key] for f in frames], ignore_index=True).drop_duplicates()
        for key in frames[0].pairs
    }
    return Partial(index, {k: v.reshape(shape) for k, v in arrays.items()}, pairs)


def _union(indexes: list[pd.Index]) -> pd.Index:
    """Sorted members of several sorted indexes (most often all equal: nothing to do)."""
    out = indexes[0]
    for other in indexes[1:]:
        if not other.equals(out):
            out = out.append(other[~other.isin(out)]).sort_values()
    return out


def _pairs(
    df: pd.DataFrame, parents: list[str], grain: str, codes: np.ndarray, members: pd.Index
) -> pd.DataFrame:
    """The distinct (member, parents...) combinations of one frame, found on integer codes:
    a presence grid over the few members, not a sort of every row."""
    columns, found = [codes], [members]
    for parent in parents:
        parent_codes, parent_members = level_codes(df[parent], None)
        columns.append(parent_codes)
        found.append(parent_members)
    shape = tuple(len(m) for m in found)
    present = np.zeros(math.prod(shape), dtype=bool)
    if len(df):
        present[np.ravel_multi_index(columns, shape)] = True
    combos = np.unravel_index(np.flatnonzero(present), shape)
    names = [grain, *parents]
    return pd.DataFrame({name: m.take(c) for name, m, c in zip(names, found, combos, strict=True)})


def merge_partials(cube: Cube, a: Partial | None, b: Partial | None) -> Partial | None:
    """Two partial grids on the union of their members: sums added, minima and maxima kept."""
    if a is None or b is None:
        return None
    if not math.prod(b.shape) or not math.prod(a.shape):  # an empty grid adds nothing
        return a if math.prod(a.shape) else b
    if all(a.index[g].equals(b.index[g]) for g in a.index):
        arrays = {
            name: _add(cube, name, values, b.arrays[name]) for name, values in a.arrays.items()
        }
        return Partial(a.index, arrays, _merged_pairs(a, b))
    index, where_a, where_b = {}, [], []
    for grain, members_a in a.index.items():
        union = _union([members_a, b.index[grain]])
        index[grain] = union
        where_a.append(union.get_indexer(members_a))
        where_b.append(union.get_indexer(b.index[grain]))
    shape = tuple(len(i) for i in index.values())
    if _too_big(cube, shape):
        return None
    cells_a, cells_b = np.ix_(*where_a), np.ix_(*where_b)
    arrays = {}
    for name, values in a.arrays.items():
        agg = _agg(cube, name)
        out = np.zeros(shape) if agg in ("sum", "count") else np.full(shape, np.nan)
        out[cells_a] = values
        if agg in ("sum", "count"):
            out[cells_b] += b.arrays[name]
        else:
            out[cells_b] = (np.fmin if agg == "min" else np.fmax)(out[cells_b], b.arrays[name])
        arrays[name] = out
    return Partial(index, arrays, _merged_pairs(a, b))


def _add(cube: Cube, name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    agg = _agg(cube, name)
    if agg in ("sum", "count"):
        return a + b
    return (np.fmin if agg == "min" else np.fmax)(a, b)


def _merged_pairs(a: Partial, b: Partial) -> dict[str, pd.DataFrame]:
    return {
        key: pd.concat([frame, b.pairs[key]], ignore_index=True).drop_duplicates()
        for key, frame in a.pairs.items()
    }


@dataclass(frozen=True)
class SourceFiles:
    """What the build tasks read: files, their columns (text ones dictionary-encoded) and,
    for a curated source computed on the fly, the view that joins and derives."""

    files: list[str]
    columns: list[str]
    text: list[str]
    view: CuratedView | None

    def frame(self, path: str, view: CuratedView | None) -> pd.DataFrame:
        table = pq.read_table(path, columns=self.columns, read_dictionary=self.text)
        frame = table.to_pandas()
        return view.apply(frame) if view is not None else frame


def source_files(catalog: Catalog, ws: Workspace, cube: Cube) -> SourceFiles:
    """The files of the cube's source, or of its curated source's ``from`` table."""
    wanted = cube_columns(catalog, cube)
    view = curated_view(catalog, ws, cube.source, wanted) if config.get("cube-fuse-joins") else None
    if view is not None:
        files, columns = list(view.files), view.columns
        schema = pq.read_schema(files[0]) if files else pa.schema([])
    else:
        table = open_table(table_path(catalog, ws, cube.source))
        files, columns = table.file_uris(), wanted
        schema = pa.schema(table.schema().to_arrow())
    text = [
        f.name
        for f in schema
        if f.name in columns and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    return SourceFiles(files, columns, text, view)


# Rows whose integer codes a task gathers before one bincount per measure: a bincount per file
# allocated and merged a grid per file (a quarter of the task's time at TPC-H SF1); gathering
# every file of a task at once would hold all their codes (15M rows per task at SF10).
BATCH_ROWS = 4_000_000


def dense_files(
    source: SourceFiles, files: list[str], cube: Cube, view, build: str
) -> Partial | None:
    """Several Parquet files reduced in one task: one partial grid leaves it."""
    total: Partial | None = None
    view = prepared_view(view, build) if view is not None else None
    batch: list[Coded] = []
    rows = 0
    for i, path in enumerate(files):
        coded = code_frame(source.frame(path, view), cube)
        batch.append(coded)
        rows += len(coded.codes[0]) if coded.codes else 0
        if rows < BATCH_ROWS and i + 1 < len(files):
            continue
        part = dense_partition(batch, cube)
        total = part if total is None else merge_partials(cube, total, part)
        if total is None:  # the grid would be too large: the caller groups by instead
            return None
        batch, rows = [], 0
    return total


def _on_workers(func) -> None:
    """Run ``func`` in every worker process (and here, for the local schedulers)."""
    func()
    try:
        from distributed import get_client

        get_client().run(func)
    except ValueError:
        pass


def _workers() -> dict:
    try:
        from distributed import get_client

        return get_client().scheduler_info()["workers"]
    except ValueError:
        return {}


def compute_dense(
    catalog: Catalog, ws: Workspace, cube: Cube
) -> tuple[xr.Dataset, dict[str, pd.DataFrame]] | None:
    """The base cuboid by bincount over integer codes, or None when it would be too large."""
    source = source_files(catalog, ws, cube)
    if not source.files:
        return None
    workers = max(1, len(_workers()))
    files = source.files
    groups = [files[i :: 2 * workers] for i in range(min(len(files), 2 * workers))]
    view = source.view  # a plan: each worker reads the right-hand tables once (prepared_view)
    plain = SourceFiles([], source.columns, source.text, None)
    build = uuid.uuid4().hex  # the lifetime of the prepared views: this build's tasks
    parts = [dask.delayed(dense_files, pure=True)(plain, g, cube, view, build) for g in groups]
    while len(parts) > 1:  # pairwise tree: memory stays at a few dense grids per worker
        parts = [
            dask.delayed(merge_partials, pure=True)(cube, *parts[i : i + 2])
            if i + 1 < len(parts)
            else parts[i]
            for i in range(0, len(parts), 2)
        ]
    try:
        result = parts[0].compute()
    finally:
        _on_workers(functools.partial(release_prepared_views, build))
    if result is None:
        return None
    parents = check_nesting(cube, result.pairs)
    dims = list(result.index)
    data = {}
    for name, m in cube.measures.items():
        values = result.arrays[name]
        if m.agg == "count":
            values = np.rint(values).astype("int64")
        data[name] = (
            dims,
            values,
            {"agg": m.agg, "column": m.column or "", "where": m.where or ""},
        )
    data[ROWS] = (dims, np.rint(result.arrays[ROWS]).astype("int64"), {"agg": "count"})
    dataset = xr.Dataset(data, coords=dict(result.index))
    return attach_level_coords(dataset, cube, parents), parents
