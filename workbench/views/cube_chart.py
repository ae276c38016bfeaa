"""The explorer's chart: Bokeh figures built once per session and updated in place.

Every widget change and every click redraws the chart, so a redraw must be cheap on both ends.
Two figures serve the three kinds: bars and the line over time share one figure with a
categorical axis (members as text: ``2013-07``), and switching between them only shows one set
of glyphs and hides the other; the heatmap has its own figure. A new view replaces the data of a
``ColumnDataSource`` and the factors of the axes, and the browser repaints the figure it already
has. Against hvplot figures fed through a HoloViews pipe, which rebuilt the plot in Python (60%
of the server's work per change) and sent a new figure whenever the members changed, this more
than halved the time from a widget change to the updated page (``benchmarks/apps.py``).

Frames use fixed column names (``member``, ``column``, ``value``); the levels and the measure
appear as axis labels and title. A click reaches ``on_click(x, y)`` as the members under the
pointer: the bar or point's member, or a heatmap cell's column and row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import panel as pn
from bokeh.events import Tap
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    DataRange1d,
    FactorRange,
    GlyphRenderer,
    HoverTool,
    LinearColorMapper,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

BAR, LINE, HEATMAP = "bar", "line", "heatmap"
HEIGHT = 380
COLOR = "#30a2da"  # the first colour of HoloViews' default cycle, as the other apps use
MAX_LABELS = 48  # more members than this: label every k-th one so the labels stay readable
_NUMBER = "{0,0.[00]}"


@dataclass
class _Figure:
    pane: pn.Column
    figure: object
    source: ColumnDataSource
    hover: HoverTool
    glyphs: dict[str, list[GlyphRenderer]]
    mapper: LinearColorMapper | None = None
    colorbar: ColorBar | None = None


class CubeChart:
    """One pane that shows a bar, line or heatmap chart and reports clicked members."""

    def __init__(self, on_click: Callable[[object, object], None]):
        # A figure is made when first needed; switching between figures only hides one and shows
        # the other, so the browser keeps each figure instead of receiving it again.
        self.pane = pn.Column(sizing_mode="stretch_width", height=HEIGHT, margin=0)
        self.kind: str | None = None
        self.frame = pd.DataFrame()
        self._on_click = on_click
        self._figures: dict[str, _Figure] = {}
        self._shown: _Figure | None = None

    @property
    def figure(self):
        """The Bokeh figure on screen."""
        return self._shown.figure if self._shown else None

    @property
    def source(self) -> ColumnDataSource | None:
        """The data the browser draws (what tests compare with the cube)."""
        return self._shown.source if self._shown else None

    def show(
        self, kind: str, frame: pd.DataFrame, *, x: str, y: str, title: str, value: str = ""
    ) -> None:
        """Draw ``frame`` as ``kind``, reusing the figure already in the browser."""
        self.frame = frame
        key = HEATMAP if kind == HEATMAP else BAR
        if key not in self._figures:
            self._figures[key] = self._make(key)
            self.pane.append(self._figures[key].pane)
        shown = self._figures[key]
        fig = shown.figure
        fig.title.text = title
        fig.xaxis.axis_label, fig.yaxis.axis_label = x, y
        members = frame["member"].astype(str).tolist()
        if kind == HEATMAP:
            columns = frame["column"].astype(str).tolist()
            fig.x_range.factors = list(dict.fromkeys(columns))
            fig.y_range.factors = list(dict.fromkeys(members))[::-1]  # the first row on top
            values = frame["value"].to_numpy(dtype="float64")
            finite = values[np.isfinite(values)]
            low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
            shown.mapper.update(low=low, high=high if high > low else low + 1)
            shown.colorbar.title = value
            data = {"column": columns, "member": members, "value": values}
        else:
            fig.x_range.factors = members
            fig.xaxis.major_label_overrides = _thinned(members)
            data = {"member": members, "value": frame["value"].to_numpy()}
            for glyph_kind, glyphs in shown.glyphs.items():
                for glyph in glyphs:
                    glyph.visible = glyph_kind == kind
        shown.hover.tooltips = _tooltips(kind, x, y, value)
        shown.hover.renderers = shown.glyphs[kind]
        shown.source.data = data
        if shown is not self._shown:
            for made in self._figures.values():
                made.pane.visible = made is shown
            self._shown = shown
        self.kind = kind

    def _make(self, key: str) -> _Figure:
        source = ColumnDataSource({"member": [], "value": [], "column": []})
        fig = figure(
            x_range=FactorRange(),
            y_range=FactorRange() if key == HEATMAP else DataRange1d(),
            height=HEIGHT,
            sizing_mode="stretch_width",
            toolbar_location="above",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        fig.xaxis.major_label_orientation = np.pi / 4
        mapper = colorbar = None
        if key == HEATMAP:
            mapper = LinearColorMapper(palette=Viridis256, nan_color="#eeeeee")
            cells = fig.rect(
                x="column",
                y="member",
                width=1,
                height=1,
                source=source,
                fill_color={"field": "value", "transform": mapper},
                line_color=None,
            )
            colorbar = ColorBar(color_mapper=mapper, width=12)
            fig.add_layout(colorbar, "right")
            fig.grid.grid_line_color = None
            glyphs = {HEATMAP: [cells]}
        else:
            bars = fig.vbar(x="member", top="value", width=0.8, source=source, color=COLOR)
            line = fig.line(x="member", y="value", source=source, color=COLOR, line_width=2)
            points = fig.scatter(x="member", y="value", source=source, color=COLOR, size=7)
            fig.xgrid.grid_line_color = None
            glyphs = {BAR: [bars], LINE: [line, points]}
        hover = HoverTool()
        fig.add_tools(hover)
        fig.on_event(Tap, self._tapped)
        # Shown and hidden through a Column: Panel's Bokeh pane fails to toggle its own
        # visibility (it copies the figure's style sheets into a list of text, Panel 1.9.4).
        pane = pn.Column(
            pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=HEIGHT),
            sizing_mode="stretch_width",
            margin=0,
        )
        return _Figure(pane, fig, source, hover, glyphs, mapper, colorbar)

    def _tapped(self, event: Tap) -> None:
        fig = self._shown.figure
        x, y = _factor_at(fig.x_range, event.x), _factor_at(fig.y_range, event.y)
        # After Bokeh's own handler returns: the click may change the figure that sent it.
        pn.state.execute(lambda: self._on_click(x, y), schedule=True)


def _factor_at(axis, coordinate: float | None):
    """The factor under a synthetic coordinate: factor ``i`` spans ``[i, i + 1)``."""
    if not isinstance(axis, FactorRange) or coordinate is None:
        return None
    at = int(np.floor(coordinate))
    return axis.factors[at] if 0 <= at < len(axis.factors) else None


def _thinned(members: list[str]) -> dict[str, str]:
    """Blank all labels but every k-th when there are too many to read (365 days, say)."""
    step = -(-len(members) // MAX_LABELS)
    return {m: "" for i, m in enumerate(members) if i % step} if step > 1 else {}


def _tooltips(kind: str, x: str, y: str, value: str) -> list[tuple[str, str]]:
    if kind == HEATMAP:
        return [(y, "@member"), (x, "@column"), (value, f"@value{_NUMBER}")]
    return [(x, "@member"), (y, f"@value{_NUMBER}")]
