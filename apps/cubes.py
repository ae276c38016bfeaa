"""Cube explorer: `workbench serve cubes` (or `make serve` for every app)."""

import panel as pn

from workbench.views import CubeExplorer, dashboard

pn.extension("tabulator", sizing_mode="stretch_width", notifications=True)

explorer = CubeExplorer()
explorer.sync_url()
dashboard("cube explorer", main=[explorer.body], sidebar=[explorer.controls()]).servable()
