"""Models: `workbench serve models` (or `make serve`)."""

import panel as pn

from workbench.views import ModelsDashboard, dashboard

pn.extension("tabulator", sizing_mode="stretch_width", notifications=True)

dashboard("models", main=[ModelsDashboard()]).servable()
