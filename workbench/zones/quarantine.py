"""The quarantine zone: look at rejected rows, and release them once the rules or data are fixed.

Every quarantined and every promoted row keeps its identity (batch, file, line). Releasing a
batch re-checks its quarantined rows with the catalog's current rules, appends the rows that now
pass to the lake (skipping any already there), then rewrites the batch's quarantine without
them. References are checked against the lake's tables as they are now, and the release names
any of them that is behind its own source (``freshness.py``). Each of the two commits is
atomic; if the process dies between them, the next release finds the rows already in the lake
and only finishes the quarantine side, so a row is never lost and never promoted twice.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow.compute as pc

from workbench.catalog.models import Catalog
from workbench.errors import WorkbenchError
from workbench.io.csvfile import PARSE_ERROR, TEXT, text_meta
from workbench.io.delta import (
    commit_table,
    open_table,
    read_table,
    rows_by_prefix,
    stage_table,
)
from workbench.io.sources import FILE_COLUMN, LINE_COLUMN
from workbench.io.workspace import Workspace
from workbench.validation.check import (
    ERRORS,
    WARNINGS,
    CheckPlan,
    check_partition,
    prepare_context,
)
from workbench.zones.freshness import Behind, references_behind
from workbench.zones.promote import reference_columns
from workbench.zones.promote_rows import (
    BATCH_COLUMN,
    REASONS,
    batch_prefix,
    lake_rows,
    quarantine_rows,
)

_IDENTITY = [FILE_COLUMN, LINE_COLUMN]


@dataclass(frozen=True)
class Release:
    dataset: str
    batch_id: str
    released: int
    still_quarantined: int
    promoted_total: int
    lake_version: int | None
    quarantine_version: int | None
    # Reference tables older than their sources: rows failing `references` may pass once fixed.
    references_behind: tuple[Behind, ...] = ()


def quarantined(ws: Workspace, name: str, batch_id: str | None = None) -> dd.DataFrame:
    """Quarantined rows of a dataset (one batch when given), original text and reasons."""
    frame = read_table(ws.path("quarantine", name))
    if batch_id is not None:
        frame = frame[frame[BATCH_COLUMN] == batch_id]
    return frame


def quarantined_rows(
    ws: Workspace,
    name: str,
    *,
    batch: str | None = None,
    reason: str | None = None,
    limit: int = 1000,
) -> tuple[pd.DataFrame, int]:
    """Up to ``limit`` quarantined rows of one batch and/or reason code, and how many match
    in all; filtered in Arrow without Dask, so a dashboard never reads the table whole."""
    arrow = open_table(ws.path("quarantine", name)).to_pyarrow_dataset()
    where = None
    if batch:
        where = pc.field(BATCH_COLUMN) == batch
    if reason:
        # Reasons are joined with ';': match a whole code, not a prefix of another.
        exact = pc.match_substring_regex(pc.field(REASONS), f"(^|;){re.escape(reason)}(;|$)")
        where = exact if where is None else where & exact
    total = arrow.count_rows(filter=where)
    if not total:
        return arrow.schema.empty_table().to_pandas(), 0
    return arrow.head(min(limit, total), filter=where).to_pandas(), total


def release_batch(catalog: Catalog, ws: Workspace, name: str, batch_id: str) -> Release:
    """Re-validate a batch's quarantined rows and promote the ones that pass now."""
    dataset = catalog.dataset(name)
    lake_path, q_path = ws.path("lake", name), ws.path("quarantine", name)
    if dataset.load == "replace":
        batches = read_table(lake_path, columns=[BATCH_COLUMN])[BATCH_COLUMN].unique().compute()
        if batch_id not in set(batches):
            raise WorkbenchError(
                f"{name} is loaded with `load: replace` and the lake holds batch(es) "
                f"{sorted(batches)}, not {batch_id}: releasing old rows would mix snapshots. "
                "Land the batch again, or release the current one."
            )
    held = quarantined(ws, name, batch_id).compute()
    if held.empty:
        raise WorkbenchError(
            f"no quarantined rows for {name} batch {batch_id}; "
            f"see `workbench quarantine show {name}`."
        )
    raw = dd.from_pandas(held[list(text_meta(list(dataset.schema_)).columns)], npartitions=1)
    refs = reference_columns(ws, dataset)
    keys_source = _with_lake_keys(dataset, raw, lake_path)
    plan = CheckPlan(dataset, prepare_context(dataset, keys_source, refs))
    checked = raw.map_partitions(check_partition, plan, meta=check_partition(raw._meta, plan))
    in_lake = read_table(lake_path, columns=[BATCH_COLUMN, *_IDENTITY])
    in_lake = in_lake[in_lake[BATCH_COLUMN] == batch_id][_IDENTITY]
    passing, promoted_ids = dask.compute(lake_rows(checked, dataset, batch_id), in_lake)
    passing = passing.merge(promoted_ids, on=_IDENTITY, how="left", indicator=True)
    new_rows = passing[passing["_merge"] == "left_only"].drop(columns="_merge")
    lake_version = None
    if len(new_rows):
        staged = stage_table(
            dd.from_pandas(new_rows, npartitions=1),
            lake_path,
            prefix=f"r{batch_id}-{uuid.uuid4().hex[:8]}",
        )
        lake_version = commit_table(
            staged,
            staged.actions.compute(),
            mode="append",
            operation="release",
            info={"batch": batch_id},
        )
    released_ids = pd.concat([promoted_ids, new_rows[_IDENTITY]], ignore_index=True)
    still = held.merge(released_ids, on=_IDENTITY, how="left", indicator=True)
    still = still[still["_merge"] == "left_only"].drop(columns="_merge")
    rechecked = checked.compute().set_index(_IDENTITY)
    q_version = _rewrite_quarantine(dataset, q_path, still, rechecked, batch_id)
    return Release(
        name,
        batch_id,
        released=len(passing),
        still_quarantined=len(still),
        promoted_total=_promoted(lake_path, batch_id),
        lake_version=lake_version,
        quarantine_version=q_version,
        references_behind=tuple(references_behind(catalog, ws, name)),
    )


