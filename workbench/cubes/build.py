"""Build a cube: one Dask group-by pass to the base cuboid, coarser cuboids rolled up from it.

Every stored measure is additive (sum, count) or idempotent (min, max), so any roll-up of the
stored cells is exact; means and rates are derived at query time from these parts. Cells with no
rows hold the measure's identity: 0 for sums and counts, NaN for min and max. A build writes a
complete new version folder beside the current one and then switches ``CURRENT.json``; readers
never see a half-written cube.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from workbench import config
from workbench.catalog.models import Catalog, Cube
from workbench.cluster import share
from workbench.cubes.spec import (
    MISSING_MEMBER,
    category_members,
    cuboid_name,
    default_aggregates,
    time_coords,
    truncate,
)
from workbench.errors import WorkbenchError
from workbench.io.delta import open_table
from workbench.io.workspace import Workspace, read_json, write_json_atomic
from workbench.zones.tables import read_dataset, table_path

CURRENT = "CURRENT.json"
BASE = "base"
ROWS = "__rows"
REDUCERS = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}


class CubeError(WorkbenchError):
    """The source data does not fit the cube's declaration (e.g. a level not nested)."""

    exit_code = 1


@dataclass(frozen=True)
class CubeBuild:
    cube: str
    version: int
    path: Path
    shape: dict[str, int]
    rows_in: int
    cuboids: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    mode: str = "full"


# --- reading the source into base cells -------------------------------------------------------


def needed_columns(cube: Cube) -> list[str]:
    cols = []
    for dim in cube.dimensions.values():
        cols += [dim.column, *dim.parents]
    for m in cube.measures.values():
        cols += [m.column] if m.column else []
        cols += re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.where or "")
    words = {"and", "or", "not", "True", "False", "isna", "notna"}
    return [c for c in dict.fromkeys(cols) if c not in words]


def prepare_cells(df: pd.DataFrame, cube: Cube) -> pd.DataFrame:
    """Per partition: grain members, parent members, one reducible column per measure."""
    out = _members_frame(df, cube)
    for name, values in measure_values(df, cube).items():
        out[name] = (
            values.astype("int64")
            if name == ROWS or (cube.measures[name].agg == "count")
            else values
        )
    return out


def _grains(cube: Cube) -> dict[str, str]:
    return {key: dim.grain(key) for key, dim in cube.dimensions.items()}


