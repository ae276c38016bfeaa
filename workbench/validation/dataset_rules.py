"""Rules about a whole batch: reconciliation, row counts, freshness, schema drift, empty files."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from workbench.catalog.models import Dataset, Freshness, RowCount, SchemaDrift

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Finding:
    """The outcome of one dataset rule for one batch."""

    rule: str
    severity: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class BatchFacts:
    """What the dataset rules look at, gathered during the batch's single pass."""

    rows_landed: int
    rows_read: int
    promoted: int
    quarantined: int
    previous_rows: int | None
    newest: dict[str, object]
    headers: dict[str, list[str]]
    empty_files: list[str]


def parse_age(text: str) -> pd.Timedelta:
    """``"30d"`` -> 30 days; units s, m, h, d, w."""
    number, unit = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text).groups()
    return pd.Timedelta(**{_UNITS[unit]: float(number)})


def evaluate_dataset_rules(dataset: Dataset, facts: BatchFacts) -> list[Finding]:
    """Reconciliation and empty files always; the catalog's dataset rules after them."""
    balanced = facts.rows_landed == facts.rows_read == facts.promoted + facts.quarantined
    findings = [
        Finding(
            "reconciliation",
            "error",
            balanced,
            f"{facts.rows_landed:,} rows landed, {facts.rows_read:,} read, {facts.promoted:,} "
            f"promoted + {facts.quarantined:,} quarantined",
        )
    ]
    if facts.empty_files:
        findings.append(
            Finding("empty_file", "warn", False, f"no data rows in {', '.join(facts.empty_files)}")
        )
    for rule in dataset.dataset_rules:
        findings.append(_EVALUATORS[type(rule)](rule, dataset, facts))
    return findings


def _row_count(rule: RowCount, dataset: Dataset, facts: BatchFacts) -> Finding:
    n, problems = facts.rows_read, []
    if rule.min is not None and n < rule.min:
        problems.append(f"{n:,} rows is below the minimum {rule.min:,}")
    if rule.max is not None and n > rule.max:
        problems.append(f"{n:,} rows is above the maximum {rule.max:,}")
    if rule.max_change_pct is not None and facts.previous_rows:
        change = 100 * abs(n - facts.previous_rows) / facts.previous_rows
        if change > rule.max_change_pct:
            problems.append(
                f"{change:.1f}% change from the previous batch's "
                f"{facts.previous_rows:,} rows (allowed {rule.max_change_pct}%)"
            )
    return Finding(
        rule.name or "row_count", rule.severity, not problems, "; ".join(problems) or f"{n:,} rows"
    )


def _freshness(rule: Freshness, dataset: Dataset, facts: BatchFacts) -> Finding:
    newest = facts.newest.get(rule.column)
    limit = parse_age(rule.max_age)
    if newest is None or pd.isna(newest):
        return Finding(
            rule.name or f"freshness:{rule.column}",
            rule.severity,
            False,
            f"no value in {rule.column}",
        )
    newest = pd.Timestamp(newest)
    now = pd.Timestamp.now(tz="UTC") if newest.tzinfo else pd.Timestamp.now()
    age = now - newest
    return Finding(
        rule.name or f"freshness:{rule.column}",
        rule.severity,
        age <= limit,
        f"newest {rule.column} is {newest} ({age.days} days old; allowed {rule.max_age})",
    )


def _schema_drift(rule: SchemaDrift, dataset: Dataset, facts: BatchFacts) -> Finding:
    headers = [cols for cols in facts.headers.values() if cols]  # empty files have none
    extra = sorted({c for cols in headers for c in cols} - set(dataset.schema_))
    missing = sorted({c for cols in headers for c in dataset.schema_ if c not in cols})
    parts = [f"new columns {extra}"] if extra else []
    parts += [f"missing columns {missing}"] if missing else []
    return Finding(
        rule.name or "schema_drift",
        rule.severity,
        not parts,
        "; ".join(parts) or "header matches the schema",
    )


_EVALUATORS = {RowCount: _row_count, Freshness: _freshness, SchemaDrift: _schema_drift}
