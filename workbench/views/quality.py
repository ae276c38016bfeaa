"""The data-quality dashboard's data: validation reports, quarantined rows, batch balances.

Everything here reads what the pipeline already wrote: the per-batch JSON reports, the
quarantine Delta tables (filtered in Arrow, never read whole) and the Delta logs' row counts.
"""

from __future__ import annotations

import pandas as pd
import param

from workbench import config
from workbench.io import TEXT
from workbench.privacy import Viewer, mask_frame, masking_for
from workbench.validation import previous_reports, rule_table
from workbench.views.source import (
    CatalogSource,
    open_catalog,
)
from workbench.zones import BATCH_COLUMN, batch_balance, quarantined_rows

PASS, WARN, FAIL = "pass", "warn", "fail"
REPORTS_URL = "reports"  # the route `workbench serve` serves the validation reports under


def batch_status(report: dict) -> str:
    """``fail`` when the batch was not committed or a blocking check failed; ``warn`` when rows
    were quarantined or flagged, or a warning check failed; ``pass`` otherwise."""
    failed = [f for f in report.get("findings", []) if not f["passed"]]
    if (
        not report.get("committed")
        or report.get("error")
        or not report.get("reconciled", True)
        or any(f["severity"] == "error" for f in failed)
    ):
        return FAIL
    if report["quarantined"] or report["warned"] or failed:
        return WARN
    return PASS


class QualityStore(CatalogSource):
    """Reports and quarantine of the lake datasets of one catalog and workspace.

    Quarantined rows are masked for ``viewer`` (columns tagged ``pii``, and the raw line text
    that holds them too); without a viewer they are masked as for an anonymous user.
    """

    viewer = param.ClassSelector(class_=Viewer, default=None, allow_None=True)

    def datasets(self) -> list[str]:
        catalog = open_catalog(self.catalog_path)
        return [name for name, ds in catalog.datasets.items() if ds.zone == "lake"]

    def reports(self, dataset: str) -> list[dict]:
        """The dataset's batch reports, oldest first (as written by promotion)."""
        return previous_reports(self.ws, dataset)

    def batches(self) -> pd.DataFrame:
        """One row per dataset and batch: status, row counts and the report's address."""
        rows = []
        for name in self.datasets():
            for r in self.reports(name):
                rows.append(
                    {
                        "dataset": name,
                        "batch": r["batch_id"],
                        "checked_at": pd.Timestamp(r["checked_at"]).tz_convert(None),
                        "status": batch_status(r),
                        "landed": r["rows_landed"],
                        "promoted": r["promoted"],
                        "quarantined": r["quarantined"],
                        "warned": r["warned"],
                        "report": f"{REPORTS_URL}/{name}/{r['batch_id']}.html",
                    }
                )
        return pd.DataFrame(rows, columns=_BATCH_COLUMNS)

    def rule_rates(self, dataset: str) -> pd.DataFrame:
        """Failing rows and rate per reason and batch, for reasons that ever failed."""
        frames = []
        for r in self.reports(dataset):
            table = rule_table(r)
            table.insert(0, "checked_at", pd.Timestamp(r["checked_at"]).tz_convert(None))
            table.insert(1, "batch", r["batch_id"])
            frames.append(table)
        if not frames:
            return pd.DataFrame(columns=["checked_at", "batch", "reason", "severity", "failed"])
        rates = pd.concat(frames, ignore_index=True)
        failing = rates.groupby("reason")["failed"].transform("sum") > 0
        return rates[failing].sort_values(["reason", "checked_at"], ignore_index=True)

    def reconciliation(self) -> pd.DataFrame:
        """Ingested = promoted + quarantined per batch, as recorded and as the tables hold now."""
        rows = []
        for name in self.datasets():
            for r in self.reports(name):
                now = batch_balance(self.ws, name, r["batch_id"]) if r.get("committed") else {}
                rows.append(
                    {
                        "dataset": name,
                        "batch": r["batch_id"],
                        "ingested": r["rows_landed"],
                        "read": r["rows_read"],
                        "promoted": r["promoted"],
                        "quarantined": r["quarantined"],
                        "balanced": r["rows_landed"]
                        == r["rows_read"]
                        == r["promoted"] + r["quarantined"],
                        "in_lake_now": now.get("promoted"),
                        "in_quarantine_now": now.get("quarantined"),
                    }
                )
        return pd.DataFrame(rows)

    def reasons(self, dataset: str) -> list[str]:
        rates = self.rule_rates(dataset)
        return sorted(rates.loc[rates.severity == "error", "reason"].unique().tolist())

    def quarantined(
        self,
        dataset: str,
        *,
        batch: str | None = None,
        reason: str | None = None,
        limit: int | None = None,
    ) -> tuple[pd.DataFrame, int]:
        """Quarantined rows (filtered in Arrow) up to ``limit``, and how many match in all."""
        limit = limit or config.get("serve.quarantine-rows")
        rows, total = quarantined_rows(self.ws, dataset, batch=batch, reason=reason, limit=limit)
        rows = mask_frame(rows, masking_for(self.catalog, dataset, self._viewer, also=[TEXT]))
        return rows.sort_values([BATCH_COLUMN, "_file", "_line"], ignore_index=True), total

    @property
    def _viewer(self) -> Viewer:
        return self.viewer or Viewer(None)


_BATCH_COLUMNS = [
    "dataset",
    "batch",
    "checked_at",
    "status",
    "landed",
    "promoted",
    "quarantined",
    "warned",
    "report",
]
