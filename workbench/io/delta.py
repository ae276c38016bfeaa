"""Versioned tables in Delta Lake: Dask workers write Parquet files, the client commits them.

dask-deltatable 0.4 cannot overwrite a table, so the two halves are written here: each
partition becomes one Parquet file with a unique name inside the table folder (invisible to
readers until committed), then one Delta transaction adds them all (and, on overwrite, removes the
previous files from the new version). A crash before the commit leaves only unreferenced files:
every reader still sees the last committed version. Any Delta reader (DuckDB, Polars, Spark,
``deltalake``) can open the tables.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    create_table_with_add_actions,
)

from workbench.errors import WorkspaceError

_ACTION_META = pd.DataFrame(
    {
        "path": pd.Series([], dtype="str"),
        "size": pd.Series([], dtype="int64"),
        "rows": pd.Series([], dtype="int64"),
        "stats": pd.Series([], dtype="str"),
    }
)


@dataclass(frozen=True)
class StagedTable:
    """Parquet files being written for ``path``; ``actions`` is lazy until computed."""

    path: Path
    actions: dd.DataFrame
    schema: pa.Schema


def arrow_schema(meta: pd.DataFrame) -> pa.Schema:
    """The Arrow schema for a frame, with timestamps in microseconds as Delta stores them."""
    fields = []
    for field in pa.Schema.from_pandas(meta, preserve_index=False):
        typ = field.type
        if pa.types.is_timestamp(typ):
            typ = pa.timestamp("us", tz=typ.tz)
        elif pa.types.is_large_string(typ) or pa.types.is_string_view(typ) or pa.types.is_null(typ):
            typ = pa.string()
        fields.append(pa.field(field.name, typ))
    return pa.schema(fields)


def stage_table(ddf: dd.DataFrame, path: Path, *, prefix: str = "part") -> StagedTable:
    """Plan the Parquet files of a new version; nothing runs until ``actions`` is computed.

    File names start with ``prefix`` so that a later commit can replace exactly these files
    (for instance all files of one batch) and nothing else.
    """
    path.mkdir(parents=True, exist_ok=True)
    schema = arrow_schema(ddf._meta)
    actions = ddf.map_partitions(
        _write_part, str(path), schema, prefix, meta=_ACTION_META, enforce_metadata=False
    )
    return StagedTable(path, actions, schema)


def _write_part(df: pd.DataFrame, root: str, schema: pa.Schema, prefix: str) -> pd.DataFrame:
    return pd.DataFrame([write_part(df, root, schema, prefix)])


def write_part(rows: pd.DataFrame | pa.Table, root: str, schema: pa.Schema, prefix: str) -> dict:
    """Write one frame (pandas, or Arrow already in ``schema``) as a Parquet file of the table;
    returns its future add action."""
    table = (
        rows
        if isinstance(rows, pa.Table)
        else pa.Table.from_pandas(rows, schema=schema, preserve_index=False, safe=False)
    )
    name = f"{prefix}-{uuid.uuid4().hex}.parquet"
    pq.write_table(table, f"{root}/{name}", compression="zstd")
    return {
        "path": name,
        "size": Path(root, name).stat().st_size,
        "rows": table.num_rows,
        "stats": json.dumps({"numRecords": table.num_rows}),
    }


def actions_frame(actions: list[dict]) -> pd.DataFrame:
    """Add actions gathered from tasks, in the shape :func:`commit_table` takes."""
    return pd.DataFrame(actions, columns=list(_ACTION_META.columns)).astype(_ACTION_META.dtypes)


def commit_table(
    staged: StagedTable,
    actions: pd.DataFrame,
    *,
    mode: str = "overwrite",
    replace_prefix: str | None = None,
    operation: str = "workbench write",
    info: dict | None = None,
) -> int:
    """Commit computed write ``actions`` as one new version; returns the version number.

    ``mode="overwrite"`` replaces the whole table; ``mode="append"`` adds the files, and with
    ``replace_prefix`` also removes, in the same commit, the current files whose names start with
    it, which makes re-writing one batch idempotent.
    """
    now = int(time.time() * 1000)
    adds: list[AddAction | RemoveAction] = [
        AddAction(r.path, int(r.size), {}, now, True, r.stats)
        for r in actions.itertuples(index=False)
    ]
    props = CommitProperties(
        custom_metadata={
            "workbench.operation": operation,
            **{k: str(v) for k, v in (info or {}).items()},
        }
    )
    uri = str(staged.path)
    if DeltaTable.is_deltatable(uri):
        table = DeltaTable(uri)
        if replace_prefix is not None:
            adds += [
                RemoveAction(f, True, now) for f in _files(table) if f.startswith(replace_prefix)
            ]
        table.create_write_transaction(
            adds, mode=mode, schema=staged.schema, commit_properties=props
        )
        # Reads only the log entries written since it was opened: opening the table again would
        # replay the whole log (tens of ms once a table has a few dozen versions).
        table.update_incremental()
        return table.version()
    create_table_with_add_actions(
        uri, DeltaSchema.from_arrow(staged.schema), adds, mode="error", commit_properties=props
    )
    return 0


def write_table(
    ddf: dd.DataFrame,
    path: Path,
    *,
    mode: str = "overwrite",
    operation: str = "workbench write",
    info: dict | None = None,
) -> int:
    """Compute ``ddf`` into a new version of the Delta table at ``path``."""
    staged = stage_table(ddf, path)
    return commit_table(staged, staged.actions.compute(), mode=mode, operation=operation, info=info)


def commit_info(path: Path) -> dict:
    """The latest commit's metadata (``workbench.*`` keys among them)."""
    return open_table(path).history(1)[0]


