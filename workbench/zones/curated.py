"""Curated tables: a lake table joined with others as declared, plus derived columns.

Right-hand tables small enough (``workbench.broadcast-max-rows``: by default, sized against the
workers' memory) are read once, checked for unique keys and broadcast to every partition as one
pandas frame, so the big table is never shuffled. Larger ones fall back to Dask's hash join.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import dask.dataframe as dd
import pandas as pd
from deltalake import DeltaTable

from workbench import config
from workbench.catalog.base import digest
from workbench.catalog.load import columns_of, expression_names
from workbench.catalog.models import Catalog, Join
from workbench.cluster import share
from workbench.errors import WorkbenchError
from workbench.io.delta import (
    Growth,
    commit_info,
    growth_since,
    open_table,
    read_files,
    rows_of,
    table_rows,
    write_table,
)
from workbench.io.workspace import Workspace
from workbench.zones.joins import (
    CuratedView,
    DirectLookup,
    RightSide,
    check_unique,
    derive_columns,
    merge_partition,
    renamed_keys,
    take_partition,
)
from workbench.zones.tables import read_dataset, table_path


@dataclass(frozen=True)
class CuratedBuild:
    dataset: str
    rows: int
    version: int
    broadcast: tuple[str, ...]
    appended: int | None = None  # rows added to the previous version; None for a full build


SOURCES = "workbench.sources"
SPEC = "workbench.spec"


def build_curated(
    catalog: Catalog, ws: Workspace, name: str, *, incremental: bool = False
) -> CuratedBuild:
    """Join and derive curated ``name`` into a new version of its table.

    With ``incremental``, when the table was built by the same spec, its joined tables did not
    change and its ``from`` table only gained files since, only the rows of those files are
    joined and appended: every curated row depends on its own source row alone (joins on
    unique keys, derived columns per row), so this equals a full build.
    """
    ds = catalog.datasets[name]
    sources = source_versions(catalog, ws, name)
    columns = columns_of(catalog, ds.from_)
    growth = _appended_source(catalog, ws, name, sources) if incremental else None
    if growth is not None:
        sources[ds.from_] = growth.version
        frame = read_files(growth.files, table_path(catalog, ws, ds.from_), columns=columns)
    else:  # Declared columns only: lineage columns (_batch_id, _file, _line) stay in the lake.
        frame = read_dataset(catalog, ws, ds.from_, columns=columns, version=sources[ds.from_])
    frame, broadcast = _joined(catalog, ws, ds, frame, sources)
    path = ws.path("curated", name)
    before = table_rows(path) if growth is not None else 0
    version = write_table(
        frame,
        path,
        mode="append" if growth is not None else "overwrite",
        operation="curate" if growth is None else "curate (append)",
        info={SOURCES: json.dumps(sources), SPEC: digest(ds)},
    )
    rows = table_rows(path, version)
    appended = rows - before if growth is not None else None
    return CuratedBuild(name, rows, version, tuple(broadcast), appended)


def _joined(
    catalog: Catalog, ws: Workspace, ds, frame: dd.DataFrame, sources: dict[str, int]
) -> tuple[dd.DataFrame, list[str]]:
    """``frame`` with every declared join and derived column; the joins that were broadcast."""
    broadcast = []
    for join in ds.joins:
        version = sources[join.dataset]
        if can_broadcast(catalog, join, table_rows(table_path(catalog, ws, join.dataset), version)):
            right = _right_side(catalog, ws, join, version).compute()
            frame = _broadcast_join(frame, right, join)
            broadcast.append(join.dataset)
        else:
            right = _right_side(catalog, ws, join, version)
            keys = renamed_keys(join)
            frame = frame.merge(right, how=join.how, left_on=join.left_keys, right_on=keys)
            frame = frame.drop(columns=keys)
    frame = frame.map_partitions(
        derive_columns, ds.derived, meta=derive_columns(frame._meta, ds.derived)
    )
    return frame, broadcast


def _appended_source(
    catalog: Catalog, ws: Workspace, name: str, sources: dict[str, int]
) -> Growth | None:
    """What the ``from`` table gained since curated ``name`` was built, when that is all that
    changed (same spec, same joined table versions, the ``from`` table only appended)."""
    ds = catalog.datasets[name]
    built = built_from(ws, name)
    if not built or set(built) != set(sources):
        return None
    if commit_info(ws.path("curated", name)).get(SPEC) != digest(ds):
        return None
    if any(built[j.dataset] != sources[j.dataset] for j in ds.joins):
        return None
    return growth_since(table_path(catalog, ws, ds.from_), built[ds.from_])


def source_versions(catalog: Catalog, ws: Workspace, name: str) -> dict[str, int]:
    """The current version of each table curated ``name`` is made from."""
    ds = catalog.datasets[name]
    names = [ds.from_, *(j.dataset for j in ds.joins)]
    return {n: open_table(table_path(catalog, ws, n)).version() for n in names}


def is_current(catalog: Catalog, ws: Workspace, name: str) -> bool:
    """Whether curated ``name`` was built from the current versions of its source tables, so
    computing it again from them gives the same rows."""
    try:
        return built_from(ws, name) == source_versions(catalog, ws, name)
    except WorkbenchError:  # a source table is missing
        return False


def built_from(ws: Workspace, name: str) -> dict[str, int] | None:
    """The source table versions the latest version of curated ``name`` was built from."""
    path = ws.path("curated", name)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    recorded = commit_info(path).get(SOURCES)
    return json.loads(recorded) if recorded is not None else None


def can_broadcast(catalog: Catalog, join: Join, rows: int) -> bool:
    """Whether the right side of ``join`` is small enough to send whole to every worker.

    ``broadcast-max-rows`` set to a number is a row limit. ``auto`` sizes the table in memory
    (8 bytes a value for its keys and requested columns, plus a direct-lookup array of up to
    four entries a row) against ``broadcast-memory-fraction`` of the smallest worker's memory.
    ``rows``: the right-hand table's row count.
    """
    limit = config.get("broadcast-max-rows")
    if limit != "auto":
        return rows <= int(limit)
    columns = len(join.right_keys) + len(join.column_map(columns_of(catalog, join.dataset)))
    return rows * 8 * (columns + 4) <= config.get("broadcast-memory-fraction") * worker_memory()


def worker_memory() -> float:
    """The smallest worker memory limit of the current cluster (a share of this machine's
    memory when there is none, or the workers have no limit)."""
    import psutil

    try:
        from distributed import get_client

        limits = [w["memory_limit"] for w in get_client().scheduler_info()["workers"].values()]
    except ValueError:
        limits = []
    limits = [m for m in limits if m]
    return float(min(limits)) if limits else psutil.virtual_memory().total / 4


def _right_side(
    catalog: Catalog, ws: Workspace, join: Join, version: int | None = None
) -> dd.DataFrame:
    """The right table with only the join keys (renamed apart) and the requested columns."""
    renames = join.column_map(columns_of(catalog, join.dataset))
    keys = dict(zip(join.right_keys, renamed_keys(join), strict=True))
    columns = list(dict.fromkeys([*keys, *renames]))
    right = read_dataset(catalog, ws, join.dataset, columns=columns, version=version)
    right = right.assign(**{new: right[old] for old, new in keys.items()})
    return right[[*keys.values(), *renames]].rename(columns=renames)


def _broadcast_join(frame: dd.DataFrame, right: pd.DataFrame, join: Join) -> dd.DataFrame:
    check_unique(right, join)
    keys = renamed_keys(join)
    lookup = DirectLookup.build(right, keys)
    if lookup is not None:
        meta = lookup.join(frame._meta, join)
        return frame.map_partitions(take_partition, share(lookup), join, meta=meta)
    small = share(right)
    meta = merge_partition(frame._meta, right.iloc[:0], join)
    return frame.map_partitions(merge_partition, small, join, meta=meta)


def curated_view(
    catalog: Catalog, ws: Workspace, name: str, wanted: list[str]
) -> CuratedView | None:
    """The plan to compute ``wanted`` columns of curated ``name`` per partition of its source.

    None when ``name`` is not curated, was not built from the current source versions (so its
    stored rows could differ from a fresh join), or a join is too large to broadcast.
    """
    ds = catalog.datasets[name]
    if ds.zone != "curated":
        return None
    # Each source table opened once, at its current version: for that version, its size and
    # its files (opening a table replays its log: tens of milliseconds each).
    try:
        tables = {
            n: open_table(table_path(catalog, ws, n))
            for n in [ds.from_, *(j.dataset for j in ds.joins)]
        }
    except WorkbenchError:  # a source table is missing
        return None
    versions = {n: t.version() for n, t in tables.items()}
    if built_from(ws, name) != versions:
        return None
    if not all(can_broadcast(catalog, j, rows_of(tables[j.dataset])) for j in ds.joins):
        return None
    need = set(wanted)
    derived = {}
    for column, spec in reversed(list(ds.derived.items())):
        if column in need:
            derived[column] = spec
            need |= set(spec.inputs) | set(expression_names(spec.expr or ""))
    need |= {key for join in ds.joins for key in join.left_keys}
    steps = []
    for join in reversed(ds.joins):
        side = _right_plan(catalog, join, tables[join.dataset].file_uris(), need)
        if side is not None:
            steps.append(side)
    source_cols = columns_of(catalog, ds.from_)
    columns = [c for c in source_cols if c in need]
    derived = dict(reversed(derived.items()))
    files = tuple(tables[ds.from_].file_uris())
    return CuratedView(ds.from_, versions, columns, steps[::-1], derived, files)


def _right_plan(catalog: Catalog, join: Join, files: list[str], need: set[str]) -> RightSide | None:
    """What a task reads to build one join's right side: the table's files and the columns."""
    renames = join.column_map(columns_of(catalog, join.dataset))
    keep = {old: new for old, new in renames.items() if new in need}
    if not keep and join.how == "left":
        return None  # a left join on unique keys that brings nothing wanted changes nothing
    keys = list(zip(join.right_keys, renamed_keys(join), strict=True))
    return RightSide(join, files, [*keys, *keep.items()])
