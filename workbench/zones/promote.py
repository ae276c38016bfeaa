"""Validate a landed batch and promote it: good rows to the typed lake, bad rows to quarantine.

Everything is one Dask computation: the check runs once per partition, and the lake files, the
quarantine files, the per-reason counts and the sample rows all come out of that same pass.
Nothing is dropped: rows landed = rows promoted + rows quarantined is checked before anything
is committed. Files are named after the batch, so promoting a batch again replaces its own rows
in one Delta commit and never duplicates them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd
from deltalake import DeltaTable

from workbench.catalog.models import Catalog, Dataset, Freshness, Unique
from workbench.cluster import share, worker_threads
from workbench.errors import ValidationFailed, WorkspaceError
from workbench.io.csvfile import TEXT, read_header
from workbench.io.delta import (
    StagedTable,
    actions_frame,
    arrow_schema,
    commit_table,
    read_column,
    read_table,
)
from workbench.io.sources import read_csv_as_text
from workbench.io.workspace import Workspace, read_json, write_json_atomic
from workbench.privacy import Viewer, mask_frame, masking_for
from workbench.validation.check import (
    CheckPlan,
    check_partition,
    prepare_context,
    references_needed,
)
from workbench.validation.dataset_rules import BatchFacts, Finding, evaluate_dataset_rules
from workbench.validation.report import previous_reports, write_report
from workbench.zones.landing import MANIFEST, Batch, read_batch
from workbench.zones.promote_rows import (
    BATCH_COLUMN,
    batch_prefix,
    lake_rows,
    process_partition,
    quarantine_rows,
)


@dataclass(frozen=True)
class ReasonCount:
    """Rows that failed one check: quarantined ones for an error, kept ones for a warning
    (and, for a warning, the quarantined rows that failed it too)."""

    severity: str
    rows: int
    quarantined_too: int = 0


@dataclass(frozen=True)
class Promotion:
    """What happened to one batch; also the body of its validation report."""

    dataset: str
    batch_id: str
    rows_landed: int
    rows_read: int
    promoted: int
    quarantined: int
    warned: int
    reasons: dict[str, ReasonCount] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    # Promoted values that were a missing-value text and are null in the lake, per column and
    # text: {"price": {"N/A": 12}}.
    missing: dict[str, dict[str, int]] = field(default_factory=dict)
    committed: bool = False
    lake_version: int | None = None
    quarantine_version: int | None = None
    checked_at: str = ""
    error: str | None = None

    @property
    def reconciled(self) -> bool:
        return self.rows_landed == self.rows_read == self.promoted + self.quarantined

    def to_dict(self) -> dict:
        return asdict(self) | {"reconciled": self.reconciled}


def promote_batch(catalog: Catalog, ws: Workspace, name: str, batch: Batch) -> Promotion:
    """Check ``batch`` of dataset ``name`` against its rules and commit both outputs."""
    dataset = catalog.datasets[name]
    source = dataset.source
    files = [
        (path, f.name, f.scan(path)) for f, path in zip(batch.files, batch.paths(ws), strict=True)
    ]
    # Every field as written: the check reads each column's missing-value texts itself
    # (`read_missing`), so quarantined rows keep them and the report can count them.
    raw = read_csv_as_text(
        files, list(dataset.schema_), (), source.delimiter, tasks=worker_threads()
    )
    refs = reference_columns(ws, dataset)
    plan = CheckPlan(
        dataset, prepare_context(dataset, raw, refs, lake_keys(dataset, ws, name, batch))
    )
    return _promote_checked(catalog, ws, name, batch, raw, plan)


def reference_columns(ws: Workspace, dataset: Dataset) -> dict[tuple[str, str], pd.Series]:
    """The key column of each lake table the dataset's ``references`` rules name."""
    return {
        (ds, key): read_column(ws.path("lake", ds), key) for ds, key in references_needed(dataset)
    }