def compute_cells(
    catalog: Catalog, ws: Workspace, cube: Cube, *, since: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Base cells (one row per occupied cell) and each dimension's (grain, parents) pairs."""
    frame = read_dataset(catalog, ws, cube.source, columns=needed_columns(cube))
    if since is not None:
        time_key = _time_dim(cube)
        column = cube.dimensions[time_key].column
        stamps = frame[column]
        frame = frame[stamps >= (since.tz_localize("UTC") if _tz_aware(frame, column) else since)]
    prepared = frame.map_partitions(prepare_cells, cube, meta=prepare_cells(frame._meta, cube))
    aggs = {m: REDUCERS[cube.measures[m].agg] for m in cube.measures} | {ROWS: "sum"}
    # The base cuboid is small next to the source: one output partition, no shuffle.
    cells = prepared.groupby(list(_grains(cube).values()), dropna=False).agg(aggs, split_out=1)
    pairs = {
        key: prepared[[dim.grain(key), *dim.parents]].drop_duplicates(split_out=1)
        for key, dim in cube.dimensions.items()
        if dim.parents
    }
    cells, pairs = dask.compute(cells, pairs)
    return cells, pairs


def _tz_aware(frame, column: str) -> bool:
    return getattr(frame[column].dtype, "tz", None) is not None


def _time_dim(cube: Cube) -> str:
    keys = [k for k, d in cube.dimensions.items() if d.levels]
    if len(keys) != 1:
        raise WorkbenchError(
            "incremental refresh needs exactly one time dimension in the cube "
            f"(found {keys or 'none'}); rebuild it instead."
        )
    return keys[0]


def check_nesting(cube: Cube, pairs: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each member's parents, after checking that no member has two parents."""
    out = {}
    for key, frame in pairs.items():
        dim = cube.dimensions[key]
        grain = dim.grain(key)
        counts = frame.groupby(grain).size()
        bad = counts[counts > 1].index[:3].tolist()
        if bad:
            examples = "; ".join(_parents_of(frame, grain, dim.parents, m) for m in bad)
            raise CubeError(
                f"cube dimension {key!r}: levels {dim.parents} > {grain} are not "
                f"nested in the data: {examples}. Each {grain} needs exactly one "
                "parent; fix the data or declare the levels as separate dimensions."
            )
        out[key] = frame.set_index(grain)
    return out


def _parents_of(frame: pd.DataFrame, grain: str, parents: list[str], member: object) -> str:
    rows = frame.loc[frame[grain] == member, parents].astype("str")
    return f"{grain} {member!r} has parents " + ", ".join("/".join(r) for r in rows.values)


def cells_to_dataset(
    cells: pd.DataFrame,
    cube: Cube,
    parents: dict[str, pd.DataFrame],
    index: dict[str, pd.Index] | None = None,
) -> xr.Dataset:
    """Dense cells over every member combination; empty cells hold the measure's identity."""
    grains = _grains(cube)
    members = index or {g: cells.index.unique(g).sort_values() for g in grains.values()}
    size = math.prod(len(m) for m in members.values())
    limit = config.get("cube-max-cells")
    if size > limit:
        raise CubeError(
            f"the base cuboid would hold {size:,} cells (limit {limit:,}: "
            "workbench.cube-max-cells). Use a coarser time level or fewer dimensions."
        )
    full = pd.MultiIndex.from_product(list(members.values()), names=list(members))
    dense = cells.reindex(full)
    data = {}
    shape = tuple(len(m) for m in members.values())
    for name, m in cube.measures.items():
        values = dense[name].to_numpy(dtype="float64").reshape(shape)
        if m.agg in ("sum", "count"):
            values = np.nan_to_num(values, nan=0.0)
            if m.agg == "count":
                values = values.astype("int64")
        data[name] = (
            list(members),
            values,
            {"agg": m.agg, "column": m.column or "", "where": m.where or ""},
        )
    rows = np.nan_to_num(dense[ROWS].to_numpy(dtype="float64").reshape(shape)).astype("int64")
    data[ROWS] = (list(members), rows, {"agg": "count"})
    dataset = xr.Dataset(data, coords={g: m for g, m in members.items()})
    return attach_level_coords(dataset, cube, parents)


def attach_level_coords(ds: xr.Dataset, cube: Cube, parents: dict[str, pd.DataFrame]) -> xr.Dataset:
    """Coarser levels as coordinates along each stored dimension (month along day, ...)."""
    for key, dim in cube.dimensions.items():
        names = dim.level_names(key)
        held = next((n for n in names if n in ds.dims), None)
        if held is None:
            continue
        above = names[: names.index(held)]
        if dim.levels:
            for level, values in time_coords(pd.DatetimeIndex(ds[held].values), above).items():
                ds.coords[level] = (held, values)
        elif above and key in parents:
            lookup = parents[key].reset_index().drop_duplicates(held).set_index(held)
            for level in above:
                ds.coords[level] = (
                    held,
                    np.asarray(lookup[level].reindex(ds[held].values).astype("str"), dtype=object),
                )
    ds.attrs["derived_measures"] = dict(cube.derived_measures)
    return ds


# --- the dense path: integer codes and bincount ---------------------------------------------------


def _members_frame(df: pd.DataFrame, cube: Cube) -> pd.DataFrame:
    """Grain and parent members of one partition (no measures): the first, light pass."""
    out = {}
    for key, dim in cube.dimensions.items():
        grain = dim.grain(key)
        out[grain] = (
            truncate(df[dim.column], grain) if dim.levels else category_members(df[dim.column])
        )
        for parent in dim.parents:
            out[parent] = category_members(df[parent])
    return pd.DataFrame(out, index=df.index)


def measure_values(df: pd.DataFrame, cube: Cube) -> dict[str, np.ndarray]:
    """Per measure, the float values to reduce (counts as 0/1, ``where`` applied)."""
    out = {}
    for name, m in cube.measures.items():
        keep = df.eval(m.where).fillna(False).astype(bool).to_numpy() if m.where else None
        if m.agg == "count":
            values = (
                df[m.column].notna().to_numpy() if m.column else np.ones(len(df), dtype=bool)
            ).astype("float64")
        else:
            values = df[m.column].to_numpy(dtype="float64", na_value=np.nan)
        if keep is not None:
            values = np.where(keep, values, 0.0 if m.agg in ("sum", "count") else np.nan)
        out[name] = values
    out[ROWS] = np.ones(len(df), dtype="float64")
    return out


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
    columns = needed_columns(cube)
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


# --- rolling up --------------------------------------------------------------------------------


def reduce_dims(ds: xr.Dataset, dims: list[str]) -> xr.Dataset:
    """Drop ``dims`` by reducing each measure with its own operator."""
    if not dims:
        return ds
    out = {
        name: getattr(var, REDUCERS[var.attrs["agg"]])(dim=dims, keep_attrs=True)
        for name, var in ds.data_vars.items()
    }
    return xr.Dataset(out, attrs=ds.attrs)


def group_to(ds: xr.Dataset, dim: str, level: str) -> xr.Dataset:
    """Replace ``dim`` by the coarser ``level`` (a coordinate along it), per-measure operator."""
    parts = []
    for op in ("sum", "min", "max"):
        names = [n for n, v in ds.data_vars.items() if REDUCERS[v.attrs["agg"]] == op]
        if names:
            grouped = getattr(ds[names].groupby(level), op)(keep_attrs=True)
            parts.append(grouped)
    merged = xr.merge(parts, compat="override", join="exact")
    for name in merged.data_vars:
        merged[name].attrs = ds[name].attrs
    merged.attrs = ds.attrs
    keep = [c for c in merged.coords if c not in merged.dims and dim in ds[c].dims]
    return merged.drop_vars(keep)


def roll_up_cells(
    base: xr.Dataset, cube: Cube, levels: list[str], parents: dict[str, pd.DataFrame]
) -> xr.Dataset:
    """The cuboid keeping ``levels`` (one per dimension kept), computed from the base cells."""
    level_of = cube.levels()
    keep = {level_of[lv][0]: lv for lv in levels}
    grains = _grains(cube)
    ds = reduce_dims(base, [g for key, g in grains.items() if key not in keep])
    for key, level in keep.items():
        if level != grains[key]:
            ds = group_to(ds, grains[key], level)
    ds = ds.transpose(*[keep[k] for k in grains if k in keep])
    return attach_level_coords(ds, cube, parents)


# --- writing versions ----------------------------------------------------------------------------


def _chunks(ds: xr.Dataset) -> dict[str, int]:
    step = config.get("cube-time-chunk")
    return {
        d: (min(ds.sizes[d], step) if np.issubdtype(ds[d].dtype, np.datetime64) else ds.sizes[d])
        for d in ds.dims
    }


def write_cuboid(ds: xr.Dataset, path: Path) -> None:
    with warnings.catch_warnings():
        # Consolidated metadata is not yet in the Zarr v3 spec; zarr-python reads it, and a
        # cuboid then opens with one read instead of one per array.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        chunks = _chunks(ds)
        encoding = {
            name: {"chunks": tuple(chunks[d] for d in var.dims)}
            for name, var in ds.data_vars.items()
        }
        ds.to_zarr(path, mode="w", consolidated=True, zarr_format=3, encoding=encoding)


def _versions(root: Path) -> list[int]:
    return sorted(int(p.name[1:]) for p in root.glob("v*") if p.is_dir() and p.name[1:].isdigit())


def current_version(ws: Workspace, name: str) -> tuple[int, Path]:
    root = ws.path("cubes", name)
    pointer = read_json(root / CURRENT)
    return pointer["version"], root / pointer["path"]


def current_cube_path(ws: Workspace, name: str) -> Path:
    """The base cuboid's Zarr store of the current version."""
    return current_version(ws, name)[1] / f"{BASE}.zarr"


def _publish(ws: Workspace, name: str, folder: Path, version: int, keep: int) -> None:
    root = ws.path("cubes", name)
    write_json_atomic(
        root / CURRENT,
        {
            "version": version,
            "path": folder.name,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    for old in _versions(root)[: max(0, len(_versions(root)) - keep)]:
        shutil.rmtree(root / f"v{old:06d}", ignore_errors=True)


def _new_folder(ws: Workspace, name: str) -> tuple[int, Path]:
    root = ws.path("cubes", name)
    root.mkdir(parents=True, exist_ok=True)
    versions = _versions(root)
    version = (versions[-1] + 1) if versions else 1
    return version, root / f"v{version:06d}"


def _write_all(
    folder: Path,
    base: xr.Dataset,
    cube: Cube,
    parents: dict[str, pd.DataFrame],
    meta: dict,
    *,
    skip_base: bool = False,
) -> dict[str, int]:
    sizes = {BASE: int(math.prod(base.sizes.values()))}
    if not skip_base:
        write_cuboid(base, folder / f"{BASE}.zarr")
    groups = cube.aggregates if cube.aggregates is not None else default_aggregates(cube)
    for levels in groups:
        cuboid = roll_up_cells(base, cube, levels, parents)
        name = cuboid_name(levels)
        write_cuboid(cuboid, folder / f"{name}.zarr")
        sizes[name] = int(math.prod(cuboid.sizes.values()))
    parent_tables = {k: v.reset_index().to_dict("list") for k, v in parents.items()}
    write_json_atomic(
        folder / "cube.json",
        meta | {"cuboids": sizes, "parents": parent_tables, "aggregates": groups},
    )
    return sizes


def _meta(cube_name: str, cube: Cube, base: xr.Dataset, mode: str) -> dict:
    return {
        "cube": cube_name,
        "source": cube.source,
        "mode": mode,
        "rows": int(base[ROWS].sum()),
        "built_at": dt.datetime.now(dt.UTC).isoformat(),
        "levels": {lv: list(v) for lv, v in cube.levels().items()},
    }


def build_cube(catalog: Catalog, ws: Workspace, name: str) -> CubeBuild:
    """Aggregate the cube's source into a new version and make it current."""
    started = time.perf_counter()
    cube = catalog.cubes[name]
    dense = compute_dense(catalog, ws, cube)
    if dense is not None:
        base, parents = dense
    else:  # too many cells for dense partials: group by members, then lay the cells out
        cells, pairs = compute_cells(catalog, ws, cube)
        parents = check_nesting(cube, pairs)
        base = cells_to_dataset(cells, cube, parents)
    base = add_labels(catalog, ws, cube, base)
    version, folder = _new_folder(ws, name)
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    sizes = _write_all(staging, base, cube, parents, _meta(name, cube, base, "full"))
    staging.rename(folder)
    _publish(ws, name, folder, version, cube.keep_versions)
    return CubeBuild(
        name,
        version,
        folder,
        dict(base.sizes),
        int(base[ROWS].sum()),
        sizes,
        time.perf_counter() - started,
    )


def add_labels(catalog: Catalog, ws: Workspace, cube: Cube, base: xr.Dataset) -> xr.Dataset:
    for key, dim in cube.dimensions.items():
        if dim.labels:
            grain = dim.grain(key)
            labels = read_dataset(
                catalog, ws, dim.labels.dataset, columns=[dim.labels.key, dim.labels.label]
            ).compute()
            mapping = labels.drop_duplicates(dim.labels.key).set_index(dim.labels.key)
            members = pd.Index(base[grain].values)
            text = mapping[dim.labels.label].reindex(members).astype("str")
            text = text.where(text.notna(), members.astype("str"))
            base.coords[f"{grain}_label"] = (grain, np.asarray(text, dtype=object))
    return base


def load_parents(folder: Path) -> dict[str, pd.DataFrame]:
    meta = read_json(folder / "cube.json")
    out = {}
    for key, table in meta.get("parents", {}).items():
        frame = pd.DataFrame(table)
        out[key] = frame.set_index(frame.columns[0])
    return out


def refresh_cube(
    catalog: Catalog, ws: Workspace, name: str, since: str | pd.Timestamp
) -> CubeBuild:
    """Recompute the time chunks from ``since`` on and append new periods, in a new version.

    The chunks touched are rewritten with region writes that start on a chunk boundary, so no
    chunk is written by halves; the coarser cuboids are rolled up again from the new base. When
    the new data brings members the cube has not seen in another dimension, the dense layout
    changes and the cube is rebuilt in full instead (``mode`` says which happened).
    """
    started = time.perf_counter()
    cube = catalog.cubes[name]
    time_key = _time_dim(cube)
    grain = cube.dimensions[time_key].grain(time_key)
    _, folder = current_version(ws, name)
    base = xr.open_zarr(folder / f"{BASE}.zarr", consolidated=True, chunks=None)
    stamps = pd.DatetimeIndex(base[grain].values)
    step = config.get("cube-time-chunk")
    first = int(np.searchsorted(stamps, truncate(pd.Series([pd.Timestamp(since)]), grain)[0]))
    start = (first // step) * step  # a region must begin on a chunk boundary
    since_ts = (
        stamps[start]
        if start < len(stamps)
        else truncate(pd.Series([pd.Timestamp(since)]), grain)[0]
    )
    cells, pairs = compute_cells(catalog, ws, cube, since=pd.Timestamp(since_ts))
    parents = check_nesting(cube, pairs)
    other = {g: pd.Index(base[g].values) for g in _grains(cube).values() if g != grain}
    new_other = {g: cells.index.unique(g).difference(m) for g, m in other.items()}
    stale_parents = _parents_changed(parents, load_parents(folder))
    if any(len(v) for v in new_other.values()) or stale_parents:
        build = build_cube(catalog, ws, name)
        return CubeBuild(**{**build.__dict__, "mode": "full (new members)"})
    tail = stamps[start:].union(cells.index.unique(grain)).sort_values()
    index = {g: (tail if g == grain else other[g]) for g in _grains(cube).values()}
    part = add_labels(
        catalog, ws, cube, cells_to_dataset(cells, cube, load_parents(folder), index=index)
    )
    version, new_folder = _new_folder(ws, name)
    staging = new_folder.with_name(f".{new_folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging)
    _write_tail(part, staging / f"{BASE}.zarr", grain, start, len(stamps))
    merged = xr.open_zarr(staging / f"{BASE}.zarr", consolidated=True, chunks=None).load()
    merged = attach_level_coords(merged, cube, load_parents(folder))
    sizes = _write_all(
        staging,
        merged,
        cube,
        load_parents(folder),
        _meta(name, cube, merged, "refresh"),
        skip_base=True,
    )
    staging.rename(new_folder)
    _publish(ws, name, new_folder, version, cube.keep_versions)
    return CubeBuild(
        name,
        version,
        new_folder,
        dict(merged.sizes),
        int(merged[ROWS].sum()),
        sizes,
        time.perf_counter() - started,
        mode=f"refresh from {since_ts:%Y-%m-%d}",
    )


def _parents_changed(new: dict[str, pd.DataFrame], old: dict[str, pd.DataFrame]) -> bool:
    for key, table in new.items():
        known = old.get(key)
        if known is None:
            return True
        joined = table.merge(
            known, left_index=True, right_index=True, how="left", suffixes=("", "_old")
        )
        for col in table.columns:
            if (
                col + "_old" in joined
                and (joined[col].astype(str) != joined[col + "_old"].astype(str)).any()
            ):
                return True
    return False


def _write_tail(part: xr.Dataset, store: Path, grain: str, start: int, existing: int) -> None:
    """Overwrite members [start, existing) in place and append the ones after them."""
    data_vars = list(part.data_vars)
    inside = part.isel({grain: slice(0, existing - start)})
    beyond = part.isel({grain: slice(existing - start, None)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        if inside.sizes[grain]:
            region = inside[data_vars].drop_vars(
                [c for c in inside.coords if grain not in inside[c].dims]
            )
            region.to_zarr(
                store, region={grain: slice(start, existing)}, consolidated=True, zarr_format=3
            )
        if beyond.sizes[grain]:
            appended = beyond[data_vars].drop_vars(
                [c for c in beyond.coords if grain not in beyond[c].dims]
            )
            appended.to_zarr(store, append_dim=grain, consolidated=True, zarr_format=3)
