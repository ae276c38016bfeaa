"""Cube versions on disk: ``cubes/<cube>/v<N>/`` with one Zarr store per cuboid.

A version folder is written whole under a staging name of its own
(``.v-<host>-<pid>-<random>.tmp``, so two builds never share one), then, under the cube's publish
lock, numbered, renamed into place and named in ``CURRENT.json``: readers never see a half-written
cube and ``CURRENT.json`` never names a missing version. Superseded versions beyond
``keep_versions`` are deleted only after the ``cube-version-grace`` period, so a reader that opened
one before it was superseded keeps working.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench import config
from workbench.io.locks import target_lock
from workbench.io.workspace import Workspace, read_json, write_json_atomic
from workbench.validation.dataset_rules import parse_age

CURRENT = "CURRENT.json"
# Publishing only renames a folder and rewrites a small file: waiting for it is always short.
PUBLISH_WAIT_SECONDS = 120
_STAGING = re.compile(r"\.v-(?P<host>.+)-(?P<pid>\d+)-[^-]+\.tmp")


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


@dataclass
class StagedVersion:
    """A version being written: ``staging`` now; ``version`` and ``folder`` once published."""

    staging: Path
    version: int = 0
    folder: Path | None = None


@contextmanager
def staged_version(ws: Workspace, name: str, keep: int) -> Iterator[StagedVersion]:
    """Yield a new, empty staging folder of its own; the caller fills it.

    On success the version number is decided under the cube's publish lock, the folder renamed
    into place and ``CURRENT.json`` switched to it. If the body raises, the staging folder is
    removed; if the process dies, a later publish removes it.
    """
    root = ws.path("cubes", name)
    root.mkdir(parents=True, exist_ok=True)
    prefix = f".v-{socket.gethostname()}-{os.getpid()}-"
    stage = StagedVersion(Path(tempfile.mkdtemp(dir=root, prefix=prefix, suffix=".tmp")))
    stage.staging.chmod(0o755)  # mkdtemp makes 0700; cubes are meant to be read by others
    try:
        yield stage
        with target_lock(
            ws, "cube-versions", name, doing=f"publishing cube {name}", wait=PUBLISH_WAIT_SECONDS
        ):
            stage.version, stage.folder = _publish(root, stage.staging)
            _retire(root, keep, config.get("cube-version-grace"))
    finally:
        shutil.rmtree(stage.staging, ignore_errors=True)


def _publish(root: Path, staging: Path) -> tuple[int, Path]:
    versions = _versions(root)
    version = (versions[-1] + 1) if versions else 1
    folder = root / f"v{version:06d}"
    staging.rename(folder)
    try:
        write_json_atomic(
            root / CURRENT,
            {
                "version": version,
                "path": folder.name,
                "written_at": dt.datetime.now(dt.UTC).isoformat(),
            },
        )
    except BaseException:
        folder.rename(staging)  # never leave a version that CURRENT.json did not switch to
        raise
    return version, folder


def _retire(root: Path, keep: int, grace: str) -> None:
    """Delete versions beyond the newest ``keep`` once superseded for longer than ``grace``, and
    staging folders of builds that died."""
    limit = time.time() - parse_age(grace).total_seconds()
    versions = _versions(root)
    for old, newer in zip(versions[: max(0, len(versions) - keep)], versions[1:], strict=False):
        # A version stopped being current when the next one was published (its folder's mtime).
        if (root / f"v{newer:06d}").stat().st_mtime < limit:
            shutil.rmtree(root / f"v{old:06d}", ignore_errors=True)
    for staging in root.glob(".v-*.tmp"):
        match = _STAGING.fullmatch(staging.name)
        if match and match["host"] == socket.gethostname() and not _alive(int(match["pid"])):
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_parents(folder: Path) -> dict[str, pd.DataFrame]:
    meta = read_json(folder / "cube.json")
    out = {}
    for key, table in meta.get("parents", {}).items():
        frame = pd.DataFrame(table)
        out[key] = frame.set_index(frame.columns[0])
    return out
