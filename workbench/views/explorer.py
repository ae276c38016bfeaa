"""The cube explorer: choose levels and members, drill by clicking, download what you see.

Widgets are created once and updated in place when the selection changes: one cube query per
change feeds the chart, the pivot table, the breadcrumb and the downloads.
"""

from __future__ import annotations

import io

import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import NumberFormatter
from pandas.api.types import is_numeric_dtype

from workbench.errors import WorkbenchError
from workbench.io import csv_text, excel_bytes
from workbench.views.cube_chart import BAR, HEATMAP, LINE, CubeChart
from workbench.views.cubes import CubeSelection, CubeStore, is_time_level
from workbench.views.shell import (
    Checkbox,
    MultiChoice,
    Select,
    paged_table,
    text_widths,
    while_loading,
)

PAGE_SIZE = 20
TABLE_HEIGHT = 36 + PAGE_SIZE * 27 + 44  # header, a page of rows, the pager: the page never jumps
# The table's fields stay the same from view to view, and the headers show the level and the
# measure: Tabulator rebuilds every column when a field changes, which cost about a third of
# the browser's work per interaction (benchmarks/apps.py).
MEMBER, VALUE = "member", "value"
NUMBERS = "0,0.[00]"  # one format for counts and means: a new measure rebuilds nothing
_URL_PARAMS = {
    p: p for p in ("cube_name", "measure", "rows", "columns", "filters", "path", "non_empty")
}
_WATCHED = list(_URL_PARAMS)