def _with_lake_keys(dataset, raw: dd.DataFrame, lake_path) -> dd.DataFrame:
    """Rows whose keys unique rules must compare: the quarantined ones and the lake's."""
    key_cols = sorted({c for r in dataset.rules if r.rule == "unique" for c in r.columns})
    if not key_cols:
        return raw
    lake = read_table(lake_path, columns=key_cols).astype("str")
    return dd.concat([raw, lake], ignore_unknown_divisions=True)


def _rewrite_quarantine(
    dataset, q_path, still: pd.DataFrame, rechecked: pd.DataFrame, batch_id: str
) -> int:
    """The batch's quarantine, minus released rows, with reasons from the current rules."""
    text = still[list(text_meta(list(dataset.schema_)).columns)].reset_index(drop=True)
    reasons = rechecked.reindex(pd.MultiIndex.from_frame(still[_IDENTITY]))[[ERRORS, WARNINGS]]
    reasons = reasons.reset_index(drop=True).fillna("")
    frame = (
        quarantine_rows(text, reasons, batch_id)
        if len(text)
        else (quarantine_rows(text, reasons.iloc[:0], batch_id))
    )
    frame = frame.astype({PARSE_ERROR: "str", TEXT: "str"})
    staged = stage_table(
        dd.from_pandas(frame, npartitions=1), q_path, prefix=batch_prefix(batch_id)
    )
    return commit_table(
        staged,
        staged.actions.compute(),
        mode="append",
        replace_prefix=batch_prefix(batch_id),
        operation="release",
        info={"batch": batch_id},
    )


def _promoted(lake_path, batch_id: str) -> int:
    return rows_by_prefix(lake_path, batch_prefix(batch_id)) + rows_by_prefix(
        lake_path, f"r{batch_id}-"
    )


def batch_balance(ws: Workspace, name: str, batch_id: str) -> dict[str, int]:
    """Rows of a batch in the lake and in quarantine now, from the Delta logs."""
    lake = _promoted(ws.path("lake", name), batch_id)
    q = rows_by_prefix(ws.path("quarantine", name), batch_prefix(batch_id))
    return {"promoted": lake, "quarantined": q, "total": lake + q}