def lake_keys(
    dataset: Dataset, ws: Workspace, name: str, batch: Batch
) -> dict[tuple[str, ...], dd.DataFrame]:
    """Keys of ``unique ... across: lake`` rules held by the lake's other batches (the batch's
    own rows are replaced when it is promoted again, so they do not count)."""
    rules = [r for r in dataset.rules if isinstance(r, Unique) and r.across == "lake"]
    path = ws.path("lake", name)
    if not rules or not DeltaTable.is_deltatable(str(path)):
        return {}
    out = {}
    for rule in rules:
        held = read_table(path, columns=[*rule.columns, BATCH_COLUMN])
        out[tuple(rule.columns)] = held[held[BATCH_COLUMN] != batch.batch_id][rule.columns]
    return out


def _promote_checked(
    catalog: Catalog, ws: Workspace, name: str, batch: Batch, raw: dd.DataFrame, plan: CheckPlan
) -> Promotion:
    dataset = plan.dataset
    codes = plan.codes
    prefix = batch_prefix(batch.batch_id)
    meta = check_partition(raw._meta, plan)
    lake = StagedTable(
        ws.path("lake", name), None, arrow_schema(lake_rows(meta, dataset, batch.batch_id))
    )
    quarantine = StagedTable(
        ws.path("quarantine", name),
        None,
        arrow_schema(quarantine_rows(raw._meta, meta, batch.batch_id)),
    )
    for table in (lake, quarantine):
        table.path.mkdir(parents=True, exist_ok=True)
    fresh = [r.column for r in dataset.dataset_rules if isinstance(r, Freshness)]
    # One task per partition does all the work and returns only small results, so the text
    # of a partition never travels between workers.
    task = dask.delayed(process_partition, pure=True)
    shared = share(plan)  # reference key sets can be megabytes: one copy per worker
    outcomes = dask.compute(
        *[
            task(part, shared, batch.batch_id, lake, quarantine, prefix, fresh)
            for part in raw.to_delayed()
        ]
    )
    lake_actions = actions_frame([o.lake for o in outcomes if o.lake])
    q_actions = actions_frame([o.quarantine for o in outcomes if o.quarantine])
    fails = {c: sum(o.fails[c] for o in outcomes) for c in codes}
    also = {c: sum(o.also_quarantined.get(c, 0) for o in outcomes) for c in codes}
    warned = sum(o.warned for o in outcomes)
    missing = _summed([o.missing for o in outcomes])
    sample = pd.concat([o.samples for o in outcomes], ignore_index=True)
    # Reports go to every user of the quality app: pii columns masked, whatever their roles.
    sample = mask_frame(sample, masking_for(catalog, name, Viewer(None), also=[TEXT]))
    newest = {
        c: max((o.newest[c] for o in outcomes if pd.notna(o.newest[c])), default=None)
        for c in fresh
    }
    promoted, quarantined = int(lake_actions["rows"].sum()), int(q_actions["rows"].sum())
    history = previous_reports(ws, name)
    facts = BatchFacts(
        rows_landed=batch.rows,
        rows_read=promoted + quarantined,
        promoted=promoted,
        quarantined=quarantined,
        previous_rows=next(
            (r["rows_read"] for r in reversed(history) if r["batch_id"] != batch.batch_id), None
        ),
        newest=newest,
        headers={
            f.name: read_header(p, dataset.source.delimiter)
            for f, p in zip(batch.files, batch.paths(ws), strict=True)
        },
        empty_files=[f.name for f in batch.files if f.rows == 0],
    )
    result = Promotion(
        dataset=name,
        batch_id=batch.batch_id,
        rows_landed=batch.rows,
        rows_read=facts.rows_read,
        promoted=promoted,
        quarantined=quarantined,
        warned=int(warned),
        reasons={c: ReasonCount(s, int(fails[c]), int(also[c])) for c, s in codes.items()},
        findings=evaluate_dataset_rules(dataset, facts),
        missing=missing,
        checked_at=dt.datetime.now(dt.UTC).isoformat(),
    )
    failure = _failure(result, dataset.thresholds.max_quarantined_fraction)
    if failure is not None and not result.reconciled:
        # Counts do not add up: commit nothing at all, keep every previous version.
        write_report(ws, replace(result, error=failure), sample, history)
        raise ValidationFailed(failure)
    if failure is not None:
        # The batch's rejected rows are kept so `quarantine show` can say why; the lake stays.
        q_version = _commit_quarantine(quarantine, q_actions, batch.batch_id)
        write_report(
            ws, replace(result, quarantine_version=q_version, error=failure), sample, history
        )
        raise ValidationFailed(failure)
    lake_version, q_version = _commit_both(
        ws, name, dataset.load, batch.batch_id, (lake, lake_actions), (quarantine, q_actions)
    )
    result = replace(
        result, committed=True, lake_version=lake_version, quarantine_version=q_version
    )
    write_report(ws, result, sample, history)
    return result


