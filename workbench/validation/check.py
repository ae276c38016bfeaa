"""Check one batch of a dataset: every rule, every partition, one vectorised pass."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.catalog.models import Dataset, References, Unique
from workbench.io.csvfile import PARSE_ERROR
from workbench.io.sources import FILE_COLUMN, LINE_COLUMN
from workbench.validation.rules import (
    KeySet,
    RuleContext,
    cast_columns,
    evaluate,
    is_arrow_text,
)

ERRORS, WARNINGS = "_errors", "_warnings"
FAIL_PREFIX = "_fail:"
# Rows the reader could not split into fields, or whose file lacks a declared column.
PARSE_CODES = ("parse:field_count", "parse:quoting", "parse:encoding", "schema:missing_column")


@dataclass(frozen=True)
class CheckPlan:
    """The rules of one dataset with their severities, and the context they need."""

    dataset: Dataset
    context: RuleContext

    @cached_property
    def codes(self) -> dict[str, str]:
        """reason code -> severity, in catalog order (cast failures first, always errors).

        Computed once (rules evaluated on an empty frame) and shipped with the plan."""
        out = {code: "error" for code in PARSE_CODES}
        out |= {f"dtype:{c}": "error" for c in self.dataset.schema_}
        empty = _empty_typed(self.dataset)
        for rule in self.dataset.rules:
            for code in evaluate(rule, empty, self.context):
                out[code] = rule.severity
        return out


def missing_marks(raw: pd.DataFrame, dataset: Dataset) -> dict[str, np.ndarray]:
    """Per column, the rows whose text its column reads as missing (``na_values``); columns
    where no such text occurs are left out, so the usual column costs nothing further.

    One Arrow hash lookup per column over the text as it is held (Arrow-backed ``str``), where
    pandas' ``isin`` would also box the markers; computed once and shared by the check
    (:func:`read_missing`) and the report (:func:`missing_counts`).
    """
    marks = {}
    for column, markers in dataset.na_values().items():
        if markers and column in raw:
            hit = _is_marker(raw[column], markers)
            if hit.any():
                marks[column] = hit
    return marks


def _is_marker(values: pd.Series, markers: tuple[str, ...]) -> np.ndarray:
    if is_arrow_text(values):
        text = pa.array(values)
        return pc.is_in(text, value_set=pa.array(markers, type=text.type)).to_numpy(
            zero_copy_only=False
        )
    return values.isin(markers).to_numpy(dtype=bool)  # text held as Python objects


def read_missing(raw: pd.DataFrame, marks: dict[str, np.ndarray]) -> pd.DataFrame:
    """``raw`` with every text its column reads as missing (``marks``) made missing.

    The reader keeps every field's text, so a quarantined row shows ``N/A`` as it was written
    and a promotion can count what became null (:func:`missing_counts`); only the typed values
    see the markers as missing.
    """
    out = raw.copy(deep=False)
    for column, hit in marks.items():
        out[column] = _made_missing(raw[column], hit)
    return out


def _made_missing(values: pd.Series, hit: np.ndarray) -> pd.Series:
    if not is_arrow_text(values):
        return values.mask(hit)
    # Arrow's if_else builds the column in one pass; pandas' mask on Arrow text goes through
    # replace_with_mask, about ten times slower.
    kept = pc.if_else(hit, None, pa.array(values))
    return pd.Series(pd.array(kept, dtype=values.dtype), index=values.index, name=values.name)


def missing_counts(raw: pd.DataFrame, keep: np.ndarray, marks: dict[str, np.ndarray]) -> dict:
    """Per column and marker text, how many of the rows in ``keep`` held a text read as
    missing: ``{"price": {"N/A": 12}}`` (columns and markers without any are left out)."""
    counts = {}
    for column, hit in marks.items():
        hits = raw[column][hit & keep].value_counts()
        if len(hits):
            counts[column] = {str(k): int(n) for k, n in hits.items()}
    return counts


def _typed_columns(raw: pd.DataFrame, schema: dict, dataset: Dataset) -> pd.DataFrame:
    return cast_columns(read_missing(raw, missing_marks(raw, dataset)), schema)[0]


def _empty_typed(dataset: Dataset) -> pd.DataFrame:
    raw = pd.DataFrame({c: pd.Series([], dtype="str") for c in dataset.schema_})
    return cast_columns(raw, dataset.schema_)[0]


def prepare_context(
    dataset: Dataset,
    raw: dd.DataFrame,
    reference_keys: dict[tuple[str, str], pd.Series],
    lake_keys: dict[tuple[str, ...], dd.DataFrame] | None = None,
) -> RuleContext:
    """The key sets whole-dataset rules compare against: duplicates in one Dask call, and the
    keys of referenced tables (``reference_keys``, read already) as sets to look up.

    ``lake_keys`` holds, for ``unique`` rules checked ``across: lake``, the keys the lake
    already has from other batches: a batch key found there counts as a duplicate.
    """
    uniques = [r for r in dataset.rules if isinstance(r, Unique)]
    dup_graphs = []
    for rule in uniques:
        typed = raw[rule.columns].map_partitions(
            _typed_columns, {c: dataset.schema_[c] for c in rule.columns}, dataset
        )
        held = (lake_keys or {}).get(tuple(rule.columns))
        if held is not None:
            # Each lake key once, so a key the batch has once and the lake once counts twice.
            typed = dd.concat([typed, held[rule.columns].drop_duplicates()])
        counts = typed.groupby(rule.columns).size()
        dup_graphs.append(counts[counts > 1])
    (dups,) = dask.compute(dup_graphs)
    return RuleContext(
        reference_keys={k: KeySet.of(s.dropna().unique()) for k, s in reference_keys.items()},
        duplicate_keys={tuple(r.columns): d.index for r, d in zip(uniques, dups, strict=True)},
    )


def references_needed(dataset: Dataset) -> list[tuple[str, str]]:
    return list(
        dict.fromkeys((r.dataset, r.key) for r in dataset.rules if isinstance(r, References))
    )


def check_partition(
    raw: pd.DataFrame, plan: CheckPlan, marks: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Typed columns, the source line, the failed reasons joined per row, one flag per reason.

    ``marks`` are the partition's :func:`missing_marks` when the caller has them already."""
    if marks is None:
        marks = missing_marks(raw, plan.dataset)
    typed, masks = cast_columns(read_missing(raw, marks), plan.dataset.schema_)
    for rule in plan.dataset.rules:
        # A value that did not parse already fails as dtype:<column>; rules reading that
        # column see it as missing and must not blame the row a second time.
        unreadable = np.zeros(len(raw), dtype=bool)
        for column in getattr(rule, "columns", None) or [getattr(rule, "column", None)]:
            if column in plan.dataset.schema_:
                unreadable |= np.asarray(masks[f"dtype:{column}"], dtype=bool)
        for code, mask in evaluate(rule, typed, plan.context).items():
            masks[code] = np.asarray(mask, dtype=bool) & ~unreadable
    masks = _parse_failures(raw[PARSE_ERROR], masks)
    codes = plan.codes
    # Added in one step: a column at a time, pandas rebuilds its column index each time.
    extra = {
        LINE_COLUMN: raw[LINE_COLUMN],
        FILE_COLUMN: raw[FILE_COLUMN],
        ERRORS: _join_reasons(masks, [c for c, s in codes.items() if s == "error"], raw.index),
        WARNINGS: _join_reasons(masks, [c for c, s in codes.items() if s == "warn"], raw.index),
    }
    flags = {FAIL_PREFIX + code: np.asarray(masks[code], dtype=bool) for code in codes}
    return pd.concat([typed, pd.DataFrame(extra | flags, index=raw.index)], axis=1)


