"""Batch predictions browsed by date and by the feature set's categorical keys (carrier, origin),
set against the outcome where it was known when the rows were scored.

:class:`PredictionStore` reads one version of ``predictions/<model>`` through
``workbench.ml.read_predictions``, only the columns the explorer shows, once per version (versions
never change) and cached for every session. Filters are boolean masks and every figure is a
pandas group-by over the matching rows; the table pages through them on the server.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import hvplot.pandas  # noqa: F401
import numpy as np
import pandas as pd
import panel as pn
from sklearn.metrics import roc_auc_score

from workbench.ml import (
    ACTUAL,
    calibration_table,
    prediction_provenance,
    predictions_version,
    read_predictions,
)
from workbench.ml import (
    prediction_columns as stored_columns,
)
from workbench.views.source import CatalogSource, open_catalog, open_workspace

SCORE = "score"
SPLIT = "_split"
PERIODS = {"day": "D", "week": "W", "month": "M"}


@dataclass(frozen=True)
class PredictionColumns:
    """Which columns of a predictions table the explorer uses, from the catalog's feature set:
    the time column (the split's, when it is a key), the categorical keys and the split to
    filter on, and whether the known outcome was recorded."""

    date: str | None
    members: tuple[str, ...]
    shown: tuple[str, ...]
    has_actual: bool
    classifier: bool


@pn.cache(max_items=16)
def prediction_columns(
    catalog_path: str, workspace: str | None, name: str, version: int, modified: float = 0.0
) -> PredictionColumns:
    """The columns of one predictions version, read once per version and catalog file
    modification time ``modified`` (the feature set's keys say which columns to filter on)."""
    catalog = open_catalog(catalog_path)
    spec = catalog.model(name)
    fs = catalog.feature_set(spec.feature_set)
    stored = stored_columns(open_workspace(catalog_path, workspace), name, version)
    date = fs.split.column if fs.split.column in stored else None
    members = [k for k in fs.keys if k in fs.categorical and k in stored]
    members += [SPLIT] if SPLIT in stored else []
    keys = [k for k in fs.keys if k in stored and k != date and k not in members]
    shown = [*([date] if date else []), *members, *keys, SCORE, "predicted"]
    shown += [ACTUAL] if ACTUAL in stored else []
    return PredictionColumns(
        date, tuple(members), tuple(shown), ACTUAL in stored, spec.task == "classification"
    )


@pn.cache(max_items=4)
def _load(
    catalog_path: str, workspace: str | None, name: str, version: int, modified: float
) -> pd.DataFrame:
    columns = prediction_columns(catalog_path, workspace, name, version, modified)
    ws = open_workspace(catalog_path, workspace)
    frame = read_predictions(ws, name, version=version, columns=list(columns.shown)).compute()
    frame = frame.reset_index(drop=True)
    if columns.date:
        frame[columns.date] = pd.to_datetime(frame[columns.date]).dt.tz_localize(None)
    for col in columns.members:
        frame[col] = frame[col].astype("category")  # small, and fast to filter and group
    return frame


class PredictionStore(CatalogSource):
    """The latest batch predictions of a catalog's models, filtered and aggregated."""

    def version(self, name: str) -> int | None:
        """The latest version of ``predictions/<name>``; None before the first scoring."""
        return predictions_version(self.ws, name)

    def columns(self, name: str, version: int) -> PredictionColumns:
        modified = os.stat(self.catalog_path).st_mtime
        return prediction_columns(self.catalog_path, self.workspace, name, version, modified)

    def provenance(self, name: str, version: int) -> dict:
        """Which model version scored a predictions version, and when."""
        return prediction_provenance(self.ws, name, version)

    def frame(self, name: str, version: int) -> pd.DataFrame:
        modified = os.stat(self.catalog_path).st_mtime
        return _load(self.catalog_path, self.workspace, name, version, modified)

    def members(self, name: str, version: int, column: str) -> list[str]:
        values = self.frame(name, version)[column]
        return sorted(values.cat.categories.astype(str).tolist())

    def date_bounds(self, name: str, version: int) -> tuple[dt.date, dt.date] | None:
        date = self.columns(name, version).date
        if date is None:
            return None
        values = self.frame(name, version)[date]
        return values.min().date(), values.max().date()

    def rows(
        self,
        name: str,
        version: int,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        members: dict[str, list[str]] | None = None,
    ) -> pd.DataFrame:
        """Predictions with the date in ``[start, end]`` (whole days) and each column of
        ``members`` among the values given (an empty list keeps every value)."""
        frame = self.frame(name, version)
        keep = np.ones(len(frame), dtype=bool)
        date = self.columns(name, version).date
        if date and start is not None:
            keep &= (frame[date] >= pd.Timestamp(start)).to_numpy()
        if date and end is not None:
            keep &= (frame[date] < pd.Timestamp(end) + pd.Timedelta(days=1)).to_numpy()
        for column, chosen in (members or {}).items():
            if chosen:
                keep &= frame[column].isin(chosen).to_numpy()
        return frame[keep]


def summary(rows: pd.DataFrame) -> dict[str, float]:
    """Rows, mean score, rows with a known outcome, their observed mean (the rate of a
    classifier's label) and, when both classes are among them, the ROC AUC on those rows."""
    known = rows[rows[ACTUAL].notna()] if ACTUAL in rows else rows.iloc[:0]
    out = {
        "rows": len(rows),
        "predicted": float(rows[SCORE].mean()) if len(rows) else float("nan"),
        "known": len(known),
        "observed": float(known[ACTUAL].mean()) if len(known) else float("nan"),
        "roc_auc": float("nan"),
    }
    if len(known) and known[ACTUAL].isin([0.0, 1.0]).all() and known[ACTUAL].nunique() == 2:
        out["roc_auc"] = float(roc_auc_score(known[ACTUAL].astype(int), known[SCORE]))
    return out


def compare_by(rows: pd.DataFrame, by: str | pd.Series) -> pd.DataFrame:
    """Per group: rows, mean score (``predicted``), rows with a known outcome, their mean
    (``observed``)."""
    actual = rows[ACTUAL] if ACTUAL in rows else pd.Series(np.nan, index=rows.index)
    frame = pd.DataFrame({SCORE: rows[SCORE], ACTUAL: actual})
    keys = rows[by] if isinstance(by, str) else by
    grouped = frame.groupby(keys, observed=True, sort=True)
    return grouped.agg(
        rows=(SCORE, "size"),
        predicted=(SCORE, "mean"),
        known=(ACTUAL, "count"),
        observed=(ACTUAL, "mean"),
    )


def per_period(rows: pd.DataFrame, date: str, period: str = "day") -> pd.DataFrame:
    """:func:`compare_by` per day, week or month (each named by its first day)."""
    starts = rows[date].dt.to_period(PERIODS[period]).dt.start_time.rename(date)
    return compare_by(rows, starts)


def calibration(rows: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Mean score against the observed rate in equal-width score bins, over the rows whose
    outcome is known (the table training kept for the test rows, for any selection)."""
    known = rows[rows[ACTUAL].notna()] if ACTUAL in rows else rows.iloc[:0]
    table = calibration_table(known[ACTUAL].to_numpy(), known[SCORE].to_numpy(), bins)
    return pd.DataFrame(table, columns=["bin", "rows", "predicted", "observed"])
