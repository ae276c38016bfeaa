"""The index page of `workbench serve`: links to the apps the signed-in user may open."""

import panel as pn

from workbench.serving import SERVED_KEY
from workbench.views import AppIndex, dashboard

pn.extension(sizing_mode="stretch_width")

served = pn.state.cache.get(SERVED_KEY)  # set by `workbench serve`; None under plain panel serve
index = AppIndex(
    apps=served.apps if served else None,
    policy=served.policy if served else None,
    user=pn.state.user,
)
dashboard("dashboards", main=[index]).servable()
