"""Build a cube: one Dask group-by pass over the source, stored as an xarray Dataset in Zarr.

Every stored measure is additive (sum, count) or idempotent (min, max), so any roll-up of the
stored cells is exact; means and rates are derived at query time from these parts. Cells with no
rows hold the measure's identity: 0 for sums and counts, NaN for min and max.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench.catalog.models import Catalog, Cube
from workbench.io.workspace import Workspace, read_json, write_json_atomic
from workbench.zones.tables import read_dataset

CURRENT = "CURRENT.json"
MISSING_MEMBER = "(missing)"
_FREQ = {"year": "Y", "quarter": "Q", "month": "M"}
_REDUCE = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}


@dataclass(frozen=True)
class CubeBuild:
    cube: str
    version: int
    path: Path
    shape: dict[str, int]
    rows_in: int
    seconds: float


def build_cube(catalog: Catalog, ws: Workspace, name: str) -> CubeBuild:
    """Aggregate the cube's source into a new version and make it current."""
    started = time.perf_counter()
    spec = catalog.cubes[name]
    frame = read_dataset(catalog, ws, spec.source, columns=_needed_columns(spec))
    prepared = frame.map_partitions(prepare_cells, spec, meta=prepare_cells(frame._meta, spec))
    aggs = {m: _REDUCE[spec.measures[m].agg] for m in spec.measures} | {"__rows": "sum"}
    # The base cuboid is small next to the source: one output partition, no shuffle.
    cells = prepared.groupby(list(spec.dimensions), dropna=False).agg(aggs, split_out=1).compute()
    dataset = cells_to_dataset(cells, spec)
    for dim_name, dim in spec.dimensions.items():
        if dim.labels:
            labels = read_dataset(
                catalog, ws, dim.labels.dataset, columns=[dim.labels.key, dim.labels.label]
            ).compute()
            mapping = labels.set_index(dim.labels.key)[dim.labels.label]
            members = pd.Index(dataset[dim_name].values)
            dataset.coords[f"{dim_name}_label"] = (
                dim_name,
                np.asarray(
                    mapping.reindex(members).fillna(pd.Series(members, index=members)),
                    dtype=np.dtypes.StringDType(),
                ),
            )
    dataset.attrs.update(
        cube=name,
        source=spec.source,
        built_at=dt.datetime.now(dt.UTC).isoformat(),
        rows=int(dataset["__rows"].sum()),
    )
    version, path = _write_version(ws, name, dataset, spec.keep_versions)
    return CubeBuild(
        name,
        version,
        path,
        dict(dataset.sizes),
        dataset.attrs["rows"],
        time.perf_counter() - started,
    )


def _needed_columns(spec: Cube) -> list[str]:
    cols = [d.column for d in spec.dimensions.values()]
    for m in spec.measures.values():
        cols += [m.column] if m.column else []
        cols += re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.where or "")
    return [c for c in dict.fromkeys(cols) if c not in {"and", "or", "not", "True", "False"}]


def prepare_cells(df: pd.DataFrame, spec: Cube) -> pd.DataFrame:
    """Per partition: dimension members at the cube's level, one summable column per measure."""
    out = {}
    for name, dim in spec.dimensions.items():
        out[name] = _members(df[dim.column], dim.level)
    for name, m in spec.measures.items():
        keep = df.eval(m.where).fillna(False).astype(bool) if m.where else None
        if m.agg == "count":
            values = df[m.column].notna() if m.column else pd.Series(True, index=df.index)
            values = values.astype("int64")
        else:
            values = df[m.column].astype("float64")
        if keep is not None:
            values = values.where(keep, 0 if m.agg in ("sum", "count") else np.nan)
        out[name] = values
    out["__rows"] = pd.Series(1, index=df.index, dtype="int64")
    return pd.DataFrame(out, index=df.index)


def _members(values: pd.Series, level: str | None) -> pd.Series:
    if level is None:
        if values.dtype.kind in "OUT" or str(values.dtype) in ("str", "string"):
            return values.astype("str").fillna(MISSING_MEMBER)
        return values
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    if level in _FREQ:
        return stamps.dt.to_period(_FREQ[level]).dt.start_time.astype("datetime64[ns]")
    return stamps.dt.floor("D" if level == "day" else "h").astype("datetime64[ns]")


def cells_to_dataset(cells: pd.DataFrame, spec: Cube) -> xr.Dataset:
    """Dense xarray Dataset over every member combination, empty cells at the identity."""
    dataset = xr.Dataset.from_dataframe(cells.sort_index())
    for name, m in spec.measures.items():
        if m.agg in ("sum", "count"):
            dataset[name] = dataset[name].fillna(0)
            if m.agg == "count":
                dataset[name] = dataset[name].astype("int64")
        dataset[name].attrs.update(agg=m.agg, column=m.column or "", where=m.where or "")
    dataset["__rows"] = dataset["__rows"].fillna(0).astype("int64")
    dataset["__rows"].attrs["agg"] = "count"
    dataset.attrs["derived_measures"] = dict(spec.derived_measures)
    return dataset


def _write_version(ws: Workspace, name: str, dataset: xr.Dataset, keep: int) -> tuple[int, Path]:
    """Write ``v<N>.zarr`` beside the current version, then switch CURRENT atomically."""
    root = ws.path("cubes", name)
    root.mkdir(parents=True, exist_ok=True)
    versions = sorted(int(p.stem[1:]) for p in root.glob("v*.zarr"))
    version = (versions[-1] + 1) if versions else 1
    path = root / f"v{version:06d}.zarr"
    time_dims = [d for d in dataset.dims if np.issubdtype(dataset[d].dtype, np.datetime64)]
    chunks = {
        d: (min(dataset.sizes[d], 64) if d in time_dims else dataset.sizes[d]) for d in dataset.dims
    }
    with warnings.catch_warnings():
        # Consolidated metadata is not yet in the Zarr v3 spec; zarr-python supports it and
        # opening a cube reads one document instead of one per array.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        dataset.chunk(chunks).to_zarr(path, mode="w-", consolidated=True, zarr_format=3)
    write_json_atomic(
        root / CURRENT,
        {"version": version, "path": path.name, "written_at": dt.datetime.now(dt.UTC).isoformat()},
    )
    for old in versions[: max(0, len(versions) + 1 - keep)]:
        shutil.rmtree(root / f"v{old:06d}.zarr", ignore_errors=True)
    return version, path


def current_cube_path(ws: Workspace, name: str) -> Path:
    root = ws.path("cubes", name)
    pointer = read_json(root / CURRENT)
    return root / pointer["path"]
