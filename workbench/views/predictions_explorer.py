"""The predictions explorer: filter batch predictions, see predicted against observed.

One filter change recomputes everything from the cached rows of the predictions version: a
summary line, predicted and observed per period and per group, a calibration chart, and the
table (paginated on the server: the browser gets one page at a time).
"""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import DateFormatter, NumberFormatter

from workbench.ml import ACTUAL
from workbench.views.predictions import (
    PERIODS,
    SCORE,
    PredictionStore,
    calibration,
    compare_by,
    per_period,
    summary,
)
from workbench.views.shell import MultiChoice, RadioButtonGroup, Select, paged_table

PAGE_SIZE = 20
_LINES = {"predicted": "#0072b5", "observed": "#e69f00"}


class PipedChart:
    """A chart pane whose Bokeh figure is updated in place (new data through a HoloViews pipe)
    while its ``key`` stays the same, and rebuilt otherwise: rebuilding a figure costs most of
    an interaction, and sending new categories to a figure in place froze Chromium (see
    ``cube_chart``), so the categories are part of the key."""

    def __init__(self, build):
        self.pane = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=False)
        self.build = build
        self.key: object = None
        self.pipe: hv.streams.Pipe | None = None

    def show(self, frame: pd.DataFrame, key: object = None) -> None:
        if self.pipe is not None and key == self.key:
            self.pipe.send(frame)
            return
        self.key = key
        self.pipe = hv.streams.Pipe(data=frame)
        self.pane.object = hv.DynamicMap(self.build, streams=[self.pipe]).opts(framewise=True)


def _shown(table: pd.DataFrame) -> tuple[str, ...]:
    return tuple(c for c in ("predicted", "observed") if table[c].notna().any())


