"""Cube cells: members and measures per row, nesting checks, the dense layout, roll-ups.

Every stored measure is additive (sum, count) or idempotent (min, max), so any roll-up of the
stored cells is exact; means and rates are derived at query time from these parts. Cells with no
rows hold the measure's identity: 0 for sums and counts, NaN for min and max.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from workbench import config
from workbench.catalog.expressions import evaluate
from workbench.catalog.load import columns_of, expression_names
from workbench.catalog.models import Catalog, Cube
from workbench.cubes.spec import category_members, time_coords, truncate
from workbench.errors import CubeError

ROWS = "__rows"


REDUCERS = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}


def needed_columns(catalog: Catalog, cube: Cube) -> list[str]:
    """The source columns a build reads: dimensions, parents, measures and their conditions."""
    known = set(columns_of(catalog, cube.source))
    cols = []
    for dim in cube.dimensions.values():
        cols += [dim.column, *dim.parents]
    for m in cube.measures.values():
        cols += [m.column] if m.column else []
        cols += [c for c in expression_names(m.where) if c in known]
    return list(dict.fromkeys(cols))


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
        keep = evaluate(m.where, df).fillna(False).astype(bool).to_numpy() if m.where else None
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


def _time_dim(cube: Cube) -> str:
    keys = [k for k, d in cube.dimensions.items() if d.levels]
    if len(keys) != 1:
        raise CubeError(
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