def _commit_both(
    ws: Workspace,
    name: str,
    load: str,
    batch_id: str,
    lake: tuple[StagedTable, pd.DataFrame],
    quarantine: tuple[StagedTable, pd.DataFrame],
) -> tuple[int, int]:
    """Commit the lake, then the quarantine, with the batch recorded as pending in between.

    Two Delta tables cannot share one transaction. If the process dies between the commits,
    the record stays, and the next promotion of the dataset promotes that batch again first
    (:func:`finish_pending`); a promotion replaces its own batch's files in both tables, so
    doing it twice is the same as doing it once.
    """
    prefix = batch_prefix(batch_id)
    info = {"batch": batch_id}
    pending = pending_path(ws, name)
    write_json_atomic(pending, {"batch_id": batch_id, "since": dt.datetime.now(dt.UTC)})
    if load == "replace":
        lake_version = commit_table(*lake, mode="overwrite", operation="promote", info=info)
    else:
        lake_version = commit_table(
            *lake, mode="append", replace_prefix=prefix, operation="promote", info=info
        )
    q_version = _commit_quarantine(*quarantine, batch_id)
    pending.unlink()
    return lake_version, q_version


def _commit_quarantine(table: StagedTable, actions: pd.DataFrame, batch_id: str) -> int:
    return commit_table(
        table,
        actions,
        mode="append",
        replace_prefix=batch_prefix(batch_id),
        operation="quarantine",
        info={"batch": batch_id},
    )


def pending_path(ws: Workspace, name: str) -> Path:
    """The record of a batch whose lake commit may have happened without its quarantine one."""
    return ws.path(".pending", f"promote.{name}.json")


def finish_pending(catalog: Catalog, ws: Workspace, name: str, current: str) -> str | None:
    """Promote again a batch of ``name`` whose promotion died between its two commits, unless
    it is ``current`` (about to be promoted anyway); returns the batch id finished, if any.

    The caller holds the dataset's lake lock, so the record cannot belong to a live promotion.
    """
    path = pending_path(ws, name)
    if not path.exists():
        return None
    batch_id = read_json(path)["batch_id"]
    if batch_id == current:
        return None
    folder = ws.path("landing", name, batch_id)
    if not (folder / MANIFEST).exists():
        raise WorkspaceError(
            f"{path} records batch {batch_id} of {name!r} as half promoted (lake committed, "
            f"quarantine not), but {folder} is gone. Promote it from its files again, or "
            "delete the record to accept the lake as it is."
        )
    promote_batch(catalog, ws, name, read_batch(folder))
    return batch_id


def _summed(counts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for part in counts:
        for column, texts in part.items():
            for text, n in texts.items():
                total.setdefault(column, {})[text] = total.get(column, {}).get(text, 0) + n
    return total


def replace(result: Promotion, **changes: object) -> Promotion:
    return Promotion(**{**result.__dict__, **changes})


def _failure(result: Promotion, limit: float) -> str | None:
    where = f"{result.dataset} batch {result.batch_id}"
    failed = [f for f in result.findings if f.severity == "error" and not f.passed]
    if failed:
        details = "; ".join(f"{f.rule}: {f.detail}" for f in failed)
        return (
            f"{where} failed dataset rules ({details}). The lake keeps its previous "
            "version; fix the data or the rule, then run again."
        )
    fraction = result.quarantined / max(result.rows_read, 1)
    if fraction > limit:
        return (
            f"{where}: {fraction:.2%} of rows quarantined, above the allowed {limit:.2%} "
            f"(datasets.{result.dataset}.thresholds.max_quarantined_fraction). The lake keeps "
            "its previous version; see `workbench quarantine show` and the report."
        )
    return None