class PredictionsExplorer(pn.viewable.Viewer):
    """Dates, one multi-choice per categorical key (and the split), and what they select."""

    model = param.String(default="")
    dates = param.DateRange(default=None, label="Dates")
    members = param.Dict(default={}, doc="column -> values kept (empty: all)")
    period = param.Selector(objects=list(PERIODS), default="day", label="Per")
    group_by = param.Selector(objects=[], label="Compare by")

    def __init__(self, store: PredictionStore | None = None, **params):
        self.store = store or PredictionStore()
        super().__init__(**params)
        self.version: int | None = None
        self.filters = pn.Column(css_classes=["prediction-filters"], sizing_mode="stretch_width")
        self.message = pn.pane.Alert(alert_type="info", visible=False)
        self.about = pn.pane.Markdown(styles={"color": "#555"})
        self.numbers = pn.pane.Markdown(css_classes=["prediction-summary"])
        self.period_chart = PipedChart(self._period_plot)
        self.group_chart = PipedChart(self._group_plot)
        self.calibration_chart = PipedChart(self._calibration_plot)
        self.table = paged_table(page_size=PAGE_SIZE)
        self.body = pn.Column(
            self.numbers,
            self.period_chart.pane,
            pn.Row(self.group_chart.pane, self.calibration_chart.pane, sizing_mode="stretch_width"),
            self.table,
            sizing_mode="stretch_width",
        )
        self._setup()
        self.param.watch(self._setup, "model")
        self.param.watch(lambda *_e: self.refresh(), ["dates", "members", "period", "group_by"])

    # -- set-up per model -----------------------------------------------------------------------

    def _setup(self, *_events) -> None:
        self.version = self.store.version(self.model) if self.model else None
        if self.version is None:
            self.message.object = (
                f"No batch predictions of `{self.model}` yet. Score rows with "
                f"`workbench model score {self.model}`; they show here with the outcome where "
                "it is known."
            )
            self.message.visible, self.body.visible, self.filters.objects = True, False, []
            return
        self.message.visible, self.body.visible = False, True
        self.columns = self.store.columns(self.model, self.version)
        self.param.group_by.objects = list(self.columns.members)
        widgets = [self._date_widget()] if self.columns.date else []
        for column in self.columns.members:
            choice = MultiChoice(
                label=column.lstrip("_"),
                options=self.store.members(self.model, self.version, column),
                placeholder="all",
                sizing_mode="stretch_width",
            )
            choice.param.watch(lambda e, c=column: self._choose(c, e.new), "value")
            widgets.append(choice)
        if self.columns.members:
            widgets.append(Select.from_param(self.param.group_by))
        if self.columns.date:
            widgets.append(RadioButtonGroup.from_param(self.param.period))
        self.filters.objects = widgets
        formatters = {c: NumberFormatter(format="0.0000") for c in (SCORE, ACTUAL)}
        if self.columns.date:
            formatters[self.columns.date] = DateFormatter(format="%Y-%m-%d")
        self.table.formatters = formatters
        done = self.store.provenance(self.model, self.version)
        self.about.object = (
            f"Predictions version {self.version}, scored by model version "
            f"{done['model_version']} on {done['scored_at']:%Y-%m-%d %H:%M} UTC."
        )
        self.param.update(members={}, group_by=next(iter(self.columns.members), None))
        self.refresh()

    def _date_widget(self) -> pn.widgets.DateRangeSlider:
        bounds = self.store.date_bounds(self.model, self.version)
        self.param.dates.bounds = bounds
        self.dates = bounds
        return pn.widgets.DateRangeSlider.from_param(
            self.param.dates, start=bounds[0], end=bounds[1], sizing_mode="stretch_width"
        )

    def _choose(self, column: str, values: list[str]) -> None:
        self.members = {**self.members, column: list(values)}

    # -- the data the view shows ----------------------------------------------------------------

    def rows(self) -> pd.DataFrame:
        """The predictions the filters select."""
        start, end = self.dates or (None, None)
        return self.store.rows(self.model, self.version, start=start, end=end, members=self.members)

    def period_data(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predicted against observed per period (the line chart)."""
        rows = self.rows() if rows is None else rows
        return per_period(rows, self.columns.date, self.period).reset_index()

    def group_data(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predicted against observed per member of ``group_by``, largest 30 (the bar chart)."""
        rows = self.rows() if rows is None else rows
        table = compare_by(rows, self.group_by).sort_values("rows", ascending=False).head(30)
        return table.reset_index().astype({self.group_by: "str"})

    def calibration_data(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        return calibration(self.rows() if rows is None else rows)

    def refresh(self) -> None:
        if self.version is None:
            return
        rows = self.rows()
        self.numbers.object = self._numbers(rows)
        charts = (self.period_chart, self.group_chart, self.calibration_chart)
        for chart in charts:
            chart.pane.visible = not rows.empty
        if not rows.empty:
            period = self.period_data(rows)
            self.period_chart.show(period, key=(self.period, _shown(period)))
            groups = self.group_data(rows)
            members = tuple(groups[self.group_by])
            self.group_chart.show(groups, key=(self.group_by, members, _shown(groups)))
            self.calibration_chart.show(self.calibration_data(rows))
        self.table.value = rows.reset_index(drop=True)

    def _numbers(self, rows: pd.DataFrame) -> str:
        s = summary(rows)
        if not s["rows"]:
            return "**No predictions match these filters.**"
        fmt = "{:.1%}" if self.columns.classifier else "{:,.3f}"
        text = f"**{s['rows']:,}** predictions, mean predicted **{fmt.format(s['predicted'])}**"
        if s["known"]:
            text += f"; **{s['known']:,}** with a known outcome, observed "
            text += f"**{fmt.format(s['observed'])}**"
            if s["roc_auc"] == s["roc_auc"]:  # not NaN
                text += f", ROC AUC **{s['roc_auc']:.3f}**"
        elif self.columns.has_actual:
            text += "; no outcome known for these rows yet"
        return text + "."

    def _period_plot(self, data: pd.DataFrame):
        shown = list(_shown(data))
        return data.hvplot.line(
            x=self.columns.date,
            y=shown,
            color=[_LINES[c] for c in shown],
            hover_cols=["rows", "known"],
            title=f"mean predicted and observed per {self.period}",
            ylabel="rate" if self.columns.classifier else "mean",
            legend="top_left",
            height=300,
            responsive=True,
        )

    def _group_plot(self, data: pd.DataFrame):
        label = self.group_by.lstrip("_")
        bars = data.hvplot.bar(
            responsive=True,
            x=self.group_by,
            y="predicted",
            color=_LINES["predicted"],
            hover_cols=["rows"],
        ).relabel("predicted")
        chart = bars
        if data["observed"].notna().any():
            chart = bars * data.hvplot.scatter(
                responsive=True,
                x=self.group_by,
                y="observed",
                color=_LINES["observed"],
                line_color="black",
                marker="diamond",
                size=150,
            ).relabel("observed")
        top = float(data[["predicted", "observed"]].max().max())
        return chart.opts(
            title=f"by {label}",
            ylim=(0, 1.35 * top) if self.columns.classifier else (None, None),  # room: legend
            ylabel="rate" if self.columns.classifier else "mean",
            height=300,
            responsive=True,
            legend_position="top_right",
            show_legend=True,
        )

    def _calibration_plot(self, data: pd.DataFrame):
        if not self.columns.classifier or not self.columns.has_actual:
            return hv.Text(0.5, 0.5, "calibration needs a classifier's known outcomes")
        diagonal = hv.Curve([(0, 0), (1, 1)], label="perfect").opts(
            color="#999", line_dash="dashed"
        )
        points = data.hvplot.line(
            responsive=True,
            x="predicted",
            y="observed",
            label="these rows",
            color=_LINES["observed"],
        ) * data.hvplot.scatter(
            responsive=True,
            x="predicted",
            y="observed",
            hover_cols=["bin", "rows"],
            color=_LINES["observed"],
        )
        return (diagonal * points).opts(
            title="calibration: observed rate per score bin",
            xlabel="mean predicted",
            ylabel="observed",
            height=300,
            responsive=True,
            legend_position="top_left",
        )

    def __panel__(self):
        return pn.Row(
            pn.Column(self.filters, width=280),
            pn.Column(self.message, self.about, self.body, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
