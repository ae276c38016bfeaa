"""Cube versions on disk: ``cubes/<cube>/v<N>/`` with one Zarr store per cuboid.

A version folder is written whole (under a temporary name, then renamed) before
``CURRENT.json`` is switched to it, so readers never see a half-written cube.
"""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench import config
from workbench.io.workspace import Workspace, read_json, write_json_atomic

CURRENT = "CURRENT.json"


BASE = "base"


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


@contextmanager
def staged_version(ws: Workspace, name: str, keep: int) -> Iterator[tuple[int, Path, Path]]:
    """Yield (version, staging folder, final folder); the caller fills the staging folder.

    On success the folder is renamed into place and ``CURRENT.json`` switched to it; if the
    body raises (or the process dies), only the hidden staging folder is left, and the next
    build of the cube removes it.
    """
    version, folder = _new_folder(ws, name)
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    yield version, staging, folder
    staging.rename(folder)
    _publish(ws, name, folder, version, keep)


def load_parents(folder: Path) -> dict[str, pd.DataFrame]:
    meta = read_json(folder / "cube.json")
    out = {}
    for key, table in meta.get("parents", {}).items():
        frame = pd.DataFrame(table)
        out[key] = frame.set_index(frame.columns[0])
    return out
