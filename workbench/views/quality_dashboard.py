"""The data-quality dashboard: batch status, rule failure rates, quarantined rows, balances."""

from __future__ import annotations

import io

import holoviews as hv
import hvplot.pandas  # noqa: F401
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import HTMLTemplateFormatter, NumberFormatter

from workbench.views.quality import FAIL, PASS, WARN, QualityStore
from workbench.views.shell import Select, paged_table, while_loading

STATUS_COLORS = {PASS: "#2e7d32", WARN: "#ef6c00", FAIL: "#c62828"}
PAGE_SIZE = 25
ALL = ""
_COUNT = NumberFormatter(format="0,0")


class QualityDashboard(pn.viewable.Viewer):
    """Four tabs over one :class:`QualityStore`; the quarantine tab filters by dataset, batch and
    reason and pages through the matching rows."""

    dataset = param.Selector(objects=[], label="Dataset")
    batch = param.Selector(objects=[ALL], default=ALL, label="Batch")
    reason = param.Selector(objects=[ALL], default=ALL, label="Reason")

    def __init__(self, store: QualityStore | None = None, **params):
        self.store = store or QualityStore()
        datasets = self.store.datasets()
        self.param.dataset.objects = datasets
        params.setdefault("dataset", _most_quarantined(self.store, datasets))
        super().__init__(**params)
        self.quarantine_table = paged_table(page_size=PAGE_SIZE, header_filters=True)
        self.quarantine_count = pn.pane.Markdown()
        self.quarantine_download = pn.widgets.FileDownload(
            callback=self.quarantine_csv, filename="quarantine.csv", label="Download CSV"
        )
        self._choices()
        self.refresh_quarantine()

    # -- data the tabs show ---------------------------------------------------------------------

    def batches_data(self) -> pd.DataFrame:
        return self.store.batches()

    def rates_data(self) -> pd.DataFrame:
        return self.store.rule_rates(self.dataset)

    def reconciliation_data(self) -> pd.DataFrame:
        return self.store.reconciliation()

    @param.depends("dataset", watch=True)
    def _choices(self) -> None:
        batches = [r["batch_id"] for r in self.store.reports(self.dataset)]
        self.param.batch.objects = {"all batches": ALL, **{b: b for b in batches}}
        reasons = self.store.reasons(self.dataset)
        self.param.reason.objects = {"all reasons": ALL, **{r: r for r in reasons}}
        self.param.update(batch=ALL, reason=ALL)

    @param.depends("dataset", "batch", "reason", watch=True)
    def refresh_quarantine(self) -> None:
        while_loading(self.quarantine_table, self._load_quarantine)

    def _load_quarantine(self) -> None:
        rows, total = self.store.quarantined(
            self.dataset, batch=self.batch or None, reason=self.reason or None
        )
        self.quarantine_table.value = rows
        shown = f" (the first {len(rows):,} are loaded)" if len(rows) < total else ""
        self.quarantine_count.object = (
            f"**{total:,}** quarantined rows of `{self.dataset}` match{shown}."
        )

    def quarantine_csv(self) -> io.StringIO:
        """The rows the quarantine tab matches, as CSV: masked as the table is (the store masks)."""
        rows, _ = self.store.quarantined(
            self.dataset, batch=self.batch or None, reason=self.reason or None
        )
        return io.StringIO(rows.to_csv(index=False))

    # -- tabs -----------------------------------------------------------------------------------

    def batches_tab(self) -> pn.Column:
        table = self.batches_data()
        grid = table.assign(checked=table.checked_at.dt.strftime("%Y-%m-%d %H:%M"))
        chart = hv.Points(grid, kdims=["checked_at", "dataset"], vdims=["status", "batch"]).opts(
            color="status",
            cmap=STATUS_COLORS,
            size=14,
            tools=["hover"],
            responsive=True,
            height=60 + 40 * max(1, table.dataset.nunique()),
            title="Batches by dataset: pass, warn or fail",
            show_legend=True,
        )
        link = HTMLTemplateFormatter(template='<a href="<%= value %>" target="_blank">report</a>')
        status = HTMLTemplateFormatter(
            template="<b class=\"status-<%= value %>\" style=\"color: <%= value == 'fail' ? '"
            + STATUS_COLORS[FAIL]
            + "' : value == 'warn' ? '"
            + STATUS_COLORS[WARN]
            + "' : '"
            + STATUS_COLORS[PASS]
            + "' %>\"><%= value %></b>"
        )
        counts = dict.fromkeys(["landed", "promoted", "quarantined", "warned"], _COUNT)
        widget = paged_table(
            table, page_size=PAGE_SIZE, formatters={"report": link, "status": status, **counts}
        )
        return pn.Column(pn.pane.HoloViews(chart, sizing_mode="stretch_width"), widget)

    @param.depends("dataset")
    def rules_tab(self) -> pn.Column:
        rates = self.rates_data()
        if rates.empty:
            return pn.Column(pn.pane.Markdown(f"No rule of `{self.dataset}` ever failed."))
        shown = rates.assign(rate_pct=rates.rate * 100)
        points = shown.hvplot.scatter(x="checked_at", y="rate_pct", by="reason", size=60)
        lines = shown.hvplot.line(x="checked_at", y="rate_pct", by="reason")
        chart = (lines * points).opts(
            title=f"{self.dataset}: failing rows per rule, % of rows read, by batch",
            responsive=True,
            height=360,
            legend_position="right",
            ylabel="% of rows",
        )
        latest = rates[rates.batch == rates.batch.iloc[-1]]
        table = pn.widgets.Tabulator(
            latest[["reason", "severity", "failed", "rate"]].sort_values("failed", ascending=False),
            formatters={"failed": _COUNT, "rate": NumberFormatter(format="0.000%")},
            show_index=False,
            disabled=True,
            sizing_mode="stretch_width",
        )
        return pn.Column(
            pn.pane.HoloViews(chart, sizing_mode="stretch_width"),
            pn.pane.Markdown(f"**Latest batch** `{latest.batch.iloc[0]}`"),
            table,
        )

    def quarantine_tab(self) -> pn.Column:
        pickers = pn.Row(
            *(
                Select.from_param(self.param[p], sizing_mode="stretch_width")
                for p in ("dataset", "batch", "reason")
            )
        )
        return pn.Column(
            pickers, pn.Row(self.quarantine_count, self.quarantine_download), self.quarantine_table
        )

    def reconciliation_tab(self) -> pn.Column:
        table = self.reconciliation_data()
        formatters = {
            c: _COUNT
            for c in ("ingested", "read", "promoted", "quarantined", "in_lake_now")
            + ("in_quarantine_now",)
        }
        note = pn.pane.Markdown(
            "Every batch must balance: rows **ingested** = rows **read** = **promoted** + "
            "**quarantined**, checked before anything was committed. The last two columns are "
            "what the tables hold now (releases move rows from quarantine to the lake; with "
            "`load: replace` a later batch replaces an earlier one)."
        )
        widget = pn.widgets.Tabulator(
            table,
            formatters=formatters,
            show_index=False,
            disabled=True,
            sizing_mode="stretch_width",
        )
        return pn.Column(note, widget)

    def __panel__(self):
        tabs = [
            ("Batches", self.batches_tab),
            ("Rules", lambda: pn.Column(Select.from_param(self.param.dataset), self.rules_tab)),
            ("Quarantine", self.quarantine_tab),
            ("Reconciliation", self.reconciliation_tab),
        ]
        return pn.Tabs(
            *((name, make()) for name, make in tabs),
            active=_linked_tab([name for name, _ in tabs]),
            dynamic=True,
            sizing_mode="stretch_width",
        )


def _linked_tab(names: list[str]) -> int:
    """The tab a link names (``/quality?tab=quarantine``), else the first."""
    asked = (pn.state.session_args.get("tab") or [b""])[0].decode("utf-8", "replace").lower()
    lowered = [n.lower() for n in names]
    return lowered.index(asked) if asked in lowered else 0


def _most_quarantined(store: QualityStore, datasets: list[str]) -> str:
    """Open on the dataset with the most quarantined rows: the one worth looking at."""
    batches = store.batches()
    if batches.empty:
        return datasets[0]
    return batches.groupby("dataset")["quarantined"].sum().idxmax()
