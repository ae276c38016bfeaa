"""Lineage: `workbench serve lineage` (or `make serve`); for the engineer role by default."""

import panel as pn

from workbench.views import LineageStore, LineageView, dashboard

pn.extension("tabulator", sizing_mode="stretch_width")

dashboard("lineage", main=[LineageView(LineageStore())]).servable()