def _files(table: DeltaTable) -> list[str]:
    adds = table.get_add_actions(flatten=True)
    return pa.table(adds).column("path").to_pylist() if adds.num_rows else []


def rows_by_prefix(path: Path, prefix: str, version: int | None = None) -> int:
    """Rows in the files whose names start with ``prefix``, from the log's statistics."""
    adds = open_table(path, version).get_add_actions(flatten=True)
    if not adds.num_rows:
        return 0
    table = pa.table(adds).select(["path", "num_records"]).to_pandas()
    return int(table.loc[table.path.str.startswith(prefix), "num_records"].sum())


def history(path: Path) -> list[dict]:
    """The table's versions, newest first: version, time, operation and our commit metadata."""
    return open_table(path).history()


# Below this, vacuum could delete files a running read or an uncommitted write still needs
# (Delta's own default is 7 days); `force=True` goes lower when nothing else uses the workspace.
MIN_VACUUM_AGE = dt.timedelta(hours=1)


def vacuum(
    path: Path,
    *,
    older_than: dt.timedelta,
    dry_run: bool = False,
    force: bool = False,
    busy_since: dt.datetime | None = None,
) -> list[str]:
    """Delete data files no version younger than ``older_than`` needs, and files never
    committed (left by a crash); time travel to versions older than that stops working.

    Nothing newer than ``busy_since`` (the start of the oldest running writer) is deleted, and
    Delta counts whole hours, so the age is rounded up, never down.
    """
    if older_than < MIN_VACUUM_AGE and not force:
        raise WorkspaceError(
            f"refusing to vacuum {path} keeping only {older_than}: files younger than "
            f"{MIN_VACUUM_AGE} may be needed by a running read or an uncommitted write. Use "
            "--older-than 1h or more, or --force when nothing else uses the workspace."
        )
    if busy_since is not None:
        older_than = max(older_than, dt.datetime.now(dt.UTC) - busy_since)
    return open_table(path).vacuum(
        retention_hours=math.ceil(older_than.total_seconds() / 3600),
        dry_run=dry_run,
        enforce_retention_duration=False,
        full=True,
    )


def open_table(path: Path, version: int | None = None) -> DeltaTable:
    if not DeltaTable.is_deltatable(str(path)):
        raise WorkspaceError(
            f"no table at {path}; run the pipeline step that builds it (`workbench run <dataset>`)."
        )
    return DeltaTable(str(path), version=version)


def read_table(
    path: Path, *, columns: list[str] | None = None, version: int | None = None
) -> dd.DataFrame:
    """A lazy Dask frame over one version of a table, reading only ``columns``."""
    files = open_table(path, version).file_uris()
    return read_files(files, path, columns=columns, version=version)


@dataclass(frozen=True)
class Growth:
    """What a table gained after an earlier version, when all it did was gain files."""

    since: int
    version: int
    files: list[str]  # the data files added after ``since`` (URIs), in log order


def growth_since(path: Path, since: int) -> Growth | None:
    """The files the table gained after version ``since``, when every file of that version is
    still in the current one, i.e. each commit since only appended (Parquet files never change
    once written, so the old rows are unchanged). None when a file was removed (an overwrite, a
    delete, a compaction) or version ``since`` can no longer be read: then only a full rebuild
    is right."""
    try:
        before = set(open_table(path, since).file_uris())
        table = open_table(path)
    except Exception:  # the log of `since` was cleaned up, or the table is gone
        return None
    now = table.file_uris()
    if table.version() < since or not before.issubset(now):
        return None
    return Growth(since, table.version(), [f for f in now if f not in before])


def read_files(
    files: list[str], path: Path, *, columns: list[str] | None = None, version: int | None = None
) -> dd.DataFrame:
    """A lazy frame over some data files of the table at ``path`` (empty, with the schema of
    ``version``, when there are none)."""
    if files:
        return dd.read_parquet(files, columns=columns)
    empty = _empty_frame(open_table(path, version))
    return dd.from_pandas(empty[columns] if columns else empty, npartitions=1)


def _empty_frame(table: DeltaTable) -> pd.DataFrame:
    """No rows, with the columns and types of the table version's schema."""
    return pa.schema(table.schema().to_arrow()).empty_table().to_pandas()


def read_column(path: Path, column: str, version: int | None = None) -> pd.Series:
    """One column of a table version, read in this process by Arrow's threads: for the key
    columns rules look up, a Dask graph and its round trip to the workers cost more than the
    read (the keys end up here anyway)."""
    table = open_table(path, version)
    files = table.file_uris()
    if not files:
        return _empty_frame(table)[column]
    return pq.read_table(files, columns=[column]).column(column).to_pandas()


def table_rows(path: Path, version: int | None = None) -> int:
    """Row count of a version from the Delta log's file statistics, without reading data."""
    return rows_of(open_table(path, version))


def rows_of(table: DeltaTable) -> int:
    """Row count of an opened table version, from its log's file statistics."""
    adds = table.get_add_actions(flatten=True)
    return int(pa.table(adds).column("num_records").to_pandas().sum()) if adds.num_rows else 0