def _parse_failures(errors: pd.Series, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The masks without the rows that could not be parsed, plus one mask per parse code: such
    a row fails for that reason alone, not for every rule after it."""
    masks = {code: np.asarray(m, dtype=bool) for code, m in masks.items()}
    if not errors.notna().any():  # the usual partition: no parse error text to look at
        return masks | {code: np.zeros(len(errors), dtype=bool) for code in PARSE_CODES}
    text = errors.fillna("")
    parsed = (text == "").to_numpy()
    masks = {code: m & parsed for code, m in masks.items()}
    return masks | {code: text.str.startswith(code).to_numpy() for code in PARSE_CODES}


def _join_reasons(masks: dict[str, np.ndarray], codes: list[str], index: pd.Index) -> pd.Series:
    """ "code1;code2" per row. Rows fall into few distinct failure patterns: each pattern's text
    is built once and spread by Arrow's take of pattern numbers, not per row."""
    pattern = np.zeros(len(index), dtype=np.int32)  # 0: no failure, else 1 + the pattern
    texts = [""]
    if codes and len(index):
        # Reduced mask by mask, so the row-wise table below holds only the failing rows.
        hit = np.flatnonzero(np.logical_or.reduce([np.asarray(masks[c]) for c in codes]))
        if len(hit):
            # Taken by position: a boolean index would scan every row once per code.
            rows = np.column_stack([np.asarray(masks[c], dtype=bool)[hit] for c in codes])
            # Each row's pattern packed into bytes and read as one key: a hash, not a sort.
            packed = np.packbits(rows, axis=1)
            if packed.shape[1] <= 8:
                key = np.pad(packed, ((0, 0), (0, 8 - packed.shape[1]))).view(np.uint64).ravel()
            else:
                key = np.ascontiguousarray(packed).view(f"V{packed.shape[1]}").ravel()
            which, first = pd.factorize(key)
            patterns = rows[np.unique(which, return_index=True)[1]]  # each one's first row
            names = np.asarray(codes, dtype=object)
            texts += [";".join(names[p]) for p in patterns]
            pattern[hit] = which + 1
    joined = pc.take(pa.array(texts, type=pa.large_string()), pa.array(pattern))
    return pd.Series(pd.array(joined, dtype="str"), index=index)
