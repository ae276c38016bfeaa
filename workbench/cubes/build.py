"""Build and refresh cubes: the base cuboid from the source, coarser cuboids from the base.

A build writes a complete new version folder beside the current one and then switches
``CURRENT.json``; a refresh copies the current version, rewrites only the time chunks it must
and rolls the coarser cuboids up again, then switches the same way.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr

from workbench import config
from workbench.catalog.base import digest
from workbench.catalog.models import Catalog, Cube
from workbench.cubes.cells import (
    REDUCERS,
    ROWS,
    _grains,
    _time_dim,
    attach_level_coords,
    cells_to_dataset,
    check_nesting,
    needed_columns,
    prepare_cells,
    reduce_dims,
    roll_up_cells,
)
from workbench.cubes.dense import compute_dense
from workbench.cubes.spec import cuboid_name, default_aggregates, truncate
from workbench.cubes.store import (
    BASE,
    CURRENT,
    current_cube_path,
    current_version,
    load_parents,
    staged_version,
    write_cuboid,
)
from workbench.errors import CubeError
from workbench.io.delta import growth_since, open_table, read_files
from workbench.io.workspace import Workspace, read_json, write_json_atomic
from workbench.zones.tables import read_dataset, table_path

__all__ = [
    "BASE",
    "CURRENT",
    "REDUCERS",
    "ROWS",
    "CubeBuild",
    "build_cube",
    "current_cube_path",
    "current_version",
    "reduce_dims",
    "refresh_cube",
    "update_cube",
]


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


def compute_cells(
    catalog: Catalog, ws: Workspace, cube: Cube, *, since: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Base cells (one row per occupied cell) and each dimension's (grain, parents) pairs."""
    frame = read_dataset(catalog, ws, cube.source, columns=needed_columns(catalog, cube))
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


def _meta(cube_name: str, cube: Cube, base: xr.Dataset, mode: str, inputs: dict) -> dict:
    return {
        "cube": cube_name,
        "source": cube.source,
        "spec": digest(cube),
        "inputs": inputs,
        "mode": mode,
        "rows": int(base[ROWS].sum()),
        "built_at": dt.datetime.now(dt.UTC).isoformat(),
        "levels": {lv: list(v) for lv, v in cube.levels().items()},
    }


def build_cube(catalog: Catalog, ws: Workspace, name: str) -> CubeBuild:
    """Aggregate the cube's source into a new version and make it current."""
    started = time.perf_counter()
    cube = catalog.cube(name)
    inputs = cube_inputs(catalog, ws, cube)  # before reading: a later append is seen next time
    dense = compute_dense(catalog, ws, cube)
    if dense is not None:
        base, parents = dense
    else:  # too many cells for dense partials: group by members, then lay the cells out
        cells, pairs = compute_cells(catalog, ws, cube)
        parents = check_nesting(cube, pairs)
        base = cells_to_dataset(cells, cube, parents)
    base = add_labels(catalog, ws, cube, base)
    with staged_version(ws, name, cube.keep_versions) as stage:
        meta = _meta(name, cube, base, "full", inputs)
        sizes = _write_all(stage.staging, base, cube, parents, meta)
    return CubeBuild(
        name,
        stage.version,
        stage.folder,
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


def cube_inputs(catalog: Catalog, ws: Workspace, cube: Cube) -> dict[str, int]:
    """The current version of each table the cube reads: its source and its label tables."""
    names = [cube.source, *(d.labels.dataset for d in cube.dimensions.values() if d.labels)]
    return {n: open_table(table_path(catalog, ws, n)).version() for n in dict.fromkeys(names)}


def update_cube(catalog: Catalog, ws: Workspace, name: str) -> CubeBuild:
    """Bring the cube up to date with its source: when the source only gained rows since the
    current version was built (same spec, same label tables), refresh the time chunks from the
    earliest period the new rows fall in; otherwise build it in full."""
    since = appended_since(catalog, ws, name)
    if since is None:
        return build_cube(catalog, ws, name)
    return refresh_cube(catalog, ws, name, since)


def appended_since(catalog: Catalog, ws: Workspace, name: str) -> pd.Timestamp | None:
    """The earliest time of the rows the cube's source gained since its current version was
    built, or None when a refresh cannot be proven equal to a rebuild."""
    cube = catalog.cube(name)
    try:
        built = read_json(current_version(ws, name)[1] / "cube.json")
        time_key = _time_dim(cube)
    except (OSError, KeyError, CubeError):  # no version yet, or no single time dimension
        return None
    before, now = built.get("inputs") or {}, cube_inputs(catalog, ws, cube)
    if built.get("spec") != digest(cube) or set(before) != set(now):
        return None
    if any(before[n] != now[n] for n in now if n != cube.source):
        return None
    path = table_path(catalog, ws, cube.source)
    growth = growth_since(path, before[cube.source])
    if growth is None or not growth.files:
        return None
    column = cube.dimensions[time_key].column
    first = read_files(growth.files, path, columns=[column])[column].min().compute()
    if pd.isna(first):
        return None
    first = pd.Timestamp(first)
    return first.tz_convert("UTC").tz_localize(None) if first.tzinfo else first


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
    cube = catalog.cube(name)
    inputs = cube_inputs(catalog, ws, cube)
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
    known_parents = load_parents(folder)
    if any(len(v) for v in new_other.values()) or _parents_changed(parents, known_parents):
        build = build_cube(catalog, ws, name)
        return CubeBuild(**{**build.__dict__, "mode": "full (new members)"})
    tail = stamps[start:].union(cells.index.unique(grain)).sort_values()
    index = {g: (tail if g == grain else other[g]) for g in _grains(cube).values()}
    part = add_labels(catalog, ws, cube, cells_to_dataset(cells, cube, known_parents, index=index))
    with staged_version(ws, name, cube.keep_versions) as stage:
        shutil.copytree(folder, stage.staging, dirs_exist_ok=True)
        _write_tail(part, stage.staging / f"{BASE}.zarr", grain, start, len(stamps))
        store = stage.staging / f"{BASE}.zarr"
        merged = xr.open_zarr(store, consolidated=True, chunks=None).load()
        merged = attach_level_coords(merged, cube, known_parents)
        sizes = _write_all(
            stage.staging,
            merged,
            cube,
            known_parents,
            _meta(name, cube, merged, "refresh", inputs),
            skip_base=True,
        )
    return CubeBuild(
        name,
        stage.version,
        stage.folder,
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
