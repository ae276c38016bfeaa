"""Cube explorer dashboard: `panel serve apps/cubes.py --address 127.0.0.1` (or `make serve`)."""

import panel as pn

from workbench.views import CubeExplorer

pn.extension("tabulator", sizing_mode="stretch_width")

pn.template.FastListTemplate(
    title="Workbench · cube explorer",
    main=[CubeExplorer()],
).servable()