class CubeExplorer(pn.viewable.Viewer):
    """Chart, paginated pivot table, breadcrumb and downloads over one :class:`CubeSelection`."""

    def __init__(self, store: CubeStore | None = None, **params):
        self.selection = CubeSelection(store, **params)
        super().__init__()
        self.chart = CubeChart(self._on_chart_click)
        self.table = paged_table(page_size=PAGE_SIZE, height=TABLE_HEIGHT)
        self.table.on_click(self._on_cell_click)
        self.crumbs = pn.Row(css_classes=["breadcrumb"], margin=(0, 5), sizing_mode="stretch_width")
        self.message = pn.pane.Alert(alert_type="warning", visible=False)
        # Which cuboid answered, between the chart and the table: below the table's fixed
        # height it sat under the fold, where nobody found it.
        self.explain = pn.pane.Str(
            css_classes=["answered-by"],
            styles={"font-size": "12px", "color": "#666"},
            margin=(0, 10),
        )
        self.csv = pn.widgets.FileDownload(
            callback=self._csv, filename="view.csv", label="Download CSV", color="primary"
        )
        self.excel = pn.widgets.FileDownload(
            callback=self._excel, filename="view.xlsx", label="Download Excel"
        )
        self.filters = pn.Column()
        self.body = pn.Column(
            self.crumbs,
            self.message,
            self.chart.pane,
            self.explain,
            self.table,
            sizing_mode="stretch_width",
        )
        self.frame = pd.DataFrame()
        self.shown = pd.DataFrame()  # the table as users read it: real level and measure names
        self._crumb_path: list = []
        self._build_filters()
        self.selection.param.watch(self._changed, _WATCHED)
        self.refresh()

    # -- updates --------------------------------------------------------------------------------

    def _changed(self, *events) -> None:
        new_cube = any(e.name == "cube_name" for e in events)
        if new_cube:
            self._build_filters()
        if new_cube or not self.selection.answered_from_memory():
            while_loading(self.body, self.refresh)  # a cube to open or cells to read from disk
        else:
            # Cells in memory answer in milliseconds: a spinner would only add two redraws of
            # the page (80 ms median per interaction in benchmarks/apps.py).
            self.refresh()

    def refresh(self) -> None:
        """Ask the cube once, then update every part of the view in place."""
        sel = self.selection
        try:
            self.frame = sel.frame()
        except WorkbenchError as exc:
            # A link with a member that no longer exists, say: say so, keep the last view.
            self.message.param.update(object=str(exc), visible=True)
            return
        self.message.visible = False
        with pn.io.hold():  # one message to the browser for the whole update
            self.shown = self.table_data()
            table, titles = self._fields(self.shown)
            numeric = [c for c in table.columns if is_numeric_dtype(table[c])]
            changed = {"value": table, "page": 1}
            if set(numeric) != self.table.formatters.keys():  # new columns
                changed["formatters"] = {c: NumberFormatter(format=NUMBERS) for c in numeric}
            if titles != self.table.titles:
                changed["titles"] = titles
            widths = text_widths(table, {MEMBER: titles.get(MEMBER, MEMBER), "name": "name"})
            if widths != self.table.widths:
                changed["widths"] = widths
            self.table.param.update(**changed)
            self._draw()
            if self.crumbs.objects == [] or self._crumb_path != self.selection.path:
                self._build_crumbs()
            self.explain.object = str(sel.cube.explain(sel.query())).splitlines()[0]
            stem = f"{sel.cube_name}_{sel.measure}_by_{sel.rows}"
            self.csv.filename = f"{stem}.csv"
            self.excel.filename = f"{stem}.xlsx"

    def table_data(self) -> pd.DataFrame:
        """The pivot as the table shows it: the row member, its label if any, then values."""
        sel = self.selection
        table = sel.pivot(self.frame).reset_index()
        labels = sel.store.labels(sel.cube_name, sel.rows)
        if labels:
            table.insert(1, "name", table[sel.rows].map(labels))
        return table

    def _fields(self, shown: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
        """The table under fixed field names, and the headers that show the real names."""
        sel = self.selection
        names = {sel.rows: MEMBER} if sel.columns else {sel.rows: MEMBER, sel.measure: VALUE}
        table = shown.rename(columns=names)
        titles = {field: name for name, field in names.items()}
        if "name" not in table:  # a level without labels: the column stays, empty and untitled
            table.insert(1, "name", "")
            titles["name"] = ""
        return table, titles

    # -- the chart ------------------------------------------------------------------------------

    def _draw(self) -> None:
        """Bar by a level, line over time, or heatmap of rows x columns."""
        sel, frame = self.selection, self.frame
        title = f"{sel.measure} by {sel.rows}" + (f" and {sel.columns}" if sel.columns else "")
        data = pd.DataFrame({"member": frame[sel.rows], "value": frame[sel.measure]})
        if sel.columns:
            kind, x = HEATMAP, sel.columns
            data["column"] = frame[sel.columns]
        elif is_time_level(sel.rows):
            kind, x = LINE, sel.rows
        else:
            kind, x = BAR, sel.rows
        y = sel.rows if kind == HEATMAP else sel.measure
        self.chart.show(kind, data, x=x, y=y, title=title, value=sel.measure)

    def _on_chart_click(self, x, y) -> None:
        """A bar, a point or a heatmap cell was clicked: drill into its row member."""
        member = y if self.selection.columns else x
        if member is not None:
            self.selection.drill(str(member))

    def _on_cell_click(self, event) -> None:
        member = self.shown.iloc[event.row][self.selection.rows]
        self.selection.drill(str(member))

    # -- breadcrumb, filters, downloads ---------------------------------------------------------

    def _build_crumbs(self) -> None:
        self._crumb_path = list(self.selection.path)
        buttons = []
        steps = self.selection.breadcrumb()
        for k, text in enumerate(steps):
            last = k == len(steps) - 1
            button = pn.widgets.Button(
                label=text,
                color="primary" if last else "light",
                disabled=last,
                sizing_mode="fixed",
                width=max(60, 9 * len(text) + 24),
                height=36,
                css_classes=["crumb"],
            )
            button.on_click(lambda _e, k=k: self.selection.roll_up(k))
            buttons.append(button)
            if not last:
                arrow = pn.pane.Str("›", sizing_mode="fixed", width=12, height=30, margin=(12, 0))
                buttons.append(arrow)
        self.crumbs.objects = buttons

    def _build_filters(self) -> None:
        sel = self.selection
        widgets = []
        for dim, level in sel.filter_levels().items():
            labels = sel.store.labels(sel.cube_name, level)
            options = {(f"{m} · {labels[m]}" if m in labels else m): m for m in sel.members(level)}
            choice = MultiChoice(
                label=f"{dim} ({level})",
                options=options,
                value=list(sel.filters.get(level, [])),
                placeholder="all",
                sizing_mode="stretch_width",
            )
            choice.param.watch(lambda e, level=level: self._set_filter(level, e.new), "value")
            widgets.append(choice)
        self.filters.objects = widgets

    def _set_filter(self, level: str, members: list[str]) -> None:
        filters = {k: v for k, v in self.selection.filters.items() if k != level}
        if members:
            filters[level] = list(members)
        self.selection.filters = filters

    def _csv(self) -> io.StringIO:
        return io.StringIO(csv_text(self.shown))

    def _excel(self) -> io.BytesIO:
        return io.BytesIO(excel_bytes(self.shown, sheet=self.selection.measure))

    # -- layout ---------------------------------------------------------------------------------

    def sync_url(self) -> None:
        """Keep the selection in the page URL, so a link reproduces the view (server only)."""
        if pn.state.location is not None:
            pn.state.location.sync(self.selection, _URL_PARAMS)

    def controls(self) -> pn.Column:
        sel = self.selection
        widgets = [
            Select.from_param(sel.param[p], sizing_mode="stretch_width")
            for p in ("cube_name", "measure", "rows", "columns")
        ]
        return pn.Column(
            *widgets,
            Checkbox.from_param(sel.param.non_empty),
            pn.pane.Markdown("**Filters**", margin=(10, 5, 0, 5)),
            self.filters,
            pn.Row(self.csv, self.excel),
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return pn.Row(pn.Column(self.controls(), width=300), self.body, sizing_mode="stretch_width")
