"""One partition of a landed batch: checked, split into lake and quarantine rows, both written.

A promotion runs :func:`process_partition` once per block of text; the task writes the
partition's lake and quarantine Parquet files (committed later, together, by
:mod:`workbench.zones.promote`) and sends back only counts, samples and the files' add actions.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from workbench.catalog.models import Dataset
from workbench.io.csvfile import PARSE_ERROR, TEXT
from workbench.io.delta import StagedTable, write_part
from workbench.io.sources import FILE_COLUMN, LINE_COLUMN
from workbench.validation.check import (
    ERRORS,
    FAIL_PREFIX,
    WARNINGS,
    CheckPlan,
    check_partition,
    missing_counts,
    missing_marks,
)

BATCH_COLUMN = "_batch_id"
REASONS = "_reasons"
SAMPLES_PER_REASON = 5


def batch_prefix(batch_id: str) -> str:
    """File-name prefix of every data file a batch writes, in the lake and in quarantine."""
    return f"b{batch_id}-"


@dataclass(frozen=True)
class PartitionOutcome:
    """What one partition's task sends back: file actions, counts, samples."""

    lake: dict | None
    quarantine: dict | None
    fails: dict[str, int]
    also_quarantined: dict[str, int]
    warned: int
    samples: pd.DataFrame
    newest: dict[str, object]
    missing: dict[str, dict[str, int]]


def process_partition(
    raw: pd.DataFrame,
    plan: CheckPlan,
    batch_id: str,
    lake: StagedTable,
    quarantine: StagedTable,
    prefix: str,
    fresh: list[str],
) -> PartitionOutcome:
    """Check one partition and write its lake and quarantine files (committed later)."""
    raw = raw.reset_index(drop=True)  # rules and casts see positions 0..n-1, whatever the source
    marks = missing_marks(raw, plan.dataset)
    checked = check_partition(raw, plan, marks)
    kept = (checked[ERRORS] == "").to_numpy()
    with ThreadPoolExecutor(1) as writer:
        # Arrow converts and writes the lake file (the longest step) mostly without holding
        # the GIL: the quarantine, the samples and the counts are made meanwhile.
        lake_file = writer.submit(_write_lake, checked, kept, plan.dataset, batch_id, lake, prefix)
        bad = quarantine_rows(raw, checked, batch_id)
        codes = list(plan.codes)
        warn = [c for c, s in plan.codes.items() if s == "warn"]
        flags = {c: checked[FAIL_PREFIX + c].to_numpy() for c in codes}
        return PartitionOutcome(
            quarantine=_write_rows(bad, quarantine, prefix),
            fails={c: int((flags[c] & kept).sum() if c in warn else flags[c].sum()) for c in codes},
            also_quarantined={c: int((flags[c] & ~kept).sum()) for c in warn},
            # Flagged rows are kept rows: a quarantined row that also failed a warn rule is not.
            warned=int(((checked[WARNINGS] != "").to_numpy() & kept).sum()),
            samples=sample_rows(raw, checked, codes),
            newest={c: checked[c][kept].max() for c in fresh},
            missing=missing_counts(raw, kept, marks),
            lake=lake_file.result(),  # last: arguments run in order, this one waits
        )


def _write_lake(
    checked: pd.DataFrame,
    kept: np.ndarray,
    dataset: Dataset,
    batch_id: str,
    lake: StagedTable,
    prefix: str,
) -> dict | None:
    return _write_rows(lake_table(checked, kept, dataset, batch_id, lake.schema), lake, prefix)


def _write_rows(rows: pd.DataFrame | pa.Table, table: StagedTable, prefix: str) -> dict | None:
    """The add action of a new file of ``table`` holding ``rows``; None when there are none."""
    if not len(rows):
        return None
    return write_part(rows, str(table.path), table.schema, prefix)


def lake_rows(checked: dd.DataFrame, dataset, batch_id: str) -> dd.DataFrame:
    """Rows without errors, typed, with their lineage: batch, source file and line."""
    return lake_columns(checked[checked[ERRORS] == ""], dataset, batch_id)


def lake_columns(checked: dd.DataFrame, dataset, batch_id: str) -> dd.DataFrame:
    """The lake's columns of checked rows: typed values, batch, source file and line."""
    good = checked[[*dataset.schema_, FILE_COLUMN, LINE_COLUMN]]
    return good.assign(**{BATCH_COLUMN: batch_id})


def lake_table(
    checked: pd.DataFrame, kept: np.ndarray, dataset, batch_id: str, schema: pa.Schema
) -> pa.Table:
    """:func:`lake_rows` of one partition as Arrow, ready to write: the columns are converted
    whole and Arrow's filter then keeps the rows (pandas' boolean indexing takes every column
    apart first, several times slower)."""
    frame = lake_columns(checked, dataset, batch_id)
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False, safe=False)
    return table.filter(pa.array(kept))


def quarantine_rows(raw: pd.DataFrame, checked: pd.DataFrame, batch_id: str) -> pd.DataFrame:
    """Rejected rows with their original text, where they came from and why."""
    rejected = np.flatnonzero((checked[ERRORS] != "").to_numpy())
    out = raw.iloc[rejected].copy()
    out[BATCH_COLUMN] = batch_id
    # Only the rejected rows' reasons leave Arrow (the whole columns would box every row).
    out[REASONS] = checked[ERRORS].iloc[rejected].to_numpy()
    out[WARNINGS] = checked[WARNINGS].iloc[rejected].to_numpy()
    order = [BATCH_COLUMN, FILE_COLUMN, LINE_COLUMN, REASONS, WARNINGS, PARSE_ERROR, TEXT]
    return out[order + [c for c in out.columns if c not in order]]


def sample_rows(raw: pd.DataFrame, checked: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    """Up to a few original rows per failing reason, for the report."""
    hits = {
        code: np.flatnonzero(checked[FAIL_PREFIX + code].to_numpy())[:SAMPLES_PER_REASON]
        for code in codes
    }
    hits = {code: rows for code, rows in hits.items() if len(rows)}
    front = [FILE_COLUMN, LINE_COLUMN]
    # One take of every sampled row (a row may sample several reasons), not one per reason.
    picked = np.concatenate([np.zeros(0, dtype=np.int64), *hits.values()])
    rows = raw.iloc[picked][front + [c for c in raw.columns if c not in front]]
    reasons = np.repeat(np.array(list(hits), dtype=object), [len(r) for r in hits.values()])
    rows = rows.reset_index(drop=True)
    rows.insert(0, "reason", pd.Series(reasons, dtype="str"))
    return rows
