"""The lineage page: the picture of what a dataset, cube or model is made from and feeds, and
where each of its columns comes from."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from workbench.pipeline import lineage_of, lineage_svg, render_svg
from workbench.views.shell import RadioButtonGroup, Select
from workbench.views.source import CatalogSource

EVERYTHING = "(everything)"


class LineageStore(CatalogSource):
    """The catalog's lineage with versions from the workspace's run store."""

    def names(self) -> list[str]:
        return list(self.catalog.names())

    def svg(self, name: str | None = None, direction: str = "both") -> str:
        if name is None:
            return lineage_svg(self.catalog, self.ws)
        node, graph = lineage_of(self.catalog, self.ws, name, direction=direction)
        return render_svg(graph, highlight=node)

    def columns(self, name: str) -> pd.DataFrame:
        """One row per column of ``name``: its sources and how it is made."""
        node, graph = lineage_of(self.catalog, self.ws, name, direction="up", columns=True)
        rows = [
            {
                "column": c,
                "from": ", ".join(str(s) for s in lin.sources),
                "how": lin.how,
            }
            for c, lin in graph.columns.get(node, {}).items()
        ]
        return pd.DataFrame(rows, columns=["column", "from", "how"])


class LineageView(pn.viewable.Viewer):
    """A picker, the picture, and the column lineage of the picked name."""

    store = param.ClassSelector(class_=LineageStore)

    def __init__(self, store: LineageStore | None = None, **params):
        super().__init__(store=store or LineageStore(), **params)
        self.pick = Select(
            label="dataset, cube or model", options=[EVERYTHING, *self.store.names()]
        )
        self.direction = RadioButtonGroup(options=["both", "up", "down"], value="both")
        self.picture = pn.pane.HTML(sizing_mode="stretch_width", styles={"overflow": "auto"})
        self.table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False)
        self.pick.param.watch(self._update, "value")
        self.direction.param.watch(self._update, "value")
        self._update()

    def _update(self, *_) -> None:
        name = None if self.pick.value == EVERYTHING else self.pick.value
        self.picture.object = self.store.svg(name, self.direction.value)
        self.table.value = self.store.columns(name) if name else pd.DataFrame()
        self.table.visible = name is not None

    def __panel__(self):
        return pn.Column(pn.Row(self.pick, self.direction), self.picture, self.table)
