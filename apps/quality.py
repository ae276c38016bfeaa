"""Data quality: `workbench serve quality` (or `make serve`); for the engineer role by default."""

import panel as pn

from workbench.views import QualityDashboard, dashboard

pn.extension("tabulator", sizing_mode="stretch_width", notifications=True)

dashboard("data quality", main=[QualityDashboard()]).servable()
