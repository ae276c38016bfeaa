"""The explorer's chart: hvplot bar, line and heatmap fed through a HoloViews pipe.

A new view of the same kind sends the DynamicMap a new frame, and HoloViews updates the data and
axes of the Bokeh figure already in the browser instead of sending a new figure. That is done
only while the members stay the same (a new measure, say): sending new categories to a figure in
place froze Chromium (Bokeh 3.9), so other changes build a new DynamicMap. Clicks reach the Tap
stream without Bokeh's tap tool, so no bar is left selected. Frames use fixed column names
(``member``, ``column``, ``value``); the levels and the measure appear as axis labels and title.
"""

from __future__ import annotations

from collections.abc import Callable

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers .hvplot on pandas objects)
import pandas as pd
import panel as pn

BAR, LINE, HEATMAP = "bar", "line", "heatmap"
HEIGHT = 380


class CubeChart:
    """One pane that shows a bar, line or heatmap chart and reports clicked members."""

    def __init__(self, on_click: Callable[[object, object], None]):
        self.pane = pn.pane.HoloViews(sizing_mode="stretch_width", height=HEIGHT, linked_axes=False)
        self.kind: str | None = None
        self.frame = pd.DataFrame()
        self._labels: dict[str, str] = {}
        self._on_click = on_click
        self._pipe: hv.streams.Pipe | None = None
        self._builders = {BAR: self._bar, LINE: self._line, HEATMAP: self._heatmap}

    def show(
        self, kind: str, frame: pd.DataFrame, *, x: str, y: str, title: str, value: str = ""
    ) -> None:
        """Draw ``frame`` as ``kind``; the figure is replaced only when the kind changes."""
        same_members = _members(frame) == _members(self.frame)
        self.frame = frame
        self._labels = {"x": x, "y": y, "title": title, "value": value}
        if kind == self.kind and self._pipe is not None and same_members:
            self._pipe.send(frame)
            return
        self.kind = kind
        self._pipe = hv.streams.Pipe(data=frame)
        dmap = hv.DynamicMap(self._builders[kind], streams=[self._pipe]).opts(framewise=True)
        tap = hv.streams.Tap(source=dmap, x=None, y=None)
        tap.param.watch(self._tapped, ["x", "y"])
        self.pane.object = dmap

    def _opts(self) -> dict:
        return {
            "xlabel": self._labels.get("x", ""),
            "ylabel": self._labels.get("y", ""),
            "title": self._labels.get("title", ""),
            "responsive": True,
            "height": HEIGHT,
        }

    def _bar(self, data):
        if data is None:
            return hv.Bars([], "member", "value")
        return data.hvplot.bar(x="member", y="value", rot=45, **self._opts()).opts(tools=["hover"])

    def _line(self, data):
        if data is None:
            return hv.Curve([], "member", "value") * hv.Scatter([], "member", "value")
        line = data.hvplot.line(x="member", y="value", **self._opts())
        points = data.hvplot.scatter(x="member", y="value", size=40, **self._opts())
        return (line * points).opts(hv.opts.Scatter(tools=["hover"]))

    def _heatmap(self, data):
        if data is None:
            return hv.HeatMap([], ["column", "member"], "value")
        return data.hvplot.heatmap(
            x="column",
            y="member",
            C="value",
            cmap="viridis",
            rot=45,
            clabel=self._labels.get("value", ""),
            **self._opts(),
        ).opts(tools=["hover"])

    def _tapped(self, *events) -> None:
        stream = events[0].obj
        # After the stream's own handler returns: the click may replace the figure that sent it.
        pn.state.execute(lambda: self._on_click(stream.x, stream.y), schedule=True)


def _members(frame: pd.DataFrame) -> list:
    return [frame[c].tolist() for c in ("member", "column") if c in frame]
