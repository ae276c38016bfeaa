"""The index page of `workbench serve`: links to the apps the signed-in user may open."""

import panel as pn

from workbench.serving import POLICY_KEY
from workbench.views.index import AppIndex

pn.extension(sizing_mode="stretch_width")

pn.template.FastListTemplate(
    title="Workbench dashboards",
    main=[AppIndex(policy=pn.state.cache.get(POLICY_KEY), user=pn.state.user)],
).servable()
