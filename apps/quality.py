"""Data quality: `workbench serve quality` (or `make serve`); for the engineer role by default."""

import panel as pn

from workbench.serving import current_viewer
from workbench.views import QualityDashboard, QualityStore, dashboard

pn.extension("tabulator", sizing_mode="stretch_width", notifications=True)

# Quarantined rows (and their download) are masked for users without the pii permission.
store = QualityStore(viewer=current_viewer())
dashboard("data quality", main=[QualityDashboard(store)]).servable()
