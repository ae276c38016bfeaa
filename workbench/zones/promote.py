"""Validate a landed batch and promote it: good rows to the typed lake, bad rows to quarantine.

Everything is one Dask computation: the check runs once per partition, and the lake files, the
quarantine files and the per-reason counts all come out of that same pass. Nothing is dropped:
rows in = rows promoted + rows quarantined is checked before anything is committed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd

from workbench import config
from workbench.catalog.models import Catalog
from workbench.errors import ValidationFailed, WorkbenchError
from workbench.io.delta import commit_table, read_table, stage_table
from workbench.io.sources import FILE_COLUMN, LINE_COLUMN, read_csv_as_text
from workbench.io.workspace import Workspace, write_json_atomic
from workbench.validation.check import (
    ERRORS,
    FAIL_PREFIX,
    WARNINGS,
    CheckPlan,
    check_partition,
    prepare_context,
    references_needed,
)
from workbench.zones.landing import Batch

BATCH_COLUMN = "_batch_id"


@dataclass(frozen=True)
class ReasonCount:
    severity: str
    rows: int


@dataclass(frozen=True)
class Promotion:
    """What happened to one batch; also written as the JSON validation report."""

    dataset: str
    batch_id: str
    rows_landed: int
    rows_read: int
    promoted: int
    quarantined: int
    warned: int
    reasons: dict[str, ReasonCount] = field(default_factory=dict)
    lake_version: int | None = None
    quarantine_version: int | None = None
    checked_at: str = ""

    @property
    def reconciled(self) -> bool:
        return self.rows_landed == self.rows_read == self.promoted + self.quarantined

    def to_dict(self) -> dict:
        return asdict(self) | {"reconciled": self.reconciled}


def promote_batch(catalog: Catalog, ws: Workspace, name: str, batch: Batch) -> Promotion:
    """Check ``batch`` of dataset ``name`` against its rules and commit both outputs."""
    dataset = catalog.datasets[name]
    raw = read_csv_as_text(batch.paths(ws), list(dataset.schema_), **dataset.source.options)
    wanted = max(1, batch.rows // config.get("partition-rows"))
    if wanted > raw.npartitions:
        raw = raw.repartition(npartitions=wanted)
    refs = {
        (ds, key): read_table(ws.path("lake", ds), columns=[key])[key]
        for ds, key in references_needed(dataset)
    }
    plan = CheckPlan(dataset, prepare_context(dataset, raw, refs))
    checked = raw.map_partitions(check_partition, plan, meta=check_partition(raw._meta, plan))
    good = checked[checked[ERRORS] == ""][list(dataset.schema_)]
    bad = dd.map_partitions(
        _quarantine_rows, raw, checked[[ERRORS, WARNINGS]], batch.batch_id, align_dataframes=False
    )
    codes = plan.codes()
    lake = stage_table(good, ws.path("lake", name))
    quarantine = stage_table(bad, ws.path("quarantine", name))
    flags = checked[[FAIL_PREFIX + c for c in codes]].astype("int64").sum()
    warned = (checked[WARNINGS] != "").sum()
    lake_actions, q_actions, fails, n_warned = dask.compute(
        lake.actions, quarantine.actions, flags, warned
    )
    result = Promotion(
        dataset=name,
        batch_id=batch.batch_id,
        rows_landed=batch.rows,
        rows_read=int(lake_actions["rows"].sum() + q_actions["rows"].sum()),
        promoted=int(lake_actions["rows"].sum()),
        quarantined=int(q_actions["rows"].sum()),
        warned=int(n_warned),
        reasons={c: ReasonCount(s, int(fails[FAIL_PREFIX + c])) for c, s in codes.items()},
        checked_at=dt.datetime.now(dt.UTC).isoformat(),
    )
    if not result.reconciled:
        raise WorkbenchError(
            f"{name} batch {batch.batch_id}: {result.rows_landed} rows landed but "
            f"{result.rows_read} were read ({result.promoted} promoted + {result.quarantined} "
            "quarantined). Nothing was committed; check the file for embedded newlines or "
            "a truncated last line."
        )
    info = {"batch": batch.batch_id}
    q_version = commit_table(quarantine, q_actions, operation="quarantine", info=info)
    fraction = result.quarantined / max(result.rows_read, 1)
    limit = dataset.thresholds.max_quarantined_fraction
    if fraction > limit:
        _write_report(ws, result, quarantine_version=q_version)
        raise ValidationFailed(
            f"{name} batch {batch.batch_id}: {fraction:.2%} of rows quarantined, above the "
            f"allowed {limit:.2%} (datasets.{name}.thresholds.max_quarantined_fraction). The lake "
            "keeps its previous version; see `workbench quarantine` and the validation report."
        )
    lake_version = commit_table(lake, lake_actions, operation="promote", info=info)
    result = Promotion(
        **{**result.__dict__, "lake_version": lake_version, "quarantine_version": q_version}
    )
    _write_report(ws, result)
    return result


def _quarantine_rows(raw: pd.DataFrame, checked: pd.DataFrame, batch_id: str) -> pd.DataFrame:
    """Rejected rows with their original text, where they came from and why."""
    rejected = checked[ERRORS] != ""
    out = raw.loc[rejected.to_numpy()].copy()
    out[BATCH_COLUMN] = batch_id
    out["_reasons"] = checked.loc[rejected, ERRORS].to_numpy()
    out[WARNINGS] = checked.loc[rejected, WARNINGS].to_numpy()
    order = [BATCH_COLUMN, FILE_COLUMN, LINE_COLUMN, "_reasons", WARNINGS]
    return out[order + [c for c in out.columns if c not in order]]


def _write_report(ws: Workspace, result: Promotion, **extra: object) -> Path:
    path = ws.path("reports", "validation", result.dataset, f"{result.batch_id}.json")
    write_json_atomic(path, result.to_dict() | extra)
    return path
